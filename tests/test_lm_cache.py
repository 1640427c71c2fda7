"""The cache argument: a cached forward in two halves equals one forward, under the installed
transformers' own name for the argument (no deprecation warning)."""
from __future__ import annotations

import warnings

import torch

from test_bpb import make_llama
from tokengraft.lm.cache import cache_argument


def test_a_cached_forward_in_two_halves_matches_one_forward_without_warnings():
    from transformers import DynamicCache

    model = make_llama(50)
    ids = torch.tensor([[3, 14, 15, 9, 26, 5]])
    with torch.no_grad():
        whole = model(input_ids=ids).logits
        cache = DynamicCache()
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            model(input_ids=ids[:, :3], use_cache=True, **cache_argument(model, cache))
            rest = model(input_ids=ids[:, 3:], use_cache=True, **cache_argument(model, cache)).logits
    assert cache.get_seq_length() == 6
    assert torch.allclose(rest, whole[:, 3:], atol=1e-5)


def test_the_argument_follows_the_forward_signature():
    class New:
        def forward(self, input_ids=None, cache=None): ...

    class Old:
        def forward(self, input_ids=None, past_key_values=None): ...

    assert cache_argument(New(), 7) == {"cache": 7}
    assert cache_argument(Old(), 7) == {"past_key_values": 7}
