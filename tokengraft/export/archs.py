"""What each architecture looks like in llama.cpp: its GGUF name, hyperparameter keys, and the
few tensor layouts that differ from transformers.

Tensor names come from the ``gguf`` package's own map (``gguf.get_tensor_name_map``, the one
llama.cpp's converter uses). The layout differences, each mirrored by the reader in
transformers (``modeling_gguf_pytorch_utils``), are:

* Llama/Mistral: llama.cpp rotates interleaved pairs, transformers rotates halves, so the rows
  of ``q_proj`` and ``k_proj`` are permuted per head (:func:`permute_rotary`);
* Gemma-2/3: transformers' RMSNorm multiplies by ``1 + w``, llama.cpp's by ``w``: norms get +1;
* GPT-2: its ``Conv1D`` weights are stored (in, out), llama.cpp wants (out, in): transposed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from tokengraft.errors import TokengraftError


@dataclass(frozen=True)
class Arch:
    gguf: str                                         # llama.cpp's architecture name
    permute_rotary: bool = False                      # Llama's interleaved rotary pairs
    norm_plus_one: bool = False                       # Gemma's (1 + w) norms
    transpose: tuple[str, ...] = ()                   # name parts of (in, out) Conv1D weights (GPT-2)
    hparams: Callable[[Any, Any], None] | None = None  # extra keys: (writer, config)


def permute_rotary(w: np.ndarray, heads: int) -> np.ndarray:
    """(heads * head_dim, in) rows from halves order to llama.cpp's interleaved pairs (its converter's ``permute``)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_theta(config: Any, layer_type: str = "full_attention") -> float | None:
    params = getattr(config, "rope_parameters", None) or {}
    if layer_type in params and isinstance(params[layer_type], dict):
        params = params[layer_type]
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    return theta if theta is not None else getattr(config, "rope_theta", None)


def _rope_type(config: Any) -> str:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if "full_attention" in params and isinstance(params["full_attention"], dict):
        params = params["full_attention"]
    return str(params.get("rope_type") or params.get("type") or "default")


def head_dim(config: Any) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def write_decoder_hparams(writer: Any, config: Any, key_length: bool = False) -> None:
    """The keys every decoder here shares (context, widths, heads, norm epsilon, rotary base);
    the head width too where it is not hidden / heads, or where ``key_length`` asks for it."""
    rope = _rope_type(config)
    if rope != "default":
        raise TokengraftError(f"GGUF export supports the default rotary embedding; this model uses {rope!r}")
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(int(config.num_hidden_layers))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(int(config.num_attention_heads))
    writer.add_head_count_kv(int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    theta = _rope_theta(config)
    if theta is not None:
        writer.add_rope_freq_base(float(theta))
    if key_length or head_dim(config) != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim(config))
        writer.add_value_length(head_dim(config))


def _llama(writer: Any, config: Any) -> None:
    write_decoder_hparams(writer, config)
    writer.add_rope_dimension_count(head_dim(config))


def _gemma(writer: Any, config: Any) -> None:
    write_decoder_hparams(writer, config, key_length=True)
    if getattr(config, "sliding_window", None):
        writer.add_sliding_window(int(config.sliding_window))
    if getattr(config, "attn_logit_softcapping", None):
        writer.add_attn_logit_softcapping(float(config.attn_logit_softcapping))
    if getattr(config, "final_logit_softcapping", None):
        writer.add_final_logit_softcapping(float(config.final_logit_softcapping))


def _phi3(writer: Any, config: Any) -> None:
    write_decoder_hparams(writer, config)
    writer.add_rope_dimension_count(int(head_dim(config) * getattr(config, "partial_rotary_factor", 1.0)))


def _gpt2(writer: Any, config: Any) -> None:
    writer.add_context_length(int(config.n_positions))
    writer.add_embedding_length(int(config.n_embd))
    writer.add_block_count(int(config.n_layer))
    writer.add_feed_forward_length(int(config.n_inner or 4 * config.n_embd))
    writer.add_head_count(int(config.n_head))
    writer.add_layer_norm_eps(float(config.layer_norm_epsilon))


ARCHS = {
    "llama": Arch("llama", permute_rotary=True, hparams=_llama),
    "mistral": Arch("llama", permute_rotary=True, hparams=_llama),  # llama.cpp runs Mistral as a Llama
    "qwen2": Arch("qwen2", hparams=write_decoder_hparams),
    "qwen3": Arch("qwen3", hparams=write_decoder_hparams),
    "gemma2": Arch("gemma2", norm_plus_one=True, hparams=_gemma),
    "gemma3_text": Arch("gemma3", norm_plus_one=True, hparams=_gemma),
    "phi3": Arch("phi3", hparams=_phi3),
    "gpt2": Arch("gpt2", transpose=(".c_attn.", ".c_proj.", ".c_fc."), hparams=_gpt2),
}


def arch_of(config: Any) -> Arch:
    model_type = getattr(config, "model_type", None)
    if model_type == "gemma3":  # a multimodal Gemma-3 config: its text model is what was transplanted
        model_type = "gemma3_text"
    if model_type not in ARCHS:
        raise TokengraftError(f"GGUF export does not support {model_type!r} models yet; supported: "
                              f"{', '.join(sorted(ARCHS))}")
    return ARCHS[model_type]


def convert_tensor(arch: Arch, config: Any, hf_name: str, data: np.ndarray) -> np.ndarray:
    """One transformers tensor in llama.cpp's layout."""
    if arch.permute_rotary and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
        heads = config.num_attention_heads if "q_proj" in hf_name else \
            (getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        data = permute_rotary(data, heads)
    if arch.norm_plus_one and hf_name.endswith("norm.weight"):
        data = data + 1
    if arch.transpose and data.ndim == 2 and any(part in hf_name for part in arch.transpose):
        data = data.T
    return np.ascontiguousarray(data)
