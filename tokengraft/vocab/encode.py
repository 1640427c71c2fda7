"""Encode exact bytes with a tokenizer: the pieces FVT averages for a new token.

``encode_bytes(tok, b" the")`` returns ids whose bytes (see :func:`byte_vocab`) concatenate
to exactly ``b" the"``: no BOS/EOS, no dummy-prefix space, special tokens' text treated as
plain text, normalizers that would change the bytes (NFC, NFKC) skipped where the model can
spell the raw bytes anyway (byte-level BPE, SentencePiece with byte fallback).

Bytes that are not valid UTF-8 (a partial character, as byte-level tokens often are) go
through byte tokens: a byte-level BPE merges them with its own merges, a SentencePiece
model uses its ``<0xNN>`` pieces (so does a literal "▁", which its text path would read as
a space).

When a tokenizer cannot produce the bytes at all (WordPiece drops spaces and lowercases; a
vocabulary without byte fallback meets an unknown character), ``errors="strict"`` (the
default) raises :class:`NotEncodable`, which carries the best-effort ids; ``errors="best"``
returns the best effort instead, and ``token_bytes(tok, ids) == data`` tells the two apart.
"""
from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

from tokengraft.vocab.alphabet import to_byte_level
from tokengraft.vocab.byte_vocab import ByteVocab, backend_of, byte_vocab
from tokengraft.vocab.spelling import component_json

_BATCH = 4096  # items per encode_batch call: bounded memory, still amortised


class NotEncodable(ValueError):
    """The tokenizer cannot spell ``data`` exactly; ``ids`` is the best effort."""

    def __init__(self, data: bytes, ids: list[int], index: int = 0):
        super().__init__(f"bytes {data[:40]!r} (item {index}) have no exact encoding with this tokenizer")
        self.data, self.ids, self.index = data, ids, index


@dataclass
class _Raw:
    """Prefix-free copies of a backend tokenizer, sharing its model (no vocabulary copy)."""
    text: Any                 # normal pipeline minus dummy prefix, post-processor, byte-changing normalizers
    byte_run: Any | None      # byte-level only: BPE model fed byte-alphabet strings, no pre-tokenizer
    continuation: Any | None  # WordPiece only: first piece of each word looked up among "##" tokens


_RAW: "weakref.WeakKeyDictionary[Any, tuple[int, _Raw]]" = weakref.WeakKeyDictionary()


def _shell(normalizer: dict | None, pre_tokenizer: dict | None):
    """A vocabulary-free tokenizer whose components are built from JSON (cheap to parse)."""
    from tokenizers import Tokenizer

    spec = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer, "post_processor": None, "decoder": None,
            "model": {"type": "WordLevel", "vocab": {}, "unk_token": "<unk>"}}
    return Tokenizer.from_str(json.dumps(spec))


def _strip_prefix(node: dict | None, vocab: ByteVocab, keep_normalizer: bool) -> dict | None:
    """Copy of a normalizer/pre-tokenizer JSON without dummy-prefix steps and byte-changing normalizers."""
    if node is None:
        return None
    if node.get("type") == "Sequence":
        key = "normalizers" if "normalizers" in node else "pretokenizers"
        steps = [s for s in (_strip_prefix(c, vocab, keep_normalizer) for c in node[key]) if s is not None]
        return {**node, key: steps} if steps else None
    kind = node.get("type")
    space = vocab.spelling.space
    if kind == "Prepend":
        return None
    if kind == "Metaspace":
        return {**node, "prepend_scheme": "never", "add_prefix_space": False}
    if kind == "ByteLevel":
        return {**node, "add_prefix_space": False}
    is_normalizer_step = kind in {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents",
                                  "Precompiled", "BertNormalizer", "Nmt", "Replace"}
    if is_normalizer_step and not keep_normalizer:
        is_space = kind == "Replace" and (node.get("pattern") or {}).get("String") == " " and node.get("content") == space
        return node if is_space else None
    return node


