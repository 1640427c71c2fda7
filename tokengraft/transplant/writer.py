"""Write a transplanted model as a folder that plain ``transformers`` loads.

Contents: safetensors weights + ``config.json`` + ``generation_config.json``
(``save_pretrained``), the new tokenizer files (with the chat markers that were added and
the base model's chat template), ``transplant.json`` (options, specs, counts, summary,
warnings), ``transplant_tokens.jsonl`` (one line per token: how its row was made) and the
``README.md`` model card (:mod:`tokengraft.publish.card`).
The folder is written whole or not at all (:func:`tokengraft.assets.outputs.output_dir`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.publish.card import write_card
from tokengraft.transplant.diagnostics import write_token_lines
from tokengraft.transplant.options import DTYPES

logger = logging.getLogger(__name__)

MANIFEST = "transplant.json"
TOKENS = "transplant_tokens.jsonl"


def parse_dtype(name: str | None) -> torch.dtype | None:
    """``"bfloat16"`` -> ``torch.bfloat16``; None stays None (the model's own dtype)."""
    if name is None:
        return None
    if name not in DTYPES:
        raise TokengraftError(f"unknown dtype {name!r}; choose one of: {', '.join(DTYPES)}")
    return getattr(torch, name)


def write_transplant(out: str | Path, model: Any, tokenizer: Any, manifest: dict[str, Any], diagnostics: Any,
                     *, overwrite: bool = False, dtype: str | None = None) -> Path:
    """Save model, tokenizer and diagnostics into ``out`` atomically; return the folder.

    ``diagnostics``: the :class:`tokengraft.transplant.core.Diagnostics` of the transplant.
    The saved tokenizer is loaded back and compared with ``tokenizer`` before the folder is
    renamed into place. A failure while writing (disk full, Ctrl-C) leaves no partial folder
    behind, and with ``overwrite`` the earlier folder stays as it was.
    """
    from tokengraft.assets.outputs import output_dir
    from tokengraft.assets.tokenizer_checks import verify_saved_tokenizer

    out = Path(out)
    target_dtype = parse_dtype(dtype)
    if target_dtype is not None:
        model = model.to(target_dtype)
    weights = {id(p): p for p in model.parameters()}.values()  # tied matrices are saved once
    need = sum(p.numel() * p.element_size() for p in weights) + (8 << 20)  # + tokenizer and records
    with output_dir(out, overwrite=overwrite, need_bytes=need) as tmp:
        model.save_pretrained(tmp)  # safetensors is the default (and only) format in transformers 5
        tokenizer.save_pretrained(tmp)
        problem = verify_saved_tokenizer(tmp, tokenizer)  # transformers may swap in a class of its own
        if problem:
            logger.warning("%s", problem)
            manifest = {**manifest, "warnings": [*manifest.get("warnings", []), problem]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_token_lines(tmp / TOKENS, diagnostics.tokens, diagnostics.texts)
        write_card(tmp, name=out.name)
    logger.info("wrote %s", out)
    return out


def manifest(options: Any, diagnostics: Any, *, seconds: float, weights_dtype: str) -> dict[str, Any]:
    """The JSON that records how the folder was made: options, specs, counts, summary, timing."""
    summary = diagnostics.summary
    return {
        "tokengraft": "transplant",
        "options": options.to_json(),
        "method": summary.method,
        "base_model": options.model,
        "tokenizer": options.tokenizer,
        "donor": options.donor,
        "weights_dtype": weights_dtype,
        "seconds": round(seconds, 3),
        "config_ids": diagnostics.config_ids,
        "summary": summary.to_json(),
        "tokens_file": TOKENS,
    }
