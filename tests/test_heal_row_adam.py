"""RowAdamW: the rows it steps equal a dense AdamW step with the unused rows put back, at a cost in rows."""
from __future__ import annotations

import pytest
import torch

from tokengraft.heal.row_adam import RowAdamW


def _masks(steps: int, rows: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = [torch.rand(rows, generator=g) < 0.3 for _ in range(steps)]
    masks[2][:] = False  # a step that uses no row
    return masks


@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_row_steps_equal_dense_adamw_with_the_unused_rows_put_back(decay):
    torch.manual_seed(0)
    start, dense_only = torch.randn(12, 3), torch.randn(4, 2)
    a, other_a = torch.nn.Parameter(start.clone()), torch.nn.Parameter(dense_only.clone())
    b, other_b = torch.nn.Parameter(start.clone()), torch.nn.Parameter(dense_only.clone())
    ref = torch.optim.AdamW([{"params": [a], "weight_decay": decay}, {"params": [other_a]}], lr=0.05)
    rows = RowAdamW([{"params": [b], "weight_decay": decay}, {"params": [other_b]}], lr=0.05, row_params=[b])
    for step, used in enumerate(_masks(9, 12, seed=1)):
        grad, other_grad = torch.randn(12, 3), torch.randn(4, 2)
        a.grad, other_a.grad = grad * used[:, None], other_grad.clone()   # masked, as SparseRows does
        b.grad, other_b.grad = grad * used[:, None], other_grad.clone()
        kept = a.detach()[~used].clone()
        ref.step()
        with torch.no_grad():
            a[~used] = kept
        rows.select_rows(b, used)
        rows.step()
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), step
        assert torch.equal(b.detach()[~used], b.detach()[~used])
        assert torch.equal(other_a, other_b)  # every other parameter: torch's own AdamW
    # the moments too, once a row's skipped decay is applied
    last = rows.state[b]["last"]
    t = float(rows.state[b]["step"])
    decayed = rows.state[b]["exp_avg"] * torch.pow(0.9, t - last)[:, None]
    assert torch.allclose(decayed, ref.state[a]["exp_avg"], atol=1e-6)


def test_unused_rows_keep_their_values_exactly_and_a_step_without_rows_moves_all():
    w = torch.nn.Parameter(torch.randn(5, 2))
    opt = RowAdamW([w], lr=0.1, row_params=[w])
    before = w.detach().clone()
    w.grad = torch.ones(5, 2)
    opt.select_rows(w, torch.tensor([False, True, False, False, True]))
    opt.step()
    assert torch.equal(w.detach()[[0, 2, 3]], before[[0, 2, 3]])
    assert not torch.equal(w.detach()[[1, 4]], before[[1, 4]])
    opt.step()  # no rows selected: a plain AdamW step of every row
    assert not (w.detach() == before).any(1).any()


def test_state_dict_round_trip_continues_the_same_steps():
    torch.manual_seed(0)
    masks = _masks(6, 8, seed=2)
    grads = [torch.randn(8, 2) for _ in masks]

    def run(resume_at: int | None) -> torch.Tensor:
        w = torch.nn.Parameter(torch.ones(8, 2))
        opt = RowAdamW([w], lr=0.1, row_params=[w])
        for i, (used, grad) in enumerate(zip(masks, grads)):
            if i == resume_at:
                state, values = opt.state_dict(), w.detach().clone()
                w = torch.nn.Parameter(values)
                opt = RowAdamW([w], lr=0.1, row_params=[w])
                opt.load_state_dict(state)
            w.grad = grad * used[:, None]
            opt.select_rows(w, used)
            opt.step()
        return w.detach()

    assert torch.equal(run(None), run(3))


def test_select_rows_refuses_a_parameter_it_does_not_step_by_rows():
    w, v = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2, 2))
    opt = RowAdamW([w, v], lr=0.1, row_params=[w])
    with pytest.raises(ValueError, match="not given as a row parameter"):
        opt.select_rows(v, torch.tensor([True, False]))
