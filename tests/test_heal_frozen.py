"""Frozen linears in bf16 under bf16 autocast: the same losses and the same folder as casting at every call."""
from __future__ import annotations

import pytest
import torch
from test_heal_helpers import heal_world, one_thread  # noqa: F401  (fixtures)
from test_heal_train import options, weights

from tokengraft.heal import heal
from tokengraft.heal.frozen import FrozenLinears

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cast_gives_autocast_its_own_numbers_and_restore_the_float32_tensors():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 3))
    model[0].weight.requires_grad_(False)   # frozen: cast; model[1] trains: kept float32
    x = torch.randn(5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = model(x)
    low = FrozenLinears(model)
    original = model[0].weight.data
    low.cast()
    assert model[0].weight.dtype == torch.bfloat16 and model[1].weight.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(model(x), before)
        with low.exact():
            assert model[0].weight.data.data_ptr() == original.data_ptr()
    assert model[0].weight.dtype == torch.bfloat16
    low.restore()
    assert model[0].weight.data.data_ptr() == original.data_ptr()


@pytest.mark.parametrize("mode", ["embeddings", "lora"])
def test_a_bf16_heal_is_bit_identical_with_the_frozen_linears_cast_once(heal_world, tmp_path, monkeypatch, mode):  # noqa: F811
    kw = dict(steps=3, precision="bf16", eval_every=2, mode=mode, eval=[str(heal_world["corpus"])])
    cast, seen = FrozenLinears.cast, []
    monkeypatch.setattr(FrozenLinears, "cast", lambda self: (seen.append(len(self.kept)), cast(self)))
    a = heal(options(heal_world, tmp_path / "a", **kw))
    assert seen and min(seen) > 0  # the body's frozen projections were cast (at the start, after each eval)
    monkeypatch.setattr(FrozenLinears, "cast", lambda self: None)  # autocast casts at every call
    b = heal(options(heal_world, tmp_path / "b", **kw))
    assert len(a.eval_curve) >= 2
    assert [e["loss"] for e in a.loss_curve] == [e["loss"] for e in b.loss_curve]
    assert a.eval_curve == b.eval_curve
    wa, wb = weights(a.out), weights(b.out)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert all(v.dtype == torch.float32 for v in wa.values() if v.is_floating_point())
