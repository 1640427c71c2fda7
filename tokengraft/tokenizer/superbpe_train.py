"""Two-stage SuperBPE training, written out as a plain ``tokenizer.json``.

How the saved tokenizer reproduces the training: ``tokenizers``' BPE model encodes each
pre-token by repeatedly applying the lowest-ranked merge present. Stage-1 merges keep the
low ranks and stage-2 merges follow, so inside a pre-token every applicable stage-1 merge
fires before any superword merge. The saved pre-tokenizer therefore no longer splits words;
it splits only where stage 2 never merges (newlines, sentence punctuation), and stage 2 is
trained on exactly those pre-tokens as segmented by the stage-1 merges (computed by
``tokenizers`` itself). Each stage-2 merge makes a new spelling, so no stage-1 merge can fire
after it and rank order equals training order: encoding == training, by construction.

The one difference from "stage 1 inside every word": stage-1 merges now see whole chunks,
so a stage-1 merge can join pieces across a boundary the base's regex used to cut (e.g.
runs of spaces). Where that happens it happens identically in training and encoding.
"""
from __future__ import annotations

import json
import logging
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from tokengraft.tokenizer.conventions import (
    BYTE_FALLBACK, SPACE_MARK, Conventions, byte_piece_strings, token_bytes_fn,
)
from tokengraft.tokenizer.hf_train import pipeline_json, train_bpe
from tokengraft.tokenizer.options import TrainOptions
from tokengraft.tokenizer.superbpe import Progress, SuperwordResult, learn_superword_merges

logger = logging.getLogger(__name__)

# Superword tokens never cross a newline (with the spaces before it) nor a sentence end;
# the sentence punctuation (and closing brackets/quotes after it) stays with its sentence.
CHUNK_NEWLINES = rf"[\s{SPACE_MARK}]*\n"
CHUNK_SENTENCE_END = rf"[.!?;\u3002\uff01\uff1f][^\s\p{{L}}\p{{N}}{SPACE_MARK}]*"
_WORD_SPLITTERS = {"Split", "Whitespace", "WhitespaceSplit", "Punctuation", "BertPreTokenizer", "CharDelimiterSplit"}


def _components(pre: dict | None) -> list[dict]:
    if pre is None:
        return []
    if pre["type"] == "Sequence":
        return [c for p in pre["pretokenizers"] for c in _components(p)]
    return [pre]


def superword_pre_tokenizer(conv: Conventions) -> dict:
    """The base's pre-tokenizer without its word splits, after the chunk splits."""
    steps: list[dict] = [
        {"type": "Split", "pattern": {"Regex": CHUNK_NEWLINES}, "behavior": "Isolated", "invert": False},
        {"type": "Split", "pattern": {"Regex": CHUNK_SENTENCE_END}, "behavior": "MergedWithPrevious", "invert": False},
    ]
    for comp in _components(conv.pre_tokenizer):
        if comp["type"] == "ByteLevel":
            steps.append({**comp, "use_regex": False})
        elif comp["type"] == "Metaspace":
            steps.append({**comp, "split": False})
        elif comp["type"] not in _WORD_SPLITTERS:
            steps.append(comp)  # e.g. Digits: the base's digit convention survives
    return {"type": "Sequence", "pretokenizers": steps}


def segment_chunks(tokenizer: Tokenizer, texts: Sequence[str], show_progress: bool,
                   batch: int = 256) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique pre-tokens of ``texts`` as stage-1 id arrays, with how often each occurs."""
    counts: dict[bytes, int] = {}
    for start in tqdm(range(0, len(texts), batch), desc="stage-1 segmentation", disable=not show_progress):
        for enc in tokenizer.encode_batch(list(texts[start:start + batch]), add_special_tokens=False):
            if not enc.ids:
                continue
            ids = np.asarray(enc.ids, dtype=np.int32)
            words = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
            for piece in np.split(ids, np.flatnonzero(np.diff(words)) + 1):
                key = piece.tobytes()
                counts[key] = counts.get(key, 0) + 1
    chunks = [np.frombuffer(k, dtype=np.int32) for k in counts]
    return chunks, np.fromiter(counts.values(), dtype=np.int64, count=len(counts))


def train_superbpe(texts: Sequence[str], conv: Conventions, options: TrainOptions,
                   progress: Progress | None = None) -> tuple[dict, SuperwordResult]:
    """Stage 1 (HF BPE up to the transition size), then stage 2 (superword merges)."""
    transition = options.transition_size()
    stage1 = train_bpe(texts, conv, transition, options.min_frequency, options.show_progress)
    if progress is not None:
        progress("stage 1", transition, options.vocab_size)
    model = stage1["model"]
    chunker = Tokenizer.from_str(json.dumps(pipeline_json(conv, model, superword_pre_tokenizer(conv))))
    chunks, weights = segment_chunks(chunker, texts, options.show_progress)
    if progress is not None:
        progress("segmented", len(chunks), len(chunks))
    strings = sorted(model["vocab"], key=model["vocab"].get)
    to_bytes = token_bytes_fn(conv.family)
    fixed = set(conv.specials) | (set(byte_piece_strings()) if conv.family == BYTE_FALLBACK else set())
    logger.info("stage 2: %d unique chunks, %d stage-1 tokens, %d merges to learn",
             len(chunks), len(strings), options.vocab_size - len(strings))
    result = learn_superword_merges(
        chunks, weights, [to_bytes(s) for s in strings], strings, options.vocab_size - len(strings),
        max_words=options.max_words, min_frequency=options.min_frequency,
        mergeable=[s not in fixed for s in strings], progress=progress, show_progress=options.show_progress)
    if len(result.merges) < options.vocab_size - len(strings):
        logger.warning("stage 2 ran out of pairs seen %d+ times after %d merges; the vocabulary has %d tokens",
                    options.min_frequency, len(result.merges), len(strings) + len(result.merges))
    merged = dict(stage1)
    merged["model"] = with_superword_merges(model, result)
    merged["pre_tokenizer"] = superword_pre_tokenizer(conv)
    return merged, result


def with_superword_merges(model: dict, result: SuperwordResult) -> dict:
    """A BPE model dict with the stage-2 tokens and merges appended after stage 1's."""
    model = dict(model)
    vocab = dict(model["vocab"])
    strings = sorted(vocab, key=vocab.get) + result.strings
    merges = [list(m.split(" ", 1)) if isinstance(m, str) else list(m) for m in model["merges"]]
    for rank, (a, b) in enumerate(result.merges):
        vocab[result.strings[rank]] = result.first_id + rank
        merges.append([strings[a], strings[b]])
    model["vocab"], model["merges"], model["ignore_merges"] = vocab, merges, False
    return model
