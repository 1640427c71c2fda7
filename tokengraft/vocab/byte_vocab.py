"""One exact byte view of any vocabulary: :class:`ByteVocab` and :func:`byte_vocab`.

Every id gets the bytes it stands for in text (``"Ġthe"`` -> ``b" the"``, ``"▁the"`` ->
``b" the"``, ``"<0x0A>"`` -> ``b"\\n"``, ``"##ing"`` -> ``b"ing"``); special tokens get
None and a role instead. Vocabularies are then compared only in this view.

>>> from tokenizers import Tokenizer, models, pre_tokenizers
>>> tok = Tokenizer(models.BPE({"Ġ": 0, "a": 1, "Ġa": 2}, [("Ġ", "a")]))
>>> tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
>>> byte_vocab(tok).tokens
[b' ', b'a', b' a']
"""
from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from tokengraft.vocab.alphabet import byte_piece_value, from_byte_level
from tokengraft.vocab.spelling import Spelling, detect
from tokengraft.vocab.roles import special_roles

logger = logging.getLogger(__name__)

Key = bytes | tuple[bytes, bool]
# Bytes that occur in valid UTF-8 text (all but C0, C1, F5..FF). A byte-level BPE that lacks
# one of them drops it silently: SmolLM2 has no token for 0x04, 0x06, 0x13, 0x14, 0x16,
# 0x1D, 0xF1, 0xF2.
UTF8_BYTES = frozenset(range(256)) - {0xC0, 0xC1} - set(range(0xF5, 0x100))


@dataclass
class ByteVocab:
    """Exact bytes of every id of one tokenizer (``V`` = number of ids, holes included).

    ``lossless``: for every text, the bytes of ``encode(text)`` concatenate to the text's UTF-8
    (after one dummy space where ``prefix_space``). Two conventions hold even then: a special
    token's content typed in the text becomes that special token (as in every HF tokenizer),
    and a SentencePiece-style tokenizer reads a literal ``▁`` as a space.
    """
    tokens: list[bytes | None]          # (V,) bytes each id stands for; None: special token or unused id
    roles: dict[int, str]               # special id -> "bos" | "eos" | "pad" | "unk" | "chat" | "other"
    kind: str                           # "byte_level" | "sentencepiece" | "wordpiece" | "other"
    lossless: bool                      # see the class docstring
    word_start: list[bool] | None = None  # (V,) WordPiece only: True for word-initial (non-"##") tokens
    prefix_space: bool = False          # encode() adds a dummy space before the text (SentencePiece, add_prefix_space)
    specials: dict[int, str] = field(default_factory=dict)   # special id -> its content ("<|im_start|>")
    declared: dict[str, int] = field(default_factory=dict)   # bos/eos/pad/unk ids the tokenizer declares
    byte_ids: dict[int, int] = field(default_factory=dict)   # byte value -> id of its single-byte token
    spelling: Spelling | None = None
    index: dict[Key, int] = field(default_factory=dict, repr=False)  # key -> canonical id, see key()

    def __post_init__(self) -> None:
        if not self.index:
            self.index, self.byte_ids = build_index(self.tokens, self.word_start, set())

    def __len__(self) -> int:
        return len(self.tokens)

    def key(self, idx: int) -> Key | None:
        """Matching key of an id: its bytes, plus the word-start flag for WordPiece; None for specials."""
        data = self.tokens[idx]
        if data is None:
            return None
        return (data, self.word_start[idx]) if self.word_start is not None else data

    def id_of(self, data: bytes, word_start: bool = True) -> int | None:
        """Id whose bytes are exactly ``data`` (word-initial or continuation for WordPiece), or None."""
        return self.index.get((data, word_start) if self.word_start is not None else data)

    def role_ids(self, role: str) -> list[int]:
        return [i for i, r in self.roles.items() if r == role]


_CACHE: "weakref.WeakKeyDictionary[Any, tuple[tuple, ByteVocab]]" = weakref.WeakKeyDictionary()


def backend_of(tokenizer) -> Any:
    """The ``tokenizers.Tokenizer`` inside a fast tokenizer (or the object itself)."""
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def byte_vocab(tokenizer) -> ByteVocab:
    """The :class:`ByteVocab` of a ``PreTrainedTokenizerFast`` (or a raw ``tokenizers.Tokenizer``).

    Cached per tokenizer object; rebuilt if tokens were added or special tokens reassigned since.
    """
    backend = backend_of(tokenizer)
    declared = declared_ids(tokenizer)
    stamp = (backend.get_vocab_size(with_added_tokens=True), tuple(sorted(declared.items())))
    try:
        hit = _CACHE.get(tokenizer)
    except TypeError:  # not weak-referenceable: no caching
        hit = None
    if hit is not None and hit[0] == stamp:
        return hit[1]
    result = build_byte_vocab(backend, declared)
    try:
        _CACHE[tokenizer] = (stamp, result)
    except TypeError:
        pass
    return result


