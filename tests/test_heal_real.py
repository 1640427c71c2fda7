"""Healing on the real offline SmolLM2-135M (slow: loads the model, trains on CPU)."""
from __future__ import annotations

import pytest

from tokengraft.heal import HealOptions, heal

pytestmark = pytest.mark.slow


def test_alm_of_a_model_against_itself_is_zero_on_real_text(tmp_path):
    # Same model, same tokenizer: every chunk is one token with equal log-probabilities on
    # both sides, so the excess BCE is 0 up to float rounding. Proves the real path: the
    # byte view of a 49k byte-level BPE, the exact alignment and the chunk sums.
    result = heal(HealOptions(model="smollm2-135m", teacher="smollm2-135m", corpus=["libreoffice:fr:heldout"],
                              mode="alm", steps=1, seq_len=64, batch_size=2, save_every=0, eval_every=0,
                              out=str(tmp_path / "out"), device="cpu", progress=False))
    first = result.loss_curve[0]
    assert abs(first["alm_loss"]) < 1e-7
    assert 0.5 < first["lm_loss"] < 6.0  # a trained model on French help text, nats per token
