"""fastText CBOW static token vectors (FOCUS's reference auxiliary space)."""
from __future__ import annotations

import pytest
import torch

from tokengraft.errors import TokengraftError


def test_fasttext_static_vectors_cover_frequent_tokens_and_are_reproducible():
    from tokengraft.transplant.auxiliary.static import StaticOptions, static_embeddings_from_ids

    gen = torch.Generator().manual_seed(0)
    sequences = [torch.randint(0, 30, (40,), generator=gen).tolist() for _ in range(200)]
    options = StaticOptions(algorithm="fasttext", dim=8, min_count=5)
    a = static_embeddings_from_ids(sequences, 40, options)
    b = static_embeddings_from_ids(sequences, 40, options)
    assert a.shape == (40, 8) and torch.equal(a, b)
    assert bool((a[:30].abs().sum(1) > 0).all()) and bool((a[30:] == 0).all())   # ids 30-39 never occur
    with pytest.raises(TokengraftError, match="algorithm"):
        static_embeddings_from_ids(sequences, 40, StaticOptions(algorithm="glove"))
