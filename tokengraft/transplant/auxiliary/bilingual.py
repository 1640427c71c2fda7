"""WECHSEL's auxiliary space from static TOKEN vectors (``BilingualOptions(space="tokens")``), and
the bilingual dictionary both spaces use.

The default space is the paper's: aligned static WORD vectors (:mod:`.wordvectors`). This module's
alternative skips words and aligns token vectors directly:

1. static token embeddings (:mod:`.static`) of source-language text tokenized with the OLD
   tokenizer, and of target-language text tokenized with the NEW tokenizer; working on tokens
   directly replaces the reference's word-to-subword step;
2. seed pairs (old token, new token): words from a bilingual dictionary when one exists for the
   language pair (Debian ``dict-freedict-<src>-<tgt>``, dictd format, read by :func:`read_dictd`),
   else identical byte strings (shared subwords, numbers, names: the copied tokens);
3. orthogonal Procrustes (Schoenemann 1966) on unit-length, mean-centred vectors (the usual
   normalisation of cross-lingual mapping work), optionally refined by re-solving on mutual
   nearest neighbours.

The result: ``aux_old`` (V_old, a) rotated onto ``aux_new`` (V_new, a); zero rows mean no vector.

Measured (SmolLM2's tokenizer on LibreOffice English help, a 32k BPE on the German help, 5 MB
each, default static options): precision@1 of held-out dictionary translations among the new
tokens, identical-string seeds 0.054 / 0.089 / 0.115 after 0 / 1 / 2 refinements; dictionary
seeds 0.145 / 0.167 / 0.174; both 0.162 / 0.167 / 0.171. Hence: dictionary + identical seeds when a
dictionary exists, and two refinement rounds (about 1 s each).
"""
from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.focus import has_vector

logger = logging.getLogger(__name__)

# ISO 639-1 -> the three-letter codes FreeDict uses in its file names
FREEDICT_CODES = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por",
                  "nl": "nld", "ru": "rus", "pl": "pol", "sv": "swe", "cs": "ces", "ja": "jpn"}
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_NOTES = re.compile(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}|\([^)]*\)")
_SENSE = re.compile(r"^\s*\d+\.\s*")


@dataclass
class BilingualOptions:
    space: str = "words"        # "words": the paper's word vectors (wordvectors.py) | "tokens": static token vectors
    seed_pairs: str = "auto"    # "dictionary" | "identical" | "both" | "auto" (both if a dictionary exists)
    refine_iterations: int = 2  # re-solve Procrustes on mutual nearest neighbours this many times
    refine_top: int = 20000     # candidate tokens per side for refinement (lowest ids first)


def dictd_number(code: str) -> int:
    """dictd's base64 numbers: ``dictd_number("B8") == 124``."""
    value = 0
    for c in code:
        value = value * 64 + _B64[c]
    return value


def parse_dictd_entry(entry: str) -> tuple[str, list[str]]:
    r"""(headword, single-word translations) of one FreeDict entry.

    Line 1 is the headword with its pronunciation; the translation lines follow (comma-
    separated, possibly numbered senses "1. ...", with grammar and domain notes that are
    stripped) until a blank or indented line (examples, synonyms, "see:" references).

    >>> parse_dictd_entry("window /wˈɪndəʊ/\nFenster <neut>, Sichtfenster <neut> [comp.]\n see: {windows}\n")
    ('window', ['Fenster', 'Sichtfenster'])
    >>> parse_dictd_entry("abate /əbeit/\n1. abaisser, abréger\n2. s'amoindrir\n")
    ('abate', ['abaisser', 'abréger', "s'amoindrir"])
    """
    lines = entry.split("\n")
    head = lines[0].split(" /")[0].strip()
    words: list[str] = []
    for line in lines[1:]:
        if not line.strip() or line[0].isspace():
            break
        line = _SENSE.sub("", _NOTES.sub(" ", line))
        words += [w.strip() for w in re.split(r"[,;]", line)]
    return head, [w for w in words if w and " " not in w]


