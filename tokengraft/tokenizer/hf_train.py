"""Ordinary BPE and Unigram training with HF ``tokenizers``, under a base's conventions.

The trained tokenizer is handled as its ``tokenizer.json`` dict: that is how the base's
pipeline components are copied verbatim and how byte-fallback pieces and superword merges
are added afterwards.
"""
from __future__ import annotations

import json
from typing import Iterable

from tokenizers import Tokenizer, pre_tokenizers, trainers

from tokengraft.tokenizer.conventions import (
    BYTE_FALLBACK, BYTE_LEVEL, Conventions, byte_piece_strings, remap_post_processor, training_pre_tokenizer,
)


EMPTY_BPE = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
             "vocab": {}, "merges": []}
EMPTY_UNIGRAM = {"type": "Unigram", "unk_id": None, "vocab": [], "byte_fallback": False}


def pipeline_json(conv: Conventions, model: dict, pre_tokenizer: dict | None) -> dict:
    """A complete ``tokenizer.json`` dict: the base's normalizer/decoder around ``model``."""
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": conv.normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": None,
            "decoder": conv.decoder, "model": model}


def reserved_size(conv: Conventions) -> int:
    """Ids every vocabulary of these conventions holds before any learned token."""
    return len(conv.specials) + 256


def train_bpe(texts: Iterable[str], conv: Conventions, vocab_size: int, min_frequency: int,
              show_progress: bool) -> dict:
    """Train an ordinary BPE; returns its ``tokenizer.json`` dict (specials at ids 0..k-1)."""
    tok = Tokenizer.from_str(json.dumps(pipeline_json(conv, dict(EMPTY_BPE), training_pre_tokenizer(conv))))
    if conv.family == BYTE_LEVEL:
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
                                      special_tokens=conv.specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        learned = vocab_size - reserved_size(conv)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size - 256, min_frequency=min_frequency,
                                      show_progress=show_progress, special_tokens=conv.specials,
                                      limit_alphabet=max(1, min(1000, learned // 2)))
    tok.train_from_iterator(texts, trainer)
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = False  # merges alone decide, so superword ranks hold
    if conv.family == BYTE_FALLBACK:
        data["model"]["byte_fallback"] = True
        data["model"]["unk_token"] = conv.roles.get("unk")
        data["model"]["vocab"] = _with_byte_pieces(data["model"]["vocab"], len(conv.specials))
    return data


def train_unigram(texts: Iterable[str], conv: Conventions, vocab_size: int, show_progress: bool) -> dict:
    """Train a Unigram model; returns its ``tokenizer.json`` dict (specials at ids 0..k-1)."""
    tok = Tokenizer.from_str(json.dumps(pipeline_json(conv, dict(EMPTY_UNIGRAM), training_pre_tokenizer(conv))))
    unk = conv.roles.get("unk")
    if conv.family == BYTE_LEVEL:
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, show_progress=show_progress, unk_token=unk,
                                          special_tokens=conv.specials,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size - 256, show_progress=show_progress, unk_token=unk,
                                          special_tokens=conv.specials)
    tok.train_from_iterator(texts, trainer)
    data = json.loads(tok.to_str())
    if conv.family == BYTE_FALLBACK:
        model = data["model"]
        k = len(conv.specials)
        floor = min((score for _, score in model["vocab"][k:]), default=0.0) - 1.0
        have = {piece for piece, _ in model["vocab"]}
        pieces = [[p, floor] for p in byte_piece_strings() if p not in have]
        model["vocab"] = model["vocab"][:k] + pieces + model["vocab"][k:]
        model["byte_fallback"] = True  # specials keep ids 0..k-1, so the trainer's unk_id stays right
    return data


def _with_byte_pieces(vocab: dict[str, int], num_specials: int) -> dict[str, int]:
    """Insert ``<0x00>..<0xFF>`` right after the specials, as SentencePiece lays them out."""
    ordered = sorted(vocab, key=vocab.get)
    pieces = [p for p in byte_piece_strings() if p not in vocab]
    new_order = ordered[:num_specials] + pieces + ordered[num_specials:]
    return {token: i for i, token in enumerate(new_order)}


def vocab_of(data: dict) -> dict[str, int]:
    """Token string -> id for a BPE or Unigram ``tokenizer.json`` dict (added tokens included)."""
    model = data["model"]
    if model["type"] == "Unigram":
        vocab = {piece: i for i, (piece, _) in enumerate(model["vocab"])}
    else:
        vocab = dict(model["vocab"])
    return vocab


def finalize(data: dict, conv: Conventions) -> Tokenizer:
    """Attach specials (as added tokens with their vocab ids) and the remapped post-processor."""
    vocab = vocab_of(data)
    data = dict(data)
    data["added_tokens"] = [
        {"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for s in conv.specials]
    data["post_processor"] = remap_post_processor(conv.post_processor, vocab)
    return Tokenizer.from_str(json.dumps(data))
