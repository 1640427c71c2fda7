"""``export_gguf``: a model folder (a transplant's or heal's output) as one GGUF file that
llama.cpp and Ollama run, carrying the model's own (new) tokenizer.

Written with the ``gguf`` package (llama.cpp's own Python writer): tensor names from its name
map, layouts per :mod:`tokengraft.export.archs`, tokenizer metadata per
:mod:`tokengraft.export.vocab`. ``f16`` and ``q8_0`` keep 1-D tensors (norms, biases) in f32, as
llama.cpp's converter does; ``q8_0`` needs rows of a multiple of 32 values, so a matrix with
shorter rows stays f16. The file is written to a temporary sibling and renamed: a failed export
leaves nothing behind.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokengraft.errors import TokengraftError
from tokengraft.export.archs import Arch, arch_of, convert_tensor
from tokengraft.export.vocab import GGUFVocab, gguf_vocab

log = logging.getLogger(__name__)

DTYPES = ("f32", "f16", "q8_0")
Q8_BLOCK = 32


@dataclass
class ExportOptions:
    model: str                  # model folder (a transplant's or heal's output, or any causal LM spec tokengraft loads)
    gguf: str                   # output file (written whole or not at all)
    dtype: str = "f16"          # matrices' type: f32 | f16 | q8_0; 1-D tensors stay f32
    overwrite: bool = False     # replace an existing file
    name: str | None = None     # general.name; default: from the folder's transplant.json, or its name

    def validate(self) -> None:
        """One-line errors for options no export could use, raised before the model is loaded."""
        from tokengraft.assets.outputs import check_output_file

        if self.dtype not in DTYPES:
            raise TokengraftError(f"unknown GGUF dtype {self.dtype!r}; choose one of: {', '.join(DTYPES)}")
        out = check_output_file(self.gguf, flag="--gguf", example="model.gguf")
        if out.exists() and not self.overwrite:
            raise TokengraftError(f"{out} already exists; choose another --gguf or pass --overwrite")
        model = Path(self.model).expanduser()
        if model.exists() and model.resolve() == out.resolve():
            raise TokengraftError(f"--gguf {out} is the input model; write the GGUF file elsewhere")


def export_gguf(options: ExportOptions) -> Path:
    """Write ``options.gguf``; return its path.

    >>> # export_gguf(ExportOptions(model="out/smollm2-fr", gguf="out/smollm2-fr.gguf", dtype="q8_0"))
    """
    from tokengraft.assets import load_model, load_tokenizer

    options.validate()
    out = Path(options.gguf).expanduser()
    model = load_model(options.model, dtype=torch.float32)
    tokenizer = load_tokenizer(options.model)
    name = options.name or _default_name(options.model)
    return write_gguf(model, tokenizer, out, dtype=options.dtype, name=name)


def write_gguf(model: Any, tokenizer: Any, out: Path, *, dtype: str = "f16", name: str = "model") -> Path:
    """The in-memory half of :func:`export_gguf`: ``model`` and ``tokenizer`` to ``out``."""
    import gguf

    config = model.config.get_text_config()
    arch = arch_of(config)
    emb = model.get_input_embeddings().weight
    vocab = gguf_vocab(tokenizer, emb.shape[0])
    tensors = list(_tensors(model, arch, config, dtype))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        writer = gguf.GGUFWriter(str(tmp), arch.gguf)
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name)
        writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype])
        if dtype == "q8_0":
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        arch.hparams(writer, config)
        writer.add_vocab_size(emb.shape[0])
        _write_vocab(writer, vocab)
        for gguf_name, data, raw in tensors:
            writer.add_tensor(gguf_name, data, raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except OSError as exc:
        from tokengraft.assets.outputs import write_error

        raise write_error(exc, out, fix="or choose another --gguf") from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s (%s, %s, %.1f MB)", out, arch.gguf, dtype, out.stat().st_size / 2**20)
    return out


def _tensors(model: Any, arch: Arch, config: Any, dtype: str):
    """(gguf name, data, raw dtype or None) of every weight; a tied output matrix is written once."""
    import gguf

    names = gguf.get_tensor_name_map(_arch_enum(arch.gguf), int(config.num_hidden_layers
                                                                 if hasattr(config, "num_hidden_layers")
                                                                 else config.n_layer))
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    unmapped = []
    for hf_name, tensor in model.state_dict().items():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if tied and tensor.data_ptr() == head.weight.data_ptr() and gguf_name != "token_embd.weight":
            continue  # llama.cpp ties a model without an output matrix
        if gguf_name is None:
            if hf_name.endswith((".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")):
                continue  # buffers, not weights
            unmapped.append(hf_name)
            continue
        data = convert_tensor(arch, config, hf_name, tensor.detach().float().cpu().numpy())
        yield (gguf_name, *_cast(data, dtype))
    if unmapped and head is not None and not tied and all(n.startswith("lm_head") for n in unmapped):
        raise TokengraftError(f"llama.cpp's {arch.gguf} has no separate output matrix, and this model's is untied"
                              " (graft unties it); transplant with a method that keeps them tied, e.g. --method fvt")
    if unmapped:
        raise TokengraftError(f"GGUF export: no llama.cpp name for {', '.join(unmapped[:5])}"
                              f"{' ...' if len(unmapped) > 5 else ''}; this model variant is not supported")


def _cast(data: np.ndarray, dtype: str) -> tuple[np.ndarray, Any]:
    import gguf

    if data.ndim < 2 or dtype == "f32":
        return data.astype(np.float32), None
    if dtype == "q8_0" and data.shape[-1] % Q8_BLOCK == 0:
        return gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0), \
            gguf.GGMLQuantizationType.Q8_0
    return data.astype(np.float16), None


def _arch_enum(name: str) -> Any:
    import gguf

    for key, value in gguf.MODEL_ARCH_NAMES.items():
        if value == name:
            return key
    raise TokengraftError(f"this gguf package does not know the architecture {name!r}; upgrade it (pip install -U gguf)")


def _write_vocab(writer: Any, vocab: GGUFVocab) -> None:
    writer.add_tokenizer_model(vocab.model)
    if vocab.pre is not None:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id, "unk": writer.add_unk_token_id,
              "pad": writer.add_pad_token_id}
    for role, token_id in vocab.special_ids.items():
        adders[role](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    writer.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)


def _default_name(spec: str) -> str:
    folder = Path(str(spec))
    record = folder / "transplant.json"
    if record.is_file():
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            return f"{Path(str(data.get('base_model'))).name} ({data.get('method')}, tokengraft)"
        except (OSError, ValueError):
            pass
    return folder.name or str(spec)
