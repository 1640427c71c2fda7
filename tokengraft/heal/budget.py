"""A wall-clock budget for a healing run (``--max-seconds``) and the schedule that follows it.

The clock starts when ``heal`` starts: loading, data preparation, training and writing the
output folder all count; evaluation (``--eval``) does not, since it measures the run rather
than being part of it. Training stops before a step that would not finish in time, leaving
room to write the folder; the learning rate follows the share of the training time spent,
so its cosine decay ends when the budget does, whatever the machine's speed (the step time
is measured as the run goes, never guessed).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

# Time kept back for writing the output folder and a checkpoint: WRITE_BASE seconds (the
# tokenizer, the record, the plot) plus the bytes at WRITE_RATE bytes/s (SmolLM2-135M with
# its embedding checkpoint: ~1 GB, ~6 s).
WRITE_BASE, WRITE_RATE = 1.0, 200e6


def now() -> float:
    """The clock's time source (a function, so that tests can replace it)."""
    return time.perf_counter()


# Steps are planned with a safety margin over the slowest of the recent step times.
RECENT_STEPS = 5


@dataclass
class Clock:
    """Seconds spent by a run, without the excluded (evaluation) intervals."""

    budget: float | None = None                  # seconds; None: no wall-clock limit
    start: float = field(default_factory=lambda: now())
    excluded: float = 0.0
    train_start: float | None = None             # used() when training began
    write_bytes: int = 0                         # bytes the end of the run writes (model, checkpoint)
    step_times: list[float] = field(default_factory=list)

    def used(self) -> float:
        return now() - self.start - self.excluded

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    @property
    def reserve(self) -> float:
        return 0.0 if self.budget is None else WRITE_BASE + self.write_bytes / WRITE_RATE

    def begin_training(self) -> None:
        self.train_start = self.used()

    def record_step(self, seconds: float) -> None:
        self.step_times.append(seconds)

    def next_step_estimate(self) -> float:
        return max(self.step_times[-RECENT_STEPS:]) if self.step_times else 0.0

    def left(self) -> float:
        """Seconds left for training steps (the write reserve kept back); inf without a budget."""
        if self.budget is None:
            return float("inf")
        return self.budget - self.reserve - self.used()

    def can_step(self) -> bool:
        """Whether one more step fits in the budget (always true without one)."""
        return self.left() >= self.next_step_estimate()

    def progress(self) -> float:
        """Share of the training time spent, in [0, 1] (0 without a budget)."""
        if self.budget is None or self.train_start is None:
            return 0.0
        total = self.budget - self.reserve - self.train_start
        return min(1.0, max(0.0, (self.used() - self.train_start) / max(total, 1e-9)))

    def planned_steps(self, done: int) -> int | None:
        """Steps this budget allows in total at the measured pace (for the log and the record)."""
        if self.budget is None or not self.step_times:
            return None
        pace = sum(self.step_times[-RECENT_STEPS:]) / len(self.step_times[-RECENT_STEPS:])
        return done + max(0, int(self.left() / max(pace, 1e-9)))
