"""Options of a transplant: one dataclass shared by the Python API and the CLI.

Every field maps one-to-one onto a ``tokengraft transplant`` flag (``method_options``
onto repeated ``--method-option KEY=VALUE``); each default is written here only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_METHOD = "graft"  # tokengraft's own; see benchmarks/bench_transplant.py
KINDS = ("causal", "encoder")


@dataclass
class TransplantOptions:
    model: str                                  # base model spec (built-in name, folder, hub id)
    tokenizer: str                              # new tokenizer spec
    method: str = DEFAULT_METHOD                # a name from METHODS (`--list-methods`)
    donor: str | None = None                    # model that already uses the new tokenizer (OMP)
    aux: str | None = None                      # auxiliary embedder spec (TokenAdapt, FOCUS, WECHSEL)
    corpus: str | None = None                   # text for methods that train or measure (FOCUS)
    out: str | Path | None = None               # output folder; None keeps the result in memory
    device: str = "cpu"                         # "cpu" | "cuda"
    seed: int = 0
    pad_to_multiple_of: int | None = None       # pad the vocabulary (padded rows = mean row, never sampled)
    overwrite: bool = False                     # replace an existing output folder
    method_options: dict[str, Any] = field(default_factory=dict)  # passed to the method's options dataclass
    dtype: str | None = None                    # dtype of the saved weights; None keeps the model's
    kind: str = "causal"                        # "causal" | "encoder" (input embeddings only)
    allow_id_gaps: bool = False                 # accept a new tokenizer with unused ids (they get fallback rows)

    def validate(self) -> None:
        """One-line errors for options no run could use, raised before anything is loaded."""
        from tokengraft.assets.outputs import check_output_dir
        from tokengraft.assets.weights import check_device
        from tokengraft.errors import TokengraftError

        if self.kind not in KINDS:
            raise TokengraftError(f"unknown kind {self.kind!r}; choose one of: {', '.join(KINDS)}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise TokengraftError(f"--pad-to-multiple-of must be a positive integer, got {self.pad_to_multiple_of}")
        check_device(self.device)
        if self.out is not None:
            check_output_dir(self.out, overwrite=self.overwrite, inputs={
                "input model": self.model, "new tokenizer": self.tokenizer, "donor": self.donor,
                "auxiliary embedder": self.aux, "corpus": self.corpus})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = None if self.out is None else str(self.out)
        return data
