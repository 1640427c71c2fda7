"""Options of ``tokengraft hypernet train``: one dataclass shared by the Python API and the CLI.

Every field maps one-to-one onto a flag (``corpus`` onto ``--corpus CORPUS...``,
``objectives`` onto ``--objectives recon head``); each default is written here only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError

OBJECTIVES = ("recon", "head", "lm")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class HypernetTrainOptions:
    model: str                                   # base model spec (built-in name, folder, hub id)
    corpus: list[str] = field(default_factory=list)  # training text (sampled tokenizers, head and lm objectives)
    out: str | None = None                       # output folder
    objectives: list[str] = field(default_factory=lambda: ["recon", "head"])  # what to train on: recon (base
                                                 # rows from reduced merges), head (cached hidden states), lm (ZeTT)
    steps: int = 1000                            # optimizer steps (the schedule's length without max_seconds)
    max_seconds: float | None = None             # wall-clock budget of the whole command (loading, caching and
                                                 # writing included); replaces --steps and sets the schedule
    lr: float = 1e-3                             # peak learning rate (AdamW)
    warmup: int = 20                             # linear warm-up steps, then cosine decay to 10%
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    hidden: int = 256                            # hypernetwork width
    layers: int = 2                              # hypernetwork transformer layers
    heads: int = 4
    ffn: int = 1024
    max_pieces: int = 16                         # pieces of a token read by the hypernetwork
    recon_tokens: int = 512                      # recon: base tokens reconstructed per step
    recon_weight: float = 1.0
    recon_k_min: int = 256                       # recon: lowest merge rank a reduced merge list keeps
    recon_out_weight: float = 1.0                # recon: weight of output rows (input rows weigh 1)
    head_tokens: int = 8192                      # head: base positions whose hidden states are cached
    head_chunks: int = 8                         # head: cached chunks (of head_chunk_len) read per step
    head_chunk_len: int = 256
    head_weight: float = 1.0
    lm_rows: int = 4                             # lm: sequences per lm step
    lm_seq_len: int = 128
    lm_weight: float = 1.0
    lm_every: int = 1                            # lm: run the (costly) lm objective every N steps
    negatives: int = 256                         # head/lm: new tokens drawn as negatives per step
    min_vocab: int = 2000                        # sampled tokenizers: vocabulary size range
    max_vocab: int = 32000
    tokenizer_every: int = 4                     # draw a new tokenizer every N steps
    save_every: int = 100                        # steps between checkpoints (0: none)
    keep_checkpoints: int = 2
    overwrite: bool = False
    resume: bool = False                         # continue from the newest checkpoint of --out
    seed: int = 0
    device: str = "auto"                         # auto | cpu | cuda (several GPUs: accelerate launch)
    precision: str = "auto"                      # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    progress: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def out_dir(self) -> Path:
        if self.out is None:
            raise TokengraftError("no output folder: pass --out DIR")
        return Path(self.out)

    def checkpoint_dir(self) -> Path:
        out = self.out_dir()
        return out.with_name(f"{out.name}.checkpoints")

    def validate(self) -> None:
        """Raise a one-line TokengraftError for a bad combination of options."""
        unknown = sorted(set(self.objectives) - set(OBJECTIVES))
        if unknown or not self.objectives:
            raise TokengraftError(f"unknown or no objectives {unknown or self.objectives}; "
                                  f"choose from {', '.join(OBJECTIVES)} (e.g. --objectives recon head)")
        if {"head", "lm"} & set(self.objectives) and not self.corpus:
            raise TokengraftError("the head and lm objectives read text: pass --corpus CORPUS...")
        if self.precision not in PRECISIONS:
            raise TokengraftError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        for name in ("steps", "hidden", "layers", "heads", "max_pieces", "recon_tokens", "head_tokens",
                     "head_chunks", "lm_rows", "lm_every", "tokenizer_every", "min_vocab"):
            if getattr(self, name) < 1:
                raise TokengraftError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise TokengraftError(f"--hidden {self.hidden} must be a multiple of --heads {self.heads}")
        if self.max_vocab < self.min_vocab or self.min_vocab < 300:
            raise TokengraftError("sampled vocabularies need 300 <= --min-vocab <= --max-vocab (bytes come first)")
        if self.lm_seq_len < 8 or self.head_chunk_len < 16:
            raise TokengraftError("--lm-seq-len must be >= 8 and --head-chunk-len >= 16")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise TokengraftError(f"--max-seconds must be positive, got {self.max_seconds}")
        if self.lr <= 0:
            raise TokengraftError("--lr must be positive")
