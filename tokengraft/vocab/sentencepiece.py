"""Build a ``tokenizers.Tokenizer`` from a SentencePiece ``.model`` file (BPE or Unigram).

SentencePiece BPE merges, at every step, the adjacent pair whose concatenation is the
piece with the HIGHEST score (leftmost on ties). A HF BPE model merges the pair with the
lowest merge rank, so the merge list is every split ``(left, right)`` of every normal
piece whose two halves are pieces too, ordered by the merged piece's score. Ordering by
piece id instead (a common shortcut) is wrong for vocabularies whose whitespace-run pieces
(``▁▁``) sit early in the id order with score -1e9, e.g. Mistral's v3 model.

Spaces become ``▁`` in the normalizer, after a ``Prepend("▁")`` for ``add_dummy_prefix``
(the pre-tokenizer is empty: SentencePiece BPE merges across the whole text); bytes outside the vocabulary become ``<0xNN>`` pieces when the model
was trained with ``byte_fallback``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tokengraft.errors import missing_package
from tokengraft.vocab.alphabet import SPM_SPACE

# sentencepiece_model.proto piece types
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2


@dataclass
class SentencePieceInfo:
    """What the converted tokenizer's wrapper needs to know: special token contents by role."""
    roles: dict[str, str] = field(default_factory=dict)   # "bos"/"eos"/"unk"/"pad" -> piece
    add_dummy_prefix: bool = False
    byte_fallback: bool = False


def parse_model(data: bytes):
    """Parse the bytes of a ``.model`` file into a ``ModelProto`` (raises ValueError if corrupt)."""
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError as exc:  # pragma: no cover - sentencepiece is a core dependency
        raise missing_package("reading SentencePiece models", "sentencepiece", "pip install sentencepiece protobuf") from exc
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError, a plain Exception subclass
        raise ValueError(f"not a SentencePiece model ({exc})") from exc
    if not proto.pieces:
        raise ValueError("not a SentencePiece model (no pieces)")
    return proto


def spm_merges(pieces: list[tuple[str, float, int]]) -> list[tuple[str, str]]:
    """Merges for a SentencePiece BPE vocabulary ``[(piece, score, type), ...]`` (id = index).

    >>> spm_merges([("a", 0, 1), ("b", -1, 1), ("ab", -2, 1), ("abb", -0.5, 1)])
    [('ab', 'b'), ('a', 'b')]
    """
    ids = {p: i for i, (p, _, kind) in enumerate(pieces) if kind == NORMAL}
    ranked = []
    for piece, score, kind in pieces:
        if kind != NORMAL or len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in ids and right in ids:
                ranked.append((-score, ids[piece], ids[left], ids[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def _normalizer(spec):
    from tokenizers import Regex, normalizers

    steps = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex("^ +| +$"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    # SentencePiece prepends its dummy "▁" even when the text already starts with a space;
    # Metaspace(prepend_scheme="first") would skip it there, Prepend does not.
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend(SPM_SPACE))
    steps.append(normalizers.Replace(" ", SPM_SPACE))
    return normalizers.Sequence(steps)


def sentencepiece_to_tokenizer(data: bytes):
    """``(tokenizers.Tokenizer, SentencePieceInfo)`` equivalent to a SentencePiece model's encode.

    Control pieces (``<s>``, ``[INST]``) and the unknown piece become special added tokens,
    user-defined pieces non-special added tokens (SentencePiece matches them in text).
    The converted tokenizer prepends the BOS piece like HF's Llama/Mistral tokenizers do.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    proto = parse_model(data)
    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    pieces = [(p.piece, p.score, p.type) for p in proto.pieces]
    unk_id = trainer.unk_id if 0 <= trainer.unk_id < len(pieces) else None
    if trainer.model_type == BPE:
        vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
        model = models.BPE(vocab=vocab, merges=spm_merges(pieces), unk_token=pieces[unk_id][0] if unk_id is not None else None,
                           fuse_unk=True, byte_fallback=trainer.byte_fallback)
    elif trainer.model_type == UNIGRAM:
        model = models.Unigram([(p, s) for p, s, _ in pieces], unk_id, trainer.byte_fallback)
    else:
        raise ValueError(f"SentencePiece model type {trainer.model_type} is not supported (only BPE and Unigram)")
    tok = Tokenizer(model)
    tok.normalizer = _normalizer(norm)
    steps = [decoders.Replace(SPM_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if norm.add_dummy_prefix:
        steps.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(steps)
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False)
                            for p, _, kind in pieces if kind in (CONTROL, UNKNOWN)])
    tok.add_tokens([AddedToken(p, special=False, normalized=False) for p, _, kind in pieces if kind == USER_DEFINED])
    roles = {role: pieces[i][0] for role, i in (("bos", trainer.bos_id), ("eos", trainer.eos_id),
                                                  ("unk", trainer.unk_id), ("pad", trainer.pad_id))
             if 0 <= i < len(pieces)}
    if "bos" in roles:
        bos = roles["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, trainer.bos_id)])
    info = SentencePieceInfo(roles=roles, add_dummy_prefix=norm.add_dummy_prefix, byte_fallback=trainer.byte_fallback)
    return tok, info