def _attach(backend, normalizer: dict | None, pre_tokenizer: dict | None, tokens: list[bytes | None] | None = None):
    """A new tokenizer on ``backend``'s model and added tokens with the given components.

    ``tokens`` (the byte view): a non-special added token is matched in text only where its
    bytes are its content's UTF-8. A byte-level added "ĠĠ" stands for two spaces, so the
    literal text "ĠĠ" must not become it.
    """
    from tokenizers import AddedToken, Tokenizer

    shell = _shell(normalizer, pre_tokenizer)
    raw = Tokenizer(backend.model)
    raw.normalizer = shell.normalizer
    raw.pre_tokenizer = shell.pre_tokenizer
    added = sorted(backend.get_added_tokens_decoder().items())

    def literal(i: int, t: Any) -> bool:
        return tokens is None or i >= len(tokens) or tokens[i] in (None, t.content.encode("utf-8"))

    # a token that must not match keeps its id slot under a content no text contains
    unmatched = {i: f"\ue000tokengraft-unmatched-{i}\ue000" for i, t in added if not (t.special or literal(i, t))}
    added = [(i, AddedToken(unmatched[i], normalized=False) if i in unmatched else t) for i, t in added]
    raw.add_special_tokens([t for _, t in added if t.special])
    raw.add_tokens([t for _, t in added if not t.special])
    if any(raw.token_to_id(t.content) != i for i, t in added):
        # added tokens outside the model vocabulary: fall back to a full copy (slower, same result)
        spec = json.loads(backend.to_str())
        for entry in spec.get("added_tokens", []):
            entry["content"] = unmatched.get(entry["id"], entry["content"])
        raw = Tokenizer.from_str(json.dumps(spec))
        raw.normalizer, raw.pre_tokenizer = shell.normalizer, shell.pre_tokenizer
    raw.post_processor = None
    raw.encode_special_tokens = True  # "<|im_start|>" in the data is text, not the special token
    return raw


def _continuation_copy(backend, vocab: ByteVocab, normalizer: dict | None, pre_tokenizer: dict | None):
    """WordPiece whose word-initial lookups hit the "##" tokens, so a word starts as a continuation."""
    from tokenizers import Tokenizer

    spec = json.loads(backend.to_str())
    prefix = vocab.spelling.continuation
    words = spec["model"]["vocab"]
    specials = {t["content"] for t in spec.get("added_tokens", [])} | {spec["model"].get("unk_token")}
    # only "##" pieces (looked up without their prefix at a word's start) and specials remain
    kept = {w: i for w, i in words.items() if w.startswith(prefix) or w in specials}
    kept.update({w[len(prefix):]: i for w, i in words.items() if w.startswith(prefix) and len(w) > len(prefix)})
    spec["model"]["vocab"] = kept
    spec.update(normalizer=normalizer, pre_tokenizer=pre_tokenizer, post_processor=None)
    raw = Tokenizer.from_str(json.dumps(spec))
    raw.encode_special_tokens = True
    return raw


def _raw(tokenizer, vocab: ByteVocab) -> _Raw:
    backend = backend_of(tokenizer)
    size = len(vocab)
    try:
        hit = _RAW.get(tokenizer)
    except TypeError:
        hit = None
    if hit is not None and hit[0] == size:
        return hit[1]
    exact_model = vocab.kind == "byte_level" or vocab.spelling.byte_fallback
    normalizer = _strip_prefix(component_json(backend.normalizer), vocab, keep_normalizer=not exact_model)
    pre = _strip_prefix(component_json(backend.pre_tokenizer), vocab, keep_normalizer=True)
    result = _Raw(
        text=_attach(backend, normalizer, pre, vocab.tokens),
        byte_run=_attach(backend, None, None) if vocab.kind == "byte_level" else None,
        continuation=_continuation_copy(backend, vocab, normalizer, pre) if vocab.kind == "wordpiece" else None,
    )
    try:
        _RAW[tokenizer] = (size, result)
    except TypeError:
        pass
    return result


def _segments(data: bytes, escape: str = "") -> list[tuple[bool, Any]]:
    """Split ``data`` into (True, text) runs of valid UTF-8 and (False, bytes) runs of the rest.

    Characters in ``escape`` also go to byte runs: a literal "▁" would read back as a space
    in a SentencePiece-style tokenizer, its byte pieces spell it exactly.
    """
    text = data.decode("utf-8", "surrogateescape")
    bad = "\udc80-\udcff" + re.escape(escape)
    out: list[tuple[bool, Any]] = []
    pos = 0
    for match in re.finditer(f"[{bad}]+", text):
        if match.start() > pos:
            out.append((True, text[pos:match.start()]))
        out.append((False, match.group().encode("utf-8", "surrogateescape")))
        pos = match.end()
    if pos < len(text):
        out.append((True, text[pos:]))
    return out


def _encode_many(tokenizer, texts: list[str]) -> list[list[int]]:
    fast = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    out: list[list[int]] = []
    for start in range(0, len(texts), _BATCH):
        out += [e.ids for e in fast(texts[start:start + _BATCH], add_special_tokens=False)]
    return out


def _encode_wordpiece(raw: _Raw, texts: list[str], continues: list[bool]) -> list[list[int]]:
    """WordPiece: where ``continues[i]``, the first word of ``texts[i]`` is spelled with "##" pieces."""
    out: list[list[int]] = []
    for start in range(0, len(texts), _BATCH):
        chunk = texts[start:start + _BATCH]
        normal = raw.text.encode_batch(chunk, add_special_tokens=False)
        cont = raw.continuation.encode_batch(chunk, add_special_tokens=False)
        for i, (a, b) in enumerate(zip(normal, cont)):
            glued = bool(a.ids) and a.offsets[0][0] == 0  # the first word starts at the first character
            if not (continues[start + i] and glued):
                out.append(a.ids)
                continue
            first = a.word_ids[0]
            out.append([t for t, w in zip(b.ids, b.word_ids) if w == first]
                       + [t for t, w in zip(a.ids, a.word_ids) if w != first])
    return out


