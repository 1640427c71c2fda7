"""The quickstart's healing step starts over on a second run (a budget stop leaves checkpoints)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tokengraft.cli import quickstart


def test_a_second_quickstart_heals_afresh_over_the_first_runs_checkpoints(tmp_path, monkeypatch):
    model_dir = tmp_path / "model-graft"
    stale = tmp_path / "model-graft-healed.checkpoints" / "step-00000003"
    stale.mkdir(parents=True)
    seen = {}

    def fake_heal(options):
        seen["checkpoints_left"] = Path(options.checkpoint_dir()).exists()
        seen["budget"] = options.max_seconds
        return SimpleNamespace(steps=1, budget_seconds=1.0, out=options.out_dir())

    monkeypatch.setattr("tokengraft.heal.heal", fake_heal)
    out = quickstart._heal(quickstart.QuickstartOptions(heal_seconds=42), model_dir, "libreoffice:fr:train")
    assert seen == {"checkpoints_left": False, "budget": 42}
    assert out == tmp_path / "model-graft-healed"
