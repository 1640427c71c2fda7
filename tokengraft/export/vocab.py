"""A fast tokenizer as llama.cpp's GGUF tokenizer metadata (``tokenizer.ggml.*``).

Two kinds of vocabulary are written, the two that transplanted models carry:

* byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen, every tokenizer ``tokengraft tokenizer train``
  makes): ``tokenizer.ggml.model = "gpt2"``, the tokens in their byte-level spelling, the merges,
  and ``tokenizer.ggml.pre`` naming llama.cpp's pre-tokenizer regex (:data:`PRE_TOKENIZERS`);
* SentencePiece-style BPE with byte fallback (Gemma, Llama-2, Mistral): ``"llama"``, the tokens
  with ``▁`` for spaces, ``<0xNN>`` byte tokens, and scores. llama.cpp's SentencePiece
  tokenizer merges the adjacent pair whose merged token scores highest, so a token's score is
  minus the rank of the merge that makes it: the same order as the BPE merges (which are
  written too, for readers that use them).

Unigram and WordPiece vocabularies (T5, XLM-R, BERT) are refused: they belong to encoders,
which llama.cpp does not run as language models.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from tokengraft.errors import TokengraftError

log = logging.getLogger(__name__)

# llama.cpp token types (gguf.TokenType)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# HF pre-tokenizer shapes -> llama.cpp pre-tokenizer names (llama-vocab.cpp); keys: see pre_tokenizer_key
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZERS = {
    ("bytelevel",): "gpt-2",
    ("digits", "bytelevel"): "smollm",  # digits one by one, then GPT-2's regex (SmolLM2 and its descendants)
    (f"split:{LLAMA3_REGEX}", "bytelevel-noregex"): "llama-bpe",
    (f"split:{QWEN2_REGEX}", "bytelevel-noregex"): "qwen2",
}


@dataclass
class GGUFVocab:
    model: str                                   # "gpt2" | "llama"
    tokens: list[str]                            # (V,) one string per id, padded rows included
    types: list[int]                             # (V,) llama.cpp token types
    merges: list[str]                            # "a b", in rank order
    scores: list[float] | None = None            # (V,) "llama" only
    pre: str | None = None                       # "gpt2" only
    special_ids: dict[str, int] = field(default_factory=dict)  # bos / eos / unk / pad -> id
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool = False
    chat_template: str | None = None


def gguf_vocab(tokenizer: Any, rows: int) -> GGUFVocab:
    """The GGUF tokenizer metadata of ``tokenizer`` for a model with ``rows`` embedding rows.

    Rows beyond the tokenizer (a padded vocabulary) become unused ``[PAD<i>]`` tokens, since
    llama.cpp needs one token per row.
    """
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise TokengraftError(f"GGUF export supports BPE tokenizers (byte-level or SentencePiece-style);"
                              f" this one is {model.get('type')}, an encoder's vocabulary llama.cpp does not run")
    added = {int(t["id"]): t for t in data.get("added_tokens") or []}
    vocab = {int(i): s for s, i in model["vocab"].items()}
    size = max([*vocab, *added, -1]) + 1
    if size > rows:
        raise TokengraftError(f"the tokenizer has {size} ids but the model {rows} embedding rows; export the"
                              " transplanted folder, whose tokenizer and model agree")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    byte_level = _has_byte_level(data)
    tokens, types = [], []
    for i in range(rows):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(CONTROL if added[i].get("special") else USER_DEFINED)
        elif i in vocab:
            tokens.append(vocab[i])
            types.append(BYTE if not byte_level and _is_byte_token(vocab[i]) else NORMAL)
        else:  # a hole in the ids, or a padded row
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
    unk = model.get("unk_token")
    if unk is not None and unk in model["vocab"]:
        types[model["vocab"][unk]] = UNKNOWN
    out = GGUFVocab(model="gpt2" if byte_level else "llama", tokens=tokens, types=types, merges=merges,
                    special_ids=_special_ids(tokenizer), chat_template=_chat_template(tokenizer))
    out.add_bos, out.add_eos = _adds_specials(tokenizer)
    if byte_level:
        out.pre = pre_tokenizer_name(data.get("pre_tokenizer"))
    else:
        if not model.get("byte_fallback"):
            raise TokengraftError("GGUF export of a SentencePiece-style BPE needs byte fallback (<0xNN> tokens),"
                                  " as llama.cpp's SentencePiece tokenizer assumes it")
        out.scores = _merge_scores(tokens, merges)
        out.add_space_prefix = _adds_space_prefix(data)
    return out


def _has_byte_level(data: dict[str, Any]) -> bool:
    return "ByteLevel" in json.dumps(data.get("pre_tokenizer")) or "ByteLevel" in json.dumps(data.get("decoder"))


def _is_byte_token(token: str) -> bool:
    return len(token) == 6 and token.startswith("<0x") and token.endswith(">")


def pre_tokenizer_key(pre: dict[str, Any] | None) -> tuple[str, ...]:
    """A hashable description of a HF pre-tokenizer: its steps, with a split's regex."""
    if pre is None:
        return ()
    steps = pre["pretokenizers"] if pre.get("type") == "Sequence" else [pre]
    key = []
    for step in steps:
        kind = step.get("type")
        if kind == "ByteLevel":
            key.append("bytelevel" if step.get("use_regex", True) else "bytelevel-noregex")
        elif kind == "Digits":
            key.append("digits" if step.get("individual_digits") else "digits-grouped")
        elif kind == "Split":
            pattern = step.get("pattern") or {}
            key.append("split:" + str(pattern.get("Regex", pattern.get("String"))))
        else:
            key.append(str(kind).lower())
    return tuple(key)


def pre_tokenizer_name(pre: dict[str, Any] | None) -> str:
    """llama.cpp's name for this byte-level pre-tokenizer; GPT-2's (with a warning) when unknown."""
    name = PRE_TOKENIZERS.get(pre_tokenizer_key(pre))
    if name is None:
        log.warning("llama.cpp has no known name for this pre-tokenizer %s; writing 'gpt-2', so llama.cpp may split"
                    " some text differently than transformers", pre_tokenizer_key(pre))
        return "gpt-2"
    return name


def _special_ids(tokenizer: Any) -> dict[str, int]:
    out = {}
    for role in ("bos", "eos", "unk", "pad"):
        value = getattr(tokenizer, f"{role}_token_id", None)
        if isinstance(value, int) and value >= 0:
            out[role] = value
    return out


def _adds_specials(tokenizer: Any) -> tuple[bool, bool]:
    """(adds BOS, adds EOS) by itself, seen on a probe text."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    specials = set(tokenizer.all_special_ids)
    add_bos = len(full) > len(plain) and full[0] in specials
    add_eos = len(full) > len(plain) and full[-1] in specials and full[-1] != (full[0] if add_bos else None)
    return add_bos, add_eos


def _adds_space_prefix(data: dict[str, Any]) -> bool:
    text = json.dumps([data.get("normalizer"), data.get("pre_tokenizer")])
    return '"Prepend"' in text or '"prepend_scheme": "always"' in text or '"prepend_scheme": "first"' in text


def _merge_scores(tokens: list[str], merges: list[str]) -> list[float]:
    """Score of each token for llama.cpp's SentencePiece merging: minus the rank of its merge, 0 otherwise."""
    rank = {}
    for r, merge in enumerate(merges):
        rank.setdefault(merge.replace(" ", ""), r)
    return [-float(rank[t]) if t in rank else 0.0 for t in tokens]


def _chat_template(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        return template.get("default") or next(iter(template.values()), None)
    return template
