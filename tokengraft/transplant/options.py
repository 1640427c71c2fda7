"""Options of a transplant: one dataclass shared by the Python API and the CLI.

Every field maps one-to-one onto a ``tokengraft transplant`` flag (``method_options``
onto repeated ``--method-option KEY=VALUE``); each default is written here only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_METHOD = "graft"  # tokengraft's own; see benchmarks/bench_transplant.py
DTYPES = ("float32", "bfloat16", "float16")   # dtypes the weights can be saved in
DEVICES = ("cpu", "cuda")
KINDS = ("causal", "encoder")


@dataclass
class TransplantOptions:
    model: str                                  # base model spec (built-in name, folder, hub id)
    tokenizer: str                              # new tokenizer spec
    method: str = DEFAULT_METHOD                # init method: a name from `--list-methods`
    donor: str | None = None                    # a model that already uses the new tokenizer (omp)
    aux: str | None = None                      # sentence embedder of methods that read one (tokenadapt, graft,
                                                # omp without a donor), e.g. minilm-l6
    corpus: str | None = None                   # target-language text for methods that read some; default:
                                                # the corpus a tokengraft-trained tokenizer was trained on
    out: str | Path | None = None               # output folder (written whole or not at all); None: in memory
    device: str = "cpu"                         # where the model runs
    seed: int = 0                               # seeds every random fallback row
    pad_to_multiple_of: int | None = None       # pad the vocabulary; padded rows are the mean row, never sampled
    overwrite: bool = False                     # replace an existing output folder
    method_options: dict[str, Any] = field(default_factory=dict)  # KEY=VALUE for the method's (or a provider's)
                                                                  # options dataclass
    dtype: str | None = None                    # dtype of the saved weights; None keeps the model's
    kind: str = "causal"                        # causal LM (input and output embeddings) or encoder (input only)
    allow_id_gaps: bool = False                 # accept a new tokenizer with unused ids (they get fallback rows)
    eval: list[str] = field(default_factory=list)  # held-out corpora scored before (the base model, its own
                                                   # tokenizer) and after; recorded in transplant.json and the card
    eval_max_bytes: int = 20_000                # bytes of each eval corpus scored
    push_to_hub: str | None = None              # upload the written folder to this hub repository (user/name)
    public: bool = False                        # make the hub repository public (default: private)
    hypernet: str | None = None                 # a trained hypernetwork folder (method hypernet; tokengraft
                                                # hypernet train)

    def validate(self) -> None:
        """One-line errors for options no run could use, raised before anything is loaded."""
        from tokengraft.assets.outputs import check_output_dir
        from tokengraft.assets.weights import check_device
        from tokengraft.errors import TokengraftError

        if self.kind not in KINDS:
            raise TokengraftError(f"unknown kind {self.kind!r}; choose one of: {', '.join(KINDS)}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise TokengraftError(f"--pad-to-multiple-of must be a positive integer, got {self.pad_to_multiple_of}")
        if self.push_to_hub is not None:
            from tokengraft.publish.hub import check_repo_id

            if self.out is None:
                raise TokengraftError("--push-to-hub uploads the written folder; give --out DIR too")
            check_repo_id(self.push_to_hub)
        if self.eval and self.kind != "causal":
            raise TokengraftError("--eval scores a causal LM's bits per byte; an encoder has none")
        if self.eval_max_bytes < 1:
            raise TokengraftError(f"--eval-max-bytes must be a positive integer, got {self.eval_max_bytes}")
        check_device(self.device)
        if self.out is not None:
            check_output_dir(self.out, overwrite=self.overwrite, inputs={
                "input model": self.model, "new tokenizer": self.tokenizer, "donor": self.donor,
                "auxiliary embedder": self.aux, "corpus": self.corpus, "hypernetwork": self.hypernet})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = None if self.out is None else str(self.out)
        return data
