"""Checks on model files before and while ``transformers`` reads them.

A user's model folder can be damaged (a truncated download), unsafe (a pickle that runs
code when loaded) or simply not what the command needs (a causal LM given as an encoder).
Each case is one line that names the file and the fix; nothing here loads weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from tokengraft.errors import TokengraftError, first_line as _first_line

# Files that hold weights but are not a model spec: the model is the folder around them.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
# Architectures whose checkpoint carries a language-model head: loading one as a bare encoder
# would silently drop the head, so kind="encoder" refuses them.
def weights_file_error(path: Path) -> TokengraftError:
    """A weights file given where a model (or tokenizer) spec belongs: name the folder instead."""
    return TokengraftError(f"{path} is a weights file, not a model; give the folder that holds it and its "
                           f"config.json ({path.parent})")


def check_device(device: str | torch.device) -> torch.device:
    """The torch device for ``device``, or a one-line error when it is unknown or absent here."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError):
        raise TokengraftError(f"unknown device {device!r}; pass --device cpu or --device cuda") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise TokengraftError("device cuda was asked but torch sees no CUDA GPU here; pass --device cpu")
    if target.type == "cuda" and target.index is not None and target.index >= torch.cuda.device_count():
        raise TokengraftError(f"device {target} was asked but torch sees {torch.cuda.device_count()} GPU(s); "
                              "pass --device cuda:0")
    return target


def check_weight_files(folder: Path) -> None:
    """Every ``*.safetensors`` file in ``folder`` is whole: its header parses and covers the file.

    Reads only the headers (a few KB), so a truncated download fails here, in a second,
    instead of deep inside ``from_pretrained``.
    """
    for path in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(path)
        if problem:
            raise TokengraftError(f"model weights {path} are {problem}; copy, download or convert the model again")


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"truncated ({size} bytes, not even a header)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"truncated ({size:,} bytes, the header alone needs {length + 8:,})"
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError):
            return "corrupted (the safetensors header is not valid JSON)"
    if not isinstance(header, dict):
        return "corrupted (the safetensors header is not a table of tensors)"
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets") or []) == 2]
    expected = 8 + length + max(ends, default=0)
    if expected > size:
        return f"truncated ({size:,} of {expected:,} bytes)"
    return None


def unsafe_pickle_error(name: str, source: str) -> TokengraftError:
    # Never suggest weights_only=False: that would run whatever the pickle holds.
    return TokengraftError(f"model {name!r}: the pytorch_model.bin in {source} cannot be loaded safely (it holds "
                           "Python objects beyond tensors, which could run code); convert it to safetensors with a "
                           "tool you trust, or use a safetensors copy of the model")


def damaged_weights_error(name: str, source: str, err: Exception) -> TokengraftError | None:
    """A one-line error for a damaged weights file, or None when ``err`` is something else (a bug)."""
    kind = type(err).__name__
    message = str(err)
    if kind == "SafetensorError":
        return TokengraftError(f"model {name!r}: a safetensors file in {source} is damaged ({_first_line(err)}); "
                               "copy, download or convert the model again")
    if isinstance(err, RuntimeError) and ("PytorchStreamReader" in message or "zip archive" in message
                                          or "unexpected EOF" in message):
        return TokengraftError(f"model {name!r}: the pytorch_model.bin in {source} is truncated or damaged "
                               f"({_first_line(err)}); copy, download or convert the model again")
    if isinstance(err, EOFError):
        return TokengraftError(f"model {name!r}: a weights file in {source} ends too early (truncated); "
                               "copy, download or convert the model again")
    return None