def declared_ids(tokenizer) -> dict[str, int]:
    """bos/eos/pad/unk ids a transformers tokenizer declares (empty for a raw backend)."""
    out = {}
    for role in ("bos", "eos", "pad", "unk"):
        idx = getattr(tokenizer, f"{role}_token_id", None)
        if isinstance(idx, int):
            out[role] = idx
    return out


def _vocab_bytes(strings: list[str | None], conv: Spelling) -> tuple[list[bytes | None], set[int]]:
    """Bytes of every model-vocabulary token string, and the ids that are byte-fallback pieces."""
    fallback: set[int] = set()
    if conv.kind == "byte_level":
        tokens = [None if s is None else from_byte_level(s) for s in strings]
        # a string outside the alphabet (rare, hand-added) stands for its own UTF-8 bytes
        return [s.encode("utf-8") if b is None and s is not None else b for b, s in zip(tokens, strings)], fallback
    if conv.kind == "sentencepiece":
        space = conv.space
        tokens = [None if s is None else s.replace(space, " ").encode("utf-8") for s in strings]
        if conv.byte_fallback:
            for idx, s in enumerate(strings):
                if s is not None and s.startswith("<0x") and (value := byte_piece_value(s)) is not None:
                    tokens[idx] = bytes([value])
                    fallback.add(idx)
        return tokens, fallback
    prefix = conv.continuation if conv.kind == "wordpiece" else ""
    return [None if s is None else (s[len(prefix):] if prefix and s.startswith(prefix) else s).encode("utf-8")
            for s in strings], fallback


def added_text_bytes(content: str, normalized: bool, conv: Spelling) -> bytes:
    """Bytes of a non-special added token that is not in the model vocabulary.

    Byte-level: read in the byte alphabet like the decoder does (``"ĠĠ"`` -> two spaces) when
    that gives valid UTF-8, else the content's own bytes (``"café"`` added as plain text).
    SentencePiece: a normalized added token is matched after spaces became ``▁``.
    """
    if conv.kind == "byte_level":
        mapped = from_byte_level(content)
        if mapped is not None:
            try:
                mapped.decode("utf-8")
                return mapped
            except UnicodeDecodeError:
                pass
    if conv.kind == "sentencepiece" and normalized:
        content = content.replace(conv.space, " ")
    return content.encode("utf-8")


def build_index(tokens: list[bytes | None], word_start: list[bool] | None,
                fallback: set[int]) -> tuple[dict[Key, int], dict[int, int]]:
    """(key -> canonical id, byte value -> single-byte id) for a list of token bytes.

    Where several ids share a key, a real token wins over a byte-fallback piece (Gemma's
    ``"\\n"`` over ``<0x0A>``), else the lowest id; for single bytes the byte-fallback piece
    wins, as it is what SentencePiece emits for a stray byte.
    """
    index: dict[Key, int] = {}
    byte_ids: dict[int, int] = {}
    for idx, data in enumerate(tokens):
        if data is None:
            continue
        key = (data, word_start[idx]) if word_start is not None else data
        if key not in index or (index[key] in fallback and idx not in fallback):
            index[key] = idx
        if len(data) == 1 and (word_start is None or word_start[idx]):
            if data[0] not in byte_ids or idx in fallback:
                byte_ids[data[0]] = idx
    return index, byte_ids


def build_byte_vocab(backend, declared: dict[str, int]) -> ByteVocab:
    """Build a :class:`ByteVocab` from a ``tokenizers.Tokenizer`` and the declared special ids."""
    conv = detect(backend)
    added = backend.get_added_tokens_decoder()
    model = backend.model
    # the largest id, not the count: ids may have holes (unused ids get None, like specials)
    size = max([backend.get_vocab_size(with_added_tokens=True) - 1, *added.keys(),
                *backend.get_vocab(with_added_tokens=False).values()]) + 1
    # model.id_to_token sees only the model vocabulary (None for added-only ids and holes)
    strings: list[str | None] = [model.id_to_token(i) for i in range(size)]
    tokens, fallback = _vocab_bytes(strings, conv)
    specials = {idx: t.content for idx, t in added.items() if t.special}
    specials.update({idx: strings[idx] for idx in declared.values() if idx not in specials and strings[idx]})
    for idx in specials:
        tokens[idx] = None
    for idx, tok in added.items():
        if idx not in specials and strings[idx] != tok.content:
            tokens[idx] = added_text_bytes(tok.content, tok.normalized, conv)
    word_start = None
    if conv.kind == "wordpiece":
        word_start = [not (s or "").startswith(conv.continuation) for s in strings]
    index, byte_ids = build_index(tokens, word_start, fallback)
    lossless = (not conv.lossy_text and UTF8_BYTES <= byte_ids.keys()
                and (conv.kind == "byte_level" or conv.byte_fallback))
    vocab = ByteVocab(tokens=tokens, roles=special_roles(specials, declared), kind=conv.kind, lossless=lossless,
                      word_start=word_start, prefix_space=conv.prefix_space, specials=specials,
                      declared=dict(declared), byte_ids=byte_ids, spelling=conv, index=index)
    logger.debug("byte vocab: %d ids, kind %s, lossless %s, %d specials", size, conv.kind, lossless, len(specials))
    return vocab
