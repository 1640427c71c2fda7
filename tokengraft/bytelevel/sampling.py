"""Write text from one model or a byte-level mixture of several, byte by byte.

The prompt may end mid-word or mid-character: every model's next-byte distribution sums
over the tokenizations that cover the prompt's end, so nothing pushes it off its
training distribution. Greedy (temperature 0) or sampled; stops at ``max_bytes``, at a
stop string, or when the mixture picks "the text ends".

>>> generate([model], [tokenizer], "The quick bro", GenerateOptions(max_bytes=20))   # doctest: +SKIP
b'wn fox jumps over th'
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from tokengraft.bytelevel.ensemble import check_weights
from tokengraft.bytelevel.model import ByteModel
from tokengraft.bytelevel.options import ByteOptions, GenerateOptions
from tokengraft.bytelevel.reference import END
from tokengraft.errors import TokengraftError
from tokengraft.lm.cache import cache_argument


def as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def pick(probs: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """Greedy (temperature 0) or a sample from probs ** (1 / temperature), renormalised."""
    if temperature < 0:
        raise TokengraftError(f"temperature must be 0 (greedy) or positive, got {temperature}")
    if temperature == 0:
        return int(torch.argmax(probs))
    scaled = probs.clamp_min(0) ** (1.0 / temperature)
    return int(torch.multinomial(scaled / scaled.sum(), 1, generator=generator))


def generate(models: Sequence[Any], tokenizers: Sequence[Any], prompt: str | bytes,
             options: GenerateOptions | None = None, weights: Sequence[float] | None = None,
             byte_level: bool = True, byte_options: ByteOptions | None = None) -> bytes:
    """The bytes generated after ``prompt``: byte by byte by the mixture of ``models`` (each with its
    tokenizer; ``weights`` equal by default), or with ``byte_level=False`` token by token by one model."""
    if len(models) != len(tokenizers):
        raise TokengraftError(f"{len(tokenizers)} tokenizers for {len(models)} models; give one per model")
    if not byte_level:
        if len(models) != 1:
            raise TokengraftError("several models mix byte by byte only; use byte_level=True (--bytes)")
        return generate_tokens(models[0], tokenizers[0], prompt, options)
    return generate_bytes([ByteModel(m, t, byte_options) for m, t in zip(models, tokenizers)], prompt, options,
                          weights)


def generate_bytes(models: Sequence[ByteModel], prompt: str | bytes, options: GenerateOptions | None = None,
                   weights: Sequence[float] | None = None) -> bytes:
    """The bytes generated after ``prompt`` by the mixture of byte models (weights: equal by default)."""
    options = options or GenerateOptions()
    if options.max_bytes < 0:
        raise TokengraftError(f"max bytes must be 0 or more, got {options.max_bytes}")
    w = check_weights(weights, len(models))
    generator = torch.Generator().manual_seed(options.seed)
    states = [m.start(as_bytes(prompt)) for m in models]
    stop = as_bytes(options.stop) if options.stop else b""
    out = bytearray()
    while len(out) < options.max_bytes:
        probs = sum(wi * s.distribution() for wi, s in zip(w, states))
        byte = pick(probs, options.temperature, generator)
        if byte == END:
            break
        out.append(byte)
        if len(out) == options.max_bytes or (stop and out.endswith(stop)):
            break
        for s in states:
            s.append(bytes([byte]))
    return bytes(out)


def generate_tokens(model: Any, tokenizer: Any, prompt: str, options: GenerateOptions | None = None) -> bytes:
    """Plain token-level generation (the prompt tokenized as is), cut to ``max_bytes``: the baseline."""
    from tokengraft.lm.start import resolve_start_token
    from tokengraft.vocab import byte_vocab, encode_bytes

    options = options or GenerateOptions()
    vocab = byte_vocab(tokenizer)
    _, start_id = resolve_start_token(tokenizer)
    ids = [start_id, *encode_bytes(tokenizer, as_bytes(prompt), errors="best")]
    generator = torch.Generator().manual_seed(options.seed)
    stop = as_bytes(options.stop) if options.stop else b""
    from transformers import DynamicCache

    out = bytearray()
    cache = DynamicCache()
    feed = torch.tensor([ids])
    while len(out) < options.max_bytes:
        logits = model(input_ids=feed, use_cache=True, **cache_argument(model, cache)).logits  # the cache grows in place
        probs = torch.softmax(logits[0, -1].double(), dim=-1)
        token = pick(probs, options.temperature, generator)
        data = vocab.tokens[token]
        if not data:
            break
        out += data
        if stop and stop in out:
            out = out[:out.index(stop) + len(stop)]
            break
        feed = torch.tensor([[token]])
    return bytes(out[:options.max_bytes])
