"""What healing reads from a transplant's output folder: its base model and copied rows.

The transplant writes ``transplant.json`` next to the weights; it names the base model
(the natural ALM teacher) and says for every new token how its row was made, "copied"
marking rows taken unchanged from the base model (``--only-new`` leaves those alone).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tokengraft.errors import TokengraftError

TRANSPLANT_FILE = "transplant.json"
TOKENS_FILE = "transplant_tokens.jsonl"


def read_transplant(model: str) -> dict[str, Any] | None:
    """The parsed ``transplant.json`` of a model folder, or None when there is none."""
    path = Path(model) / TRANSPLANT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokengraftError(f"{path} is not readable JSON ({exc}); re-run the transplant") from None


def base_model_spec(info: dict[str, Any]) -> str | None:
    """The base model spec the transplant started from."""
    spec = info.get("base_model") or (info.get("options") or {}).get("model")
    return spec if isinstance(spec, str) else None


def default_teacher(model: str) -> str:
    """``--teacher`` when omitted: the base model named in the transplant's record."""
    info = read_transplant(model)
    spec = base_model_spec(info) if info else None
    if spec is None:
        raise TokengraftError(
            f"--model {model} is not a transplant output (no {TRANSPLANT_FILE} naming its base model), "
            "so ALM has no default teacher; pass --teacher SPEC"
        )
    return spec


def is_copied(source: str) -> bool:
    """A row taken unchanged from the base model: an exact byte match or a matched special."""
    return source == "copied" or (source.startswith("special:") and source != "special:unmatched")


def copied_rows(model: str, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(num_rows,) bool masks of the input and output rows the transplant copied (``--only-new``).

    Read from the transplant's per-token file (``src``, and ``src_out`` where an untied
    output row was made differently). Rows beyond the file (none normally) count as new.
    """
    info = read_transplant(model)
    path = Path(model) / (info or {}).get("tokens_file", TOKENS_FILE)
    if info is None or not path.is_file():
        raise TokengraftError(
            f"--only-new needs the per-token sources of a transplant, but {model} has no {TRANSPLANT_FILE} "
            f"and {TOKENS_FILE}; drop --only-new or heal a transplant output folder"
        )
    inputs = torch.zeros(num_rows, dtype=torch.bool)
    outputs = torch.zeros(num_rows, dtype=torch.bool)
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                t = int(row["id"])
                if t >= num_rows:
                    raise ValueError(f"token id {t} is beyond the model's {num_rows} rows")
                inputs[t] = is_copied(row["src"])
                outputs[t] = is_copied(row.get("src_out", row["src"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TokengraftError(f"{path} is not a valid per-token record ({exc}); re-run the transplant") from None
    return inputs, outputs
