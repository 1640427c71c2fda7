"""Options and result of ``tokengraft heal``: one dataclass shared by the Python API and the CLI.

Every field maps one-to-one onto a ``tokengraft heal`` flag; each default is written here
only (the learning rate's default depends on the mode, so it lives in ``DEFAULT_LR``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError

MODES = ("embeddings", "fit", "alm", "full", "lora")
FIT_LOSSES = ("mse", "kl")
ALM_PARAMS = ("embeddings", "full", "lora")
PRECISIONS = ("auto", "fp32", "bf16")
ROWS = ("both", "input", "output")
DATA_ORDERS = ("random", "coverage")
DEVICES = ("auto", "cpu", "cuda")
# Embedding rows of a fresh transplant are far from their optimum and move a lot; the body
# of a pretrained model needs a small step to keep what it knows (full). LoRA's adapters start
# at zero and share one step size with the embeddings: with three quarters of the change kept
# (DEFAULT_INTERPOLATE), 3e-3 was the best trade between LibreOffice and man-page dev text
# (2e-3 without the interpolation; 6e-3 diverges on man pages; README, "Heal on a CPU budget").
DEFAULT_LR = {"embeddings": 2e-3, "fit": 2e-3, "alm": 2e-3, "full": 1e-4, "lora": 3e-3}
# Weight averaging between the start and the trained model keeps more of what the model knew
# beyond the training text: on dev text, lora at 3e-3 keeping 0.75 of its change went from 1.205
# to 1.146 of the original on German man pages, for 0.829 -> 0.836 on LibreOffice help (session 8,
# before hard negatives; with them 0.75 still beats 0.6: README, "Heal on a CPU budget"); the other
# modes were not measured with it.
DEFAULT_INTERPOLATE = {"embeddings": 1.0, "fit": 1.0, "alm": 1.0, "full": 1.0, "lora": 0.75}
DEFAULT_STEPS = 200  # without --steps, --tokens or --max-seconds
DEFAULT_FIT_SECONDS = 540.0  # --mode fit without --max-seconds: nine minutes
# The teacher's tokenizer is usually the less efficient one on the healing text (that is
# why the model was transplanted), so an ALM row may hold more teacher than student tokens.
TEACHER_LEN_FACTOR = 2


@dataclass
class HealOptions:
    model: str                                   # transplanted model folder (or any causal LM spec)
    corpus: list[str] = field(default_factory=list)  # training corpus specs
    mode: str = "lora"                           # lora (LoRA adapters + embeddings) | embeddings | fit | alm | full
    teacher: str | None = None                   # ALM teacher spec; None: the base model in transplant.json
    steps: int | None = None                     # optimizer steps (default: 200, or as many as --max-seconds allows)
    tokens: int | None = None                    # training budget in student tokens; sets the number of steps
    max_seconds: float | None = None             # wall-clock budget of the run, loading and writing included, evaluation
                                                 # excluded (fit mode: 540 without --steps/--tokens); the LR follows it
    seq_len: int = 512                           # tokens per training row (student side)
    batch_size: int = 2                          # rows per optimizer step, over all processes together (many small
                                                 # steps: on a CPU budget they beat fewer large ones)
    grad_accum: int = 1                          # micro-steps the batch is split into on each process
    lr: float | None = None                      # peak learning rate; None: DEFAULT_LR[mode]
    warmup: int = 10                             # linear warm-up steps, then cosine decay to 10% of lr
    weight_decay: float = 0.0                    # AdamW decay of matrices (never of embeddings or norms)
    max_grad_norm: float = 1.0                   # gradient clipping (0: off)
    tau: float = 100.0                           # ALM temperature on chunk log-probabilities
    alm_lm_weight: float = 0.0                   # weight of the ordinary LM loss added to the ALM loss
    alm_params: str = "embeddings"               # what ALM trains: embeddings | full | lora
    only_new: bool = False                       # train only embedding rows the transplant did not copy
    sparse_rows: bool = True                     # a step moves only the embedding rows its batch reads or predicts
                                                 # (a dense Adam step lowers every unseen token: domain drift)
    sparse_negatives: int = 2048                 # with --sparse-rows, the output rows outside the batch's targets
                                                 # with the largest gradients that step too (the tokens the model
                                                 # most wrongly predicts); 0: only the rows the batch uses
    share_pieces: float = 1.0                    # input rows also move by the shared change of their old-tokenizer
                                                 # pieces, at this share of --lr (reaches rows no batch reads; an
                                                 # untied transplant only); 0: off
    data_order: str = "coverage"                 # coverage: the first epoch reads the documents that show the most
                                                 # token types per token first (every row a short budget can reach);
                                                 # random: a seeded random order
    rows: str = "both"                           # matrices the LM steps train: both | input | output (untied models;
                                                 # fit mode's output-row fit runs before, whatever this says)
    continuation_weight: float = 1.0             # the next-token loss counts this many times at targets that continue
                                                 # a word (start with a letter after a token ending in one)
    fit_input: float = 0.3                       # fit mode: share of the training time matching hidden states
    fit_output: float = 0.2                      # fit mode: share caching final states and fitting output rows
    fit_layer: int | None = None                 # fit mode: layers the hidden states are matched after (None: 1/3)
    fit_loss: str = "mse"                        # fit mode: mse (states) | kl (final states through the old head)
    fit_lr: float = 3e-3                         # fit mode: Adam step size of the hidden-state matching
    fit_output_lr: float = 3e-3                  # fit mode: Adam step size of the output-row fit
    fit_anchor: float = 1e-3                     # fit mode: pull of fitted output rows towards their start
    fit_seq_len: int = 128                       # fit mode: student tokens per hidden-state matching row
    lora_r: int = 16                             # LoRA rank (lora mode)
    lora_alpha: int = 32                         # LoRA scaling numerator
    interpolate: float | None = None             # share of the trained change the output keeps: start + X x (trained
                                                 # - start) for every weight (WiSE-FT weight averaging; 1: all of
                                                 # it); None: DEFAULT_INTERPOLATE[mode]
    eval: list[str] = field(default_factory=list)  # held-out corpus specs for bits per byte
    eval_every: int = 100                        # steps between evaluations (0: only before and after)
    eval_max_bytes: int = 100_000                # bytes of each eval corpus scored
    save_every: int = 100                        # steps between checkpoints (0: none)
    keep_checkpoints: int = 2                    # newest checkpoints kept; older ones are deleted
    out: str | None = None                       # output model folder; None: "<model>-heal-<mode>"
    overwrite: bool = False                      # replace an existing output folder
    resume: bool = False                         # continue from the newest checkpoint of ``out``
    seed: int = 0
    device: str = "auto"                         # auto | cpu | cuda (several GPUs: accelerate launch)
    precision: str = "auto"                      # auto (bf16 autocast where native: GPU, AVX512-BF16/AMX CPU;
                                                 # else fp32) | fp32 | bf16
    progress: bool = True                        # progress bar with loss, tokens/s and ETA
    push_to_hub: str | None = None               # upload the written folder to this hub repository (user/name)
    public: bool = False                         # make the hub repository public (default: private)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    @property
    def keep_share(self) -> float:
        """The share of the trained change the output keeps (``interpolate`` or the mode's default)."""
        return self.interpolate if self.interpolate is not None else DEFAULT_INTERPOLATE[self.mode]

    @property
    def trains(self) -> str:
        """Which parameters are trained: embeddings | full | lora."""
        if self.mode == "fit":
            return "embeddings"
        return self.alm_params if self.mode == "alm" else self.mode

    @property
    def budget(self) -> float | None:
        """The wall-clock budget in seconds (fit mode has one by default), None for none."""
        if self.max_seconds is None and self.mode == "fit" and self.steps is None and self.tokens is None:
            return DEFAULT_FIT_SECONDS
        return self.max_seconds

    @property
    def uses_teacher(self) -> bool:
        return self.mode == "alm" or (self.mode == "fit" and self.fit_input > 0)

    @property
    def teacher_len(self) -> int:
        return self.seq_len * TEACHER_LEN_FACTOR

    def out_dir(self) -> Path:
        if self.out is not None:
            return Path(self.out)
        base = Path(self.model.rstrip("/"))
        return base.with_name(f"{base.name}-heal-{self.mode}")

    def checkpoint_dir(self) -> Path:
        """Checkpoints live beside the output, which is written whole only at the end."""
        out = self.out_dir()
        return out.with_name(f"{out.name}.checkpoints")

    def total_steps(self) -> int | None:
        """Steps to take; None: as many as the wall-clock budget allows."""
        if self.tokens is not None:
            return max(1, math.ceil(self.tokens / (self.batch_size * self.seq_len)))
        if self.steps is not None:
            return self.steps
        return None if self.budget is not None else DEFAULT_STEPS

    def validate(self, world_size: int = 1) -> None:
        """Raise a one-line TokengraftError for a bad combination of options."""
        def bad(msg: str) -> None:
            raise TokengraftError(msg)

        if self.mode not in MODES:
            bad(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.alm_params not in ALM_PARAMS:
            bad(f"unknown --alm-params {self.alm_params!r}; choose one of {', '.join(ALM_PARAMS)}")
        if self.precision not in PRECISIONS:
            bad(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if not self.corpus:
            bad("no training text: pass at least one --corpus")
        if self.tokens is not None and self.tokens < 1:
            bad(f"--tokens must be positive, got {self.tokens}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            bad(f"--max-seconds must be positive, got {self.max_seconds}")
        for name in ("steps", "seq_len", "batch_size", "grad_accum"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                bad(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.seq_len < 8:
            bad(f"--seq-len {self.seq_len} is too short to learn from; use at least 8")
        if self.batch_size % (world_size * self.grad_accum):
            bad(f"--batch-size {self.batch_size} must be a multiple of processes x --grad-accum "
                f"({world_size} x {self.grad_accum}); change one of them")
        if self.learning_rate <= 0 or self.tau <= 0:
            bad("--lr and --tau must be positive")
        if self.only_new and self.trains not in ("embeddings", "lora"):
            bad("--only-new masks embedding rows, so it needs --mode lora or embeddings (or alm with --alm-params "
                "embeddings or lora)")
        if not 0 < self.keep_share <= 1:
            bad(f"--interpolate {self.interpolate} is the share of the trained change kept; give a number in (0, 1]")
        if self.sparse_negatives < 0:
            bad(f"--sparse-negatives counts output rows, so it cannot be negative (got {self.sparse_negatives}); "
                "give 0 to step only the rows the batch uses")
        if self.share_pieces < 0:
            bad(f"--share-pieces is a share of --lr, so it cannot be negative (got {self.share_pieces}); "
                "give 0 to turn it off")
        if self.data_order not in DATA_ORDERS:
            bad(f"unknown --data-order {self.data_order!r}; choose one of {', '.join(DATA_ORDERS)}")
        if not self.continuation_weight > 0:
            bad(f"--continuation-weight scales the loss of word-continuing targets, so it must be positive "
                f"(got {self.continuation_weight}); give 1 to weight every target alike")
        if self.continuation_weight != 1 and self.mode == "alm":
            bad("--continuation-weight weights the next-token loss, which --mode alm does not train on; drop it "
                "or choose another mode")
        if self.rows not in ROWS:
            bad(f"unknown --rows {self.rows!r}; choose one of {', '.join(ROWS)}")
        if self.rows != "both" and self.trains not in ("embeddings", "lora"):
            bad("--rows chooses an embedding matrix, so it needs --mode lora, embeddings or fit "
                "(or alm with --alm-params embeddings or lora)")
        if self.teacher is not None and self.mode not in ("alm", "fit"):
            bad("--teacher is only used by --mode alm and fit; drop it or choose one of those")
        if self.mode == "fit":
            self._validate_fit(world_size, bad)
        if self.push_to_hub is not None:
            from tokengraft.publish.hub import check_repo_id

            check_repo_id(self.push_to_hub)
        if self.out_dir().resolve() == Path(self.model).resolve():
            bad(f"--out {self.out_dir()} is the input model folder; choose another --out")

    def _validate_fit(self, world_size: int, bad: Any) -> None:
        if world_size > 1:
            bad("--mode fit runs in one process; launch it without accelerate's multi-process launcher")
        if self.max_seconds is None and (self.steps is not None or self.tokens is not None):
            bad("--mode fit shares a wall-clock budget between its phases; give --max-seconds "
                "(--steps and --tokens only cap its last phase)")
        if not (0 <= self.fit_input <= 1 and 0 <= self.fit_output <= 1 and self.fit_input + self.fit_output <= 1):
            bad(f"--fit-input {self.fit_input} and --fit-output {self.fit_output} are shares of the budget: "
                "each in [0, 1], together at most 1")
        if self.fit_loss not in FIT_LOSSES:
            bad(f"unknown --fit-loss {self.fit_loss!r}; choose one of {', '.join(FIT_LOSSES)}")
        if self.fit_layer is not None and self.fit_layer < 1:
            bad(f"--fit-layer must be at least 1, got {self.fit_layer}")
        if min(self.fit_lr, self.fit_output_lr) <= 0 or self.fit_anchor < 0 or self.fit_seq_len < 8:
            bad("--fit-lr and --fit-output-lr must be positive, --fit-anchor >= 0, --fit-seq-len >= 8")


@dataclass
class HealResult:
    out: Path                                    # the healed model folder
    steps: int                                   # optimizer steps taken in total (resumed ones included)
    tokens_seen: int                             # student tokens trained on
    final_loss: float                            # mean training loss of the last step
    loss_curve: list[dict[str, float]]           # one entry per step: step, tokens, loss (+ lm/alm parts), lr
    eval_curve: list[dict[str, Any]]             # one entry per evaluation: step, tokens, {corpus: bpb}, tokens/byte
    tokens_per_second: float                     # training throughput of this run
    peak_memory_bytes: int                       # CUDA peak allocated, or the process's peak RSS on CPU
    seconds: float                               # wall time of this run
    budget_seconds: float = 0.0                  # time counted against --max-seconds (evaluation excluded)
    stopped_by_budget: bool = False              # training ended because --max-seconds was spent
