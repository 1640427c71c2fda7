"""Static token embeddings from raw text: PPMI co-occurrence + truncated SVD.

FOCUS and WECHSEL need one vector per token of a tokenizer, learned from text tokenized
with that tokenizer. The references train fastText CBOW (dim 100, 3 epochs, minCount 10,
10 negatives). We use the count-based equivalent instead (Levy, Goldberg & Dagan 2015:
SGNS implicitly factorises a shifted PMI matrix; PPMI + SVD with context-distribution
smoothing and eigenvalue weighting matches it on similarity tasks) because it is

* deterministic given the seed (fastText with several threads is not),
* a pure-torch dependency (fastText wheels are unmaintained and not in our pins),
* fast on 2 CPU cores: one pass to count, one sparse randomised SVD.

Measured: 4.8 MB of LibreOffice French help under a 24k BPE (1.1M tokens) takes 14-23 s of
CPU on this 2-core machine (tokenizing ~40%, counting ~25%, SVD ~35%); the vectors' nearest
neighbours are sensible (" rouge" -> " bleu", " vert"; " lundi" -> " dimanche").

``StaticOptions(algorithm="fasttext")`` trains the references' fastText CBOW instead (``pip install
fasttext-wheel``; one thread, so the vectors are reproducible), on the same token-id sequences.

Tokens seen fewer than ``min_count`` times get a zero row, which every method reads as
"no auxiliary vector" (see :func:`tokengraft.transplant.methods.focus.has_vector`).

>>> vecs = static_embeddings_from_ids([[0, 1, 2, 0, 1, 2] * 20], 4, StaticOptions(dim=2))
>>> vecs.shape, bool(vecs[3].abs().sum() == 0)
(torch.Size([4, 2]), True)
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import torch

logger = logging.getLogger(__name__)


ALGORITHMS = ("ppmi", "fasttext")


@dataclass
class StaticOptions:
    algorithm: str = "ppmi"     # "ppmi" (PPMI + SVD, below) | "fasttext" (the references' CBOW)
    dim: int = 100              # FOCUS reference: fastText dim 100
    window: int = 5             # tokens either side (fastText's default ws)
    min_count: int = 10         # FOCUS reference minCount 10; rarer tokens get no vector
    smoothing: float = 0.75     # context-distribution smoothing exponent (Levy et al. 2015)
    eigen_power: float = 0.5    # vectors = U * S**p; 0.5 is the symmetric split of the SVD
    power_iterations: int = 4   # randomised SVD subspace iterations (more = closer to exact)
    oversample: int = 16        # extra random directions for the randomised SVD
    seed: int = 0
    epochs: int = 3             # fastText only: FOCUS reference 3 epochs
    negatives: int = 10         # fastText only: FOCUS reference 10 negatives


def token_counts(sequences: Sequence[Sequence[int]], vocab_size: int) -> torch.Tensor:
    """(vocab_size,) long: how often each id occurs."""
    flat = _flatten(sequences)[0]
    return torch.bincount(flat[flat < vocab_size], minlength=vocab_size)


def cooccurrence(sequences: Sequence[Sequence[int]], keep: torch.Tensor, window: int) -> torch.Tensor:
    """Symmetric co-occurrence counts among the kept ids, weighted 1/distance.

    ``keep``: (V,) long mapping each id to its row in the result, -1 for dropped ids.
    Returns a coalesced sparse COO tensor (m, m), m = number of kept ids. Windows never
    cross a sequence boundary; dropped ids still occupy their position (as in PPMI work).
    """
    ids, doc = _flatten(sequences)
    m = int(keep.max().item()) + 1 if keep.numel() else 0
    # ids beyond ``keep`` (a tokenizer with more ids than the vocabulary given) count as dropped
    inside = ids < keep.numel()
    rows = torch.where(inside, keep[ids.clamp(max=max(keep.numel() - 1, 0))], -1) if keep.numel() else ids * 0 - 1
    keys, weights = [], []
    for k in range(1, window + 1):
        a, b = rows[:-k], rows[k:]
        ok = (doc[:-k] == doc[k:]) & (a >= 0) & (b >= 0)
        a, b = a[ok], b[ok]
        keys += [a * m + b, b * m + a]   # both directions: the matrix is symmetric
        weights.append(torch.full((2 * a.numel(),), 1.0 / k, dtype=torch.float64))
    if not keys or m == 0:
        return torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (m, m))
    key = torch.cat(keys)
    uniq, inverse = torch.unique(key, return_inverse=True)
    values = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inverse, torch.cat(weights))
    index = torch.stack([uniq // m, uniq % m])
    return torch.sparse_coo_tensor(index, values, (m, m), is_coalesced=True, check_invariants=False)


def ppmi(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Positive PMI of a sparse count matrix (m, m), context distribution raised to ``smoothing``.

    pmi(w, c) = log P(w, c) - log P(w) - log P_s(c), P_s(c) = n_c**s / sum n**s; negatives dropped.
    """
    counts = counts.coalesce()
    (row, col), n = counts.indices(), counts.values()
    total = n.sum()
    row_sum = torch.zeros(counts.shape[0], dtype=n.dtype).index_add_(0, row, n)
    col_sum = torch.zeros(counts.shape[1], dtype=n.dtype).index_add_(0, col, n)
    smooth = col_sum.pow(smoothing)
    pmi = (n / total).log() - (row_sum[row] / total).log() - (smooth[col] / smooth.sum()).log()
    pos = pmi > 0
    return torch.sparse_coo_tensor(
        counts.indices()[:, pos], pmi[pos].float(), counts.shape, is_coalesced=True, check_invariants=False
    )


