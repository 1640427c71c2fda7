"""The blocked next-token log-probability: the reference's values and gradients, without its float32 copies."""
from __future__ import annotations

import pytest
import torch

from tokengraft.heal import target_logp
from tokengraft.heal.target_logp import TargetLogProb, token_logprobs, token_logprobs_reference


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(target_logp, "BLOCK_ELEMENTS", 3 * 50)  # 3 rows a block: several blocks, a short last one


def _both(dtype: torch.dtype) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    torch.manual_seed(0)
    logits = (torch.randn(2, 7, 50) * 3).to(dtype)
    ids = torch.randint(0, 50, (2, 7))
    weights = torch.randn(2, 7)
    out = []
    for fn in (token_logprobs, token_logprobs_reference):
        x = logits.clone().requires_grad_(True)
        lp = fn(x, ids)
        (lp * weights).sum().backward()
        out.append([lp.detach(), x.grad])
    return out[0], out[1]


def test_float32_values_and_gradients_match_the_reference():
    (lp, grad), (ref_lp, ref_grad) = _both(torch.float32)
    assert lp.shape == (2, 7) and lp.dtype == torch.float32
    assert torch.equal(lp[:, 0], torch.zeros(2))
    torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=1e-5)
    assert torch.equal(grad[:, -1], torch.zeros(2, 50))  # the last position predicts nothing


def test_bf16_logits_get_a_bf16_gradient_and_the_reference_numbers():
    (lp, grad), (ref_lp, ref_grad) = _both(torch.bfloat16)
    assert grad.dtype == torch.bfloat16
    torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=1e-5)  # the same bf16 inputs, float32 arithmetic
    torch.testing.assert_close(grad.float(), ref_grad.float(), atol=4e-3, rtol=1e-2)  # one bf16 rounding apart


def test_negative_targets_give_zero_and_no_gradient():
    logits = torch.randn(4, 50, requires_grad=True)
    targets = torch.tensor([3, -1, 49, -1])
    lp = TargetLogProb.apply(logits, targets)
    assert lp[1] == 0 and lp[3] == 0 and lp[0] < 0
    torch.testing.assert_close(lp[[0, 2]], torch.log_softmax(logits.detach(), 1)[[0, 2], [3, 49]])
    lp.sum().backward()
    assert torch.equal(logits.grad[[1, 3]], torch.zeros(2, 50))
    torch.testing.assert_close(logits.grad.sum(1), torch.zeros(4), atol=1e-6, rtol=0)  # onehot - softmax sums to 0