def read_dictd(index_path: Path, dict_path: Path) -> list[tuple[str, str]]:
    """(source word, target word) pairs of single-word entries of a dictd dictionary.

    ``dict_path`` may be gzip/dictzip (``.dict.dz``) or plain; entries come from the index's
    base64 offsets and lengths. Multi-word headwords and translations are skipped.
    """
    raw = gzip.open(dict_path).read() if str(dict_path).endswith(".dz") else Path(dict_path).read_bytes()
    pairs: dict[tuple[str, str], None] = {}
    for line in Path(index_path).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or " " in parts[0].strip() or parts[0].startswith("00"):
            continue
        start, length = dictd_number(parts[1]), dictd_number(parts[2])
        head, words = parse_dictd_entry(raw[start:start + length].decode("utf-8", errors="ignore"))
        if " " in head or not head:
            continue
        for w in words:
            pairs.setdefault((head, w), None)
    return list(pairs)


def find_dictionary(source: str, target: str) -> tuple[Path, Path] | None:
    """(index, dict) files of FreeDict's source->target dictionary under the Debian cache, or None."""
    from tokengraft.assets.cache import debian_root

    src, tgt = FREEDICT_CODES.get(source), FREEDICT_CODES.get(target)
    if not src or not tgt:
        return None
    folder = debian_root() / "usr" / "share" / "dictd"
    index, data = folder / f"freedict-{src}-{tgt}.index", folder / f"freedict-{src}-{tgt}.dict.dz"
    return (index, data) if index.exists() and data.exists() else None


def load_dictionary(source: str, target: str | None) -> list[tuple[str, str]]:
    """FreeDict's (source word, target word) pairs for WECHSEL; a clear error when there are none.

    WECHSEL aligns its two spaces on a bilingual dictionary (plus identical strings), so a
    language without one, or a dictionary without a single-word pair, is an error rather than a
    silently weaker alignment.
    """
    if not target:
        raise TokengraftError("wechsel needs the target language to pick a bilingual dictionary: use a"
                              " libreoffice:<lang> corpus (e.g. --corpus libreoffice:de:train)")
    found = find_dictionary(source, target)
    if found is None:
        src, tgt = FREEDICT_CODES.get(source, source), FREEDICT_CODES.get(target, target)
        raise TokengraftError(f"no bilingual dictionary {source}->{target}: install Debian's dict-freedict-{src}-{tgt}"
                              " (scripts/setup.sh unpacks eng-deu and eng-fra into the cache)")
    pairs = read_dictd(*found)
    if not pairs:
        raise TokengraftError(f"bilingual dictionary {found[0].name} has no single-word entries; WECHSEL cannot"
                              " align with it")
    return pairs


def procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(a, a) orthogonal W minimising ||x W - y||_F for paired rows x, y (n, a).

    W = U V^T where U S V^T = svd(x^T y) (Schoenemann 1966).
    """
    u, _, vt = torch.linalg.svd(x.double().T @ y.double())
    return (u @ vt).to(x.dtype)


def normalise(vectors: torch.Tensor) -> torch.Tensor:
    """Unit length, mean-centre, unit length again; rows without a vector stay zero."""
    ok = has_vector(vectors)
    out = torch.nn.functional.normalize(vectors.float(), dim=-1)
    if ok.any():
        out = out - out[ok].mean(dim=0)
    out = torch.nn.functional.normalize(out, dim=-1)
    out[~ok] = 0
    return out


def token_pairs(
    old_bytes: Sequence[bytes | None], new_bytes: Sequence[bytes | None], word_pairs: Sequence[tuple[str, str]]
) -> list[tuple[int, int]]:
    """(old id, new id) pairs for dictionary words that are single tokens on both sides,
    with a leading space (word start) and without.

    >>> token_pairs([b" house", b"x"], [b" Haus"], [("house", "Haus")])
    [(0, 0)]
    """
    old_ids = {b: i for i, b in enumerate(old_bytes) if b}
    new_ids = {b: i for i, b in enumerate(new_bytes) if b}
    out: dict[tuple[int, int], None] = {}
    for src, tgt in word_pairs:
        for prefix in (b" ", b""):
            o, n = old_ids.get(prefix + src.encode()), new_ids.get(prefix + tgt.encode())
            if o is not None and n is not None:
                out.setdefault((o, n), None)
    return list(out)


def identical_pairs(old_bytes: Sequence[bytes | None], new_bytes: Sequence[bytes | None]) -> list[tuple[int, int]]:
    """(old id, new id) of tokens with the same byte string in both vocabularies."""
    old_ids = {b: i for i, b in enumerate(old_bytes) if b}
    return [(old_ids[b], n) for n, b in enumerate(new_bytes) if b and b in old_ids]


def align(
    old_vectors: torch.Tensor, new_vectors: torch.Tensor, pairs: Sequence[tuple[int, int]], options: BilingualOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """(aux_old rotated onto the new space, aux_new), both normalised; zero rows stay zero."""
    src, tgt = normalise(old_vectors), normalise(new_vectors)
    ok_old, ok_new = has_vector(src), has_vector(tgt)
    seeds = [(o, n) for o, n in pairs if ok_old[o] and ok_new[n]]
    if len(seeds) < 2:
        logger.warning("bilingual alignment: only %d seed pairs have vectors; spaces left unaligned", len(seeds))
        return src, tgt
    o_ids, n_ids = torch.tensor(seeds).T
    rotation = procrustes(src[o_ids], tgt[n_ids])
    for _ in range(options.refine_iterations):
        o_extra, n_extra = mutual_nearest(src @ rotation, tgt, options.refine_top)
        rotation = procrustes(src[torch.cat([o_ids, o_extra])], tgt[torch.cat([n_ids, n_extra])])
    logger.info("bilingual alignment: %d seed pairs, %d refinement round(s)", len(seeds), options.refine_iterations)
    return src @ rotation, tgt


def mutual_nearest(src: torch.Tensor, tgt: torch.Tensor, top: int, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (src id, tgt id) that are each other's nearest neighbour among the first ``top``
    vector-bearing rows of each side (lowest ids: for BPE the earliest, most frequent merges)."""
    s_ids = has_vector(src).nonzero().squeeze(1)[:top]
    t_ids = has_vector(tgt).nonzero().squeeze(1)[:top]
    if s_ids.numel() == 0 or t_ids.numel() == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    a, b = src[s_ids], tgt[t_ids]
    forward = torch.cat([(a[i:i + chunk] @ b.T).argmax(dim=1) for i in range(0, a.shape[0], chunk)])
    backward = torch.cat([(b[i:i + chunk] @ a.T).argmax(dim=1) for i in range(0, b.shape[0], chunk)])
    mutual = backward[forward] == torch.arange(s_ids.numel())
    return s_ids[mutual], t_ids[forward[mutual]]


def bilingual_alignment(
    old_vectors: torch.Tensor, new_vectors: torch.Tensor,
    old_bytes: Sequence[bytes | None], new_bytes: Sequence[bytes | None],
    dictionary: Sequence[tuple[str, str]] | None = None, options: BilingualOptions | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(aux_old (V_old, a), aux_new (V_new, a)) for WECHSEL, in one aligned space.

    ``old_vectors``: static vectors of source-language text under the old tokenizer;
    ``new_vectors``: of target-language text under the new tokenizer (same dim);
    ``dictionary``: (source word, target word) pairs, e.g. from :func:`read_dictd`; None = none.
    """
    options = options or BilingualOptions()
    mode = options.seed_pairs
    if mode == "auto":
        mode = "both" if dictionary else "identical"
    if mode in ("dictionary", "both") and not dictionary:
        raise TokengraftError("WECHSEL seed pairs need a bilingual dictionary and none was found; use seed_pairs='identical'")
    pairs: list[tuple[int, int]] = []
    if mode in ("dictionary", "both"):
        pairs += token_pairs(old_bytes, new_bytes, dictionary or [])
    if mode in ("identical", "both"):
        pairs += identical_pairs(old_bytes, new_bytes)
    logger.info("bilingual alignment: %d seed pairs (%s)", len(pairs), mode)
    return align(old_vectors, new_vectors, pairs, options)