def randomized_svd(matrix: torch.Tensor, rank: int, options: StaticOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``rank`` left singular vectors (m, rank) and values (rank,) of a sparse (m, n) matrix.

    Halko, Martinsson & Tropp's range finder with subspace iterations; the random start comes
    from a seeded generator, so the result is reproducible.
    """
    m, n = matrix.shape
    q = min(rank + options.oversample, m, n)
    gen = torch.Generator().manual_seed(options.seed)
    with warnings.catch_warnings():  # CSR is "beta" in torch but its CPU matmul is the fast path here
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        forward = matrix.to_sparse_csr().double()
        backward = matrix.t().to_sparse_csr().double()
    basis = _orthonormal(forward @ torch.randn(n, q, generator=gen, dtype=torch.float64))
    for _ in range(options.power_iterations):
        basis = _orthonormal(forward @ _orthonormal(backward @ basis))
    small = (backward @ basis).t()  # (q, n) = basis^T A
    u_small, singular, _ = torch.linalg.svd(small, full_matrices=False)
    u = basis @ u_small
    # fix the sign of each singular vector (largest entry positive) so results do not flip
    sign = torch.sign(u.gather(0, u.abs().argmax(dim=0, keepdim=True)))
    return (u * sign)[:, :rank].float(), singular[:rank].float()


def _orthonormal(y: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the columns of a tall (m, q) float64 matrix.

    Two rounds of Cholesky QR: as accurate as Householder QR for the well-conditioned
    blocks a range finder produces, and ~10x faster than torch.linalg.qr on CPU here.
    """
    for _ in range(2):
        chol, info = torch.linalg.cholesky_ex(y.t() @ y)
        if int(info) != 0:  # rank-deficient block (tiny matrices): the slow, safe route
            return torch.linalg.qr(y)[0]
        y = torch.linalg.solve_triangular(chol.t(), y, upper=True, left=False)
    return y


def static_embeddings_from_ids(
    sequences: Sequence[Sequence[int]], vocab_size: int, options: StaticOptions | None = None
) -> torch.Tensor:
    """(vocab_size, dim) static vectors from tokenized text; zero rows below ``min_count``."""
    options = options or StaticOptions()
    if options.algorithm not in ALGORITHMS:
        from tokengraft.errors import TokengraftError

        raise TokengraftError(f"unknown static-vector algorithm {options.algorithm!r}; choose one of {ALGORITHMS}")
    if options.algorithm == "fasttext":
        return fasttext_embeddings_from_ids(sequences, vocab_size, options)
    counts = token_counts(sequences, vocab_size)
    kept = (counts >= options.min_count).nonzero().squeeze(1)
    out = torch.zeros(vocab_size, options.dim)
    if kept.numel() < 2:
        logger.warning("static embeddings: only %d tokens occur >= %d times; no vectors", kept.numel(),
                       options.min_count)
        return out
    keep = torch.full((vocab_size,), -1, dtype=torch.long)
    keep[kept] = torch.arange(kept.numel())
    matrix = ppmi(cooccurrence(sequences, keep, options.window), options.smoothing)
    rank = min(options.dim, kept.numel() - 1)
    u, s = randomized_svd(matrix, rank, options)
    vecs = u * s.clamp(min=0).pow(options.eigen_power)
    # a kept token whose every co-occurrence had PMI <= 0 has an all-zero row: it stays "no vector"
    out[kept, :rank] = vecs
    logger.info("static embeddings: %d of %d tokens have vectors (dim %d, %d PPMI entries)",
             kept.numel(), vocab_size, options.dim, matrix.values().numel())
    return out


def fasttext_embeddings_from_ids(sequences: Sequence[Sequence[int]], vocab_size: int,
                                 options: StaticOptions) -> torch.Tensor:
    """(vocab_size, dim) fastText CBOW vectors of token ids (no character n-grams: ids have none)."""
    import os
    import tempfile

    try:
        import fasttext
    except ImportError as exc:
        from tokengraft.errors import TokengraftError

        raise TokengraftError("static vectors with algorithm='fasttext' need: pip install fasttext-wheel") from exc
    out = torch.zeros(vocab_size, options.dim)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ids.txt")
        with open(path, "w", encoding="utf-8") as f:
            for seq in sequences:
                if seq:
                    f.write(" ".join(f"t{i}" for i in seq) + "\n")
        if os.path.getsize(path) == 0:
            return out
        model = fasttext.train_unsupervised(
            path, model="cbow", dim=options.dim, ws=options.window, epoch=options.epochs,
            minCount=options.min_count, neg=options.negatives, minn=0, maxn=0, thread=1, verbose=0)
    for word in model.words:
        if word.startswith("t") and word[1:].isdigit() and int(word[1:]) < vocab_size:
            out[int(word[1:])] = torch.from_numpy(model.get_word_vector(word).copy())
    logger.info("fasttext static embeddings: %d of %d tokens have vectors", int((out.abs().sum(1) > 0).sum()),
                vocab_size)
    return out


def tokenizer_key(tokenizer: Any) -> str:
    """A string that identifies a tokenizer (its serialised form) for cache keys."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return backend.to_str() if hasattr(backend, "to_str") else repr(sorted(tokenizer.get_vocab().items()))


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens (a ``transformers`` fast tokenizer or a
    ``tokenizers.Tokenizer``). Uses the Rust batch encoder and no length limit."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch"):
        return [list(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]


def _flatten(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """All ids in one (N,) tensor and the (N,) index of the sequence each came from."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    ids = torch.tensor([i for s in sequences for i in s], dtype=torch.long)
    doc = torch.repeat_interleave(torch.arange(len(sequences)), lengths)
    return ids, doc
