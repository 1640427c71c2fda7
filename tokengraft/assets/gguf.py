"""GGUF files: check that one holds a model, and convert it once to a safetensors folder.

transformers can read a GGUF directly (dequantizing Q4 blocks to float), but that takes
~15-60 s on a small CPU for a 135M model, against well under a second for a safetensors
folder; and later stages need ``config.json`` and ``tokenizer.json`` on disk. So a GGUF is
converted once into a cached HF folder holding the float32 model and its tokenizer.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
# Keys of transformers' GGUF config mapping that are sections, not architectures.
_NOT_ARCHITECTURES = frozenset({"general", "tokenizer"})


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    architecture: str
    num_tensors: int


def _field_text(reader: object, key: str) -> str | None:
    field = reader.fields.get(key)  # type: ignore[attr-defined]
    if field is None:
        return None
    if hasattr(field, "contents"):
        value = field.contents()
        return value if isinstance(value, str) else None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def inspect_gguf(path: Path) -> GgufInfo:
    """Check that ``path`` is a GGUF holding a model transformers can load; cheap (memory-mapped)."""
    if not path.is_file():
        raise TokengraftError(f"model file {path} does not exist; check the path")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise TokengraftError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
                              "give a .gguf model or an HF model folder")
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as err:  # the reader raises ValueError/struct.error/OSError on damage
        raise TokengraftError(f"{path} is a damaged GGUF file ({type(err).__name__}: {err}); download or assemble it again") from None
    architecture = _field_text(reader, "general.architecture")
    if not architecture or not reader.tensors:
        raise TokengraftError(
            f"{path} holds no model weights (a vocab-only/tokenizer GGUF: "
            f"{'no general.architecture' if not architecture else 'no tensors'}); load it with load_tokenizer, or give a model GGUF")
    supported = supported_architectures()
    if supported and architecture not in supported:
        raise TokengraftError(
            f"{path} is a {architecture!r} model, which transformers cannot load from GGUF "
            f"(supported: {', '.join(sorted(supported))}); convert it to an HF folder another way")
    return GgufInfo(path, architecture, len(reader.tensors))


def supported_architectures() -> frozenset[str]:
    """Architectures transformers' GGUF loader knows (empty if that cannot be told)."""
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError:  # a private module; if it moves, let from_pretrained decide
        return frozenset()
    return frozenset(GGUF_SUPPORTED_ARCHITECTURES) - _NOT_ARCHITECTURES


def convert_gguf(path: Path, out: Path, kind: str = "causal") -> None:
    """Write the float32 model and tokenizer of GGUF ``path`` into the existing folder ``out``.

    Ties survive: ``save_pretrained`` stores a tied lm_head once and the config keeps
    ``tie_word_embeddings``, so the reloaded model shares one matrix again.
    """
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, GgufConfig

    info = inspect_gguf(path)
    start = time.perf_counter()
    auto = AutoModelForCausalLM if kind == "causal" else AutoModel
    # dequantize=True: a plain dense model with no quantizer attached, which (unlike a
    # packed GGUF model) save_pretrained accepts.
    try:
        model = auto.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32, local_files_only=True,
            quantization_config=GgufConfig(dequantize=True))
    except (ValueError, KeyError, NotImplementedError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TokengraftError(f"transformers cannot load the {info.architecture!r} model in {path} ({first[:200]})") from None
    logger.info("dequantized %s (%s, %d tensors) in %.1fs", path.name, info.architecture, info.num_tensors, time.perf_counter() - start)
    model.save_pretrained(out)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    except Exception as err:  # the model is still usable; the tokenizer stage will say what is missing
        logger.warning("could not convert the tokenizer in %s (%s); the folder holds the model only", path, err)
    else:
        tokenizer.save_pretrained(out)
    logger.info("converted %s -> %s in %.1fs", path, out, time.perf_counter() - start)
