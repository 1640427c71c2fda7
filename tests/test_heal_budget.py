"""The wall-clock budget: what counts, when training stops, how the learning rate follows it."""
from __future__ import annotations

import pytest
import torch

from tokengraft.heal import budget as budget_module
from tokengraft.heal.budget import WRITE_BASE, WRITE_RATE, Clock
from tokengraft.heal.options import DEFAULT_FIT_SECONDS, DEFAULT_STEPS, HealOptions
from tokengraft.heal.setup import MIN_LR_SHARE, WARMUP_BUDGET_SHARE, cosine, make_schedule


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(budget_module, "now", clock)
    return clock


def test_clock_excludes_evaluation_keeps_a_write_reserve_and_stops_before_a_step_that_would_not_fit(fake_time):
    clock = Clock(budget=100.0, write_bytes=int(2 * WRITE_RATE))
    assert clock.reserve == pytest.approx(WRITE_BASE + 2)
    fake_time.now += 10  # loading
    clock.exclude(5.0)   # an evaluation inside those 10 s
    assert clock.used() == pytest.approx(5.0)
    clock.begin_training()
    assert clock.progress() == 0.0
    for _ in range(10):
        fake_time.now += 8.0
        clock.record_step(8.0)
    assert clock.used() == pytest.approx(85.0)
    assert clock.progress() == pytest.approx(80 / (100 - clock.reserve - 5))
    assert clock.left() == pytest.approx(100 - clock.reserve - 85)
    assert clock.can_step()  # 12 s left, steps take 8
    fake_time.now += 8.0
    clock.record_step(8.0)
    assert not clock.can_step() and clock.progress() == pytest.approx(88 / 92)  # 4 s left < 8 s a step
    assert Clock(budget=None).can_step() and Clock(budget=None).progress() == 0.0


def test_the_schedule_warms_up_in_steps_then_decays_over_the_spent_share_of_the_budget(fake_time):
    options = HealOptions(model="m", corpus=["c"], max_seconds=100.0, warmup=2, steps=None)
    clock = Clock(budget=100.0)
    clock.begin_training()
    factor = make_schedule(options, clock, first_step=0)
    assert [factor(0), factor(1)] == pytest.approx([1 / 3, 2 / 3])
    assert factor(5) == pytest.approx(1.0)
    fake_time.now += (100 - clock.reserve) / 2
    assert factor(5) == pytest.approx(MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5)
    fake_time.now += 100
    assert factor(500) == pytest.approx(MIN_LR_SHARE)
    fresh = Clock(budget=100.0)  # a resumed run has a clock of its own, and warms up again
    fresh.begin_training()
    resumed = make_schedule(options, fresh, first_step=40)
    assert resumed(40) == pytest.approx(1 / 3)


def test_a_short_budget_ends_the_warm_up_after_its_share_of_the_training_time(fake_time):
    options = HealOptions(model="m", corpus=["c"], max_seconds=100.0, warmup=10, steps=None)
    clock = Clock(budget=100.0)
    clock.begin_training()
    factor = make_schedule(options, clock, first_step=0)
    total = 100 - clock.reserve
    assert factor(0) == pytest.approx(1 / 11)
    fake_time.now += total * WARMUP_BUDGET_SHARE / 2  # half the warm-up time, one step done
    assert factor(1) == pytest.approx(0.5)
    fake_time.now += total * WARMUP_BUDGET_SHARE  # past the warm-up's time after 2 of its 10 steps
    assert factor(2) == pytest.approx(cosine(1.5 * WARMUP_BUDGET_SHARE))


def test_step_counts_and_budgets_combine() -> None:
    assert HealOptions(model="m", corpus=["c"]).total_steps() == DEFAULT_STEPS
    assert HealOptions(model="m", corpus=["c"], max_seconds=60).total_steps() is None
    assert HealOptions(model="m", corpus=["c"], max_seconds=60, steps=5).total_steps() == 5
    fit = HealOptions(model="m", corpus=["c"], mode="fit")
    assert fit.budget == DEFAULT_FIT_SECONDS and fit.total_steps() is None
    assert HealOptions(model="m", corpus=["c"], mode="fit", max_seconds=30).budget == 30


@pytest.mark.parametrize("native, expected", [(torch.bfloat16, "bf16"), (torch.float32, "no")])
def test_auto_precision_on_cpu_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, native, expected):
    from tokengraft.heal.setup import make_accelerator
    from tokengraft.lm import precision

    monkeypatch.setattr(precision, "compute_dtype", lambda name, device: native)
    accelerator = make_accelerator(HealOptions(model="m", corpus=["c"], device="cpu"))
    assert accelerator.mixed_precision == expected
    assert make_accelerator(HealOptions(model="m", corpus=["c"], device="cpu", precision="fp32")).mixed_precision == "no"


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(False, False, torch.float32), (True, False, torch.bfloat16),
                                                        (False, True, torch.bfloat16)])
def test_auto_precision_ignores_onednn_emulated_bf16(monkeypatch, avx512_bf16, amx, expected):
    # oneDNN calls every AVX512 CPU bf16-capable; without AVX512-BF16 or AMX it emulates, ~4x slower than float32
    from tokengraft.lm import precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert precision.compute_dtype("auto", "cpu") == expected