def _plan(data: bytes, vocab: ByteVocab, texts: list[str], runs: list[str], continues: list[bool],
          word_start: bool) -> list[tuple[str, int]]:
    """Queue the segments of one item for encoding; return how to reassemble its ids."""
    plan: list[tuple[str, int]] = []
    escape = vocab.spelling.space if vocab.kind == "sentencepiece" else ""
    for valid, segment in _segments(data, escape):
        if valid:
            continues.append(not word_start and not plan)
            plan.append(("text", len(texts)))
            texts.append(segment)
        elif vocab.kind == "byte_level":
            plan.append(("run", len(runs)))
            runs.append(to_byte_level(segment))
        else:
            plan += [("byte", b) for b in segment]
    return plan


def encode_bytes_batch(tokenizer, items: Sequence[bytes], word_start: bool = False, *,
                       errors: str = "strict") -> list[list[int]]:
    """Ids for each byte string in ``items`` (see :func:`encode_bytes`), batched through ``encode_batch``.

    ``word_start`` only matters for WordPiece: False (default) spells a first word that starts
    at byte 0 with continuation ("##") pieces. ``errors``: "strict" raises :class:`NotEncodable`
    for the first item without an exact encoding, "best" returns best efforts.
    """
    if errors not in ("strict", "best"):
        raise ValueError(f"errors must be 'strict' or 'best', not {errors!r}")
    vocab = byte_vocab(tokenizer)
    raw = _raw(tokenizer, vocab)
    texts: list[str] = []
    continues: list[bool] = []
    runs: list[str] = []
    # per item: index into texts (valid UTF-8, the common case) or a plan of segments
    plans: list[int | list[tuple[str, int]]] = []
    escape = vocab.spelling.space.encode() if vocab.kind == "sentencepiece" else b"\xff"  # 0xFF: never UTF-8
    for data in items:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or escape in data:
            plans.append(_plan(bytes(data), vocab, texts, runs, continues, word_start))
            continue
        plans.append(len(texts))
        texts.append(text)
        continues.append(not word_start)
    if vocab.kind == "wordpiece":
        text_ids = _encode_wordpiece(raw, texts, continues)
    else:
        text_ids = _encode_many(raw.text, texts)
    run_ids = _encode_many(raw.byte_run, runs) if runs else []
    flat = [t or b"" for t in vocab.tokens]
    out: list[list[int]] = []
    for index, (data, plan) in enumerate(zip(items, plans)):
        if isinstance(plan, int):
            ids = text_ids[plan]
        else:
            ids = []
            for what, value in plan:
                if what == "text":
                    ids += text_ids[value]
                elif what == "run":
                    ids += run_ids[value]
                elif value in vocab.byte_ids:
                    ids.append(vocab.byte_ids[value])
        if errors == "strict" and b"".join([flat[i] for i in ids]) != data:
            raise NotEncodable(bytes(data), ids, index)
        out.append(ids)
    return out


def encode_bytes(tokenizer, data: bytes, word_start: bool = False, *, errors: str = "strict") -> list[int]:
    """Ids whose bytes concatenate to exactly ``data``.

    >>> from tokenizers import Tokenizer, models, pre_tokenizers
    >>> tok = Tokenizer(models.BPE({"Ġ": 0, "a": 1, "Ġa": 2}, [("Ġ", "a")]))
    >>> tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    >>> encode_bytes(tok, b" a a")
    [2, 2]
    """
    return encode_bytes_batch(tokenizer, [data], word_start, errors=errors)[0]


def token_bytes(tokenizer, ids: Sequence[int]) -> bytes:
    """Concatenated bytes of ``ids``; special tokens contribute nothing.

    ``tokenizer`` may also be a :class:`ByteVocab`.
    """
    tokens = (tokenizer if isinstance(tokenizer, ByteVocab) else byte_vocab(tokenizer)).tokens
    return b"".join([tokens[i] or b"" for i in ids])


def byte_offsets(tokenizer, ids: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, end)`` byte span of each id in ``token_bytes(tokenizer, ids)``; specials are empty spans.

    Two tokenizations of one text share a boundary wherever both have a span ending at the
    same offset (what ALM distillation chunks on).
    """
    tokens = (tokenizer if isinstance(tokenizer, ByteVocab) else byte_vocab(tokenizer)).tokens
    spans, pos = [], 0
    for i in ids:
        end = pos + len(tokens[i] or b"")
        spans.append((pos, end))
        pos = end
    return spans
