"""The other stages' APIs that healing uses, behind the few adapters healing needs.

Assets (models, tokenizers, corpora), the byte view and the BPB meter belong to their own
stages; healing calls them only through this module so that their signatures are adapted
in one place.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from tokengraft.assets.corpus import Corpus


def load_model(spec: str, dtype: torch.dtype = torch.float32) -> Any:
    from tokengraft.assets import load_model as load

    return load(spec, dtype=dtype)


def load_tokenizer(spec: str) -> Any:
    from tokengraft.assets import load_tokenizer as load

    return load(spec)


def load_corpora(specs: Sequence[str]) -> list[Corpus]:
    from tokengraft.assets import load_corpora as load

    return list(load(list(specs)))


def max_token_id(tokenizer: Any) -> int:
    from tokengraft.vocab.ids import max_token_id as largest

    return largest(tokenizer)


def start_token_id(tokenizer: Any) -> int:
    """The token every document starts with, chosen exactly as the BPB meter chooses it."""
    from tokengraft.lm.start import resolve_start_token

    return int(resolve_start_token(tokenizer)[1])


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """Exact bytes of every id; a special token stands for its own text (a literal
    ``<|endoftext|>`` in training text is tokenized to it), an unused id for None."""
    from tokengraft.vocab import byte_vocab

    vocab = byte_vocab(tokenizer)
    return [data if data is not None or i not in vocab.specials else vocab.specials[i].encode("utf-8")
            for i, data in enumerate(vocab.tokens)]


def encode_exact(tokenizer: Any, data: bytes) -> list[int] | None:
    """Ids that spell ``data`` exactly (no dummy prefix, no normaliser), None if impossible."""
    from tokengraft.vocab import NotEncodable, encode_bytes

    try:
        return encode_bytes(tokenizer, data)
    except NotEncodable:
        return None


def bits_per_byte(model: Any, tokenizer: Any, corpus: Corpus, *, device: str, max_bytes: int | None,
                  bf16: bool = False) -> tuple[float, float]:
    """``(bpb, tokens_per_byte)`` of ``corpus`` through the BPB meter."""
    from tokengraft.measure import EvalOptions, bits_per_byte as meter

    options = EvalOptions(max_bytes=max_bytes, device=device, dtype="bfloat16" if bf16 else "float32")
    result = meter(model, tokenizer, corpus, options)
    return float(result.bpb), float(result.tokens_per_byte)


def old_pieces(old_tokenizer: Any, new_tokenizer: Any) -> list[list[int]]:
    """For every new token, the old-tokenizer ids whose bytes spell it ([] where none do)."""
    from tokengraft.transplant.correspondence import encode_pieces
    from tokengraft.vocab import byte_vocab

    return encode_pieces(old_tokenizer, byte_vocab(new_tokenizer).tokens)[0]
