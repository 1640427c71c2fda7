"""Healing on the real offline SmolLM2-135M: a few steps in the default run, ALM when slow."""
from __future__ import annotations

import pytest
import torch

from tokengraft.heal import HealOptions, heal


def test_a_few_embedding_steps_on_real_smollm2(tmp_path):
    """The real path of `heal` in the default run: 3 steps of embedding training on French text
    move the embedding rows and nothing else, and the written folder loads."""
    from tokengraft.assets import load_model

    result = heal(HealOptions(model="smollm2-135m", corpus=["libreoffice:fr:dev"], mode="embeddings", steps=3,
                              seq_len=32, batch_size=2, save_every=0, eval_every=0, out=str(tmp_path / "out"),
                              device="cpu", progress=False))
    assert result.steps == 3 and result.tokens_seen == 3 * 2 * 32
    assert all(0.5 < row["loss"] < 8.0 for row in result.loss_curve)  # nats per token of a trained model
    before, after = load_model("smollm2-135m"), load_model(str(result.out))
    assert not torch.equal(after.get_input_embeddings().weight, before.get_input_embeddings().weight)
    body = [(a, b) for (name, a), b in zip(after.named_parameters(), before.parameters()) if "embed" not in name]
    assert body and all(torch.equal(a, b) for a, b in body)


@pytest.mark.slow
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
