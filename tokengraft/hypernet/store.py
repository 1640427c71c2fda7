"""The saved hypernetwork folder: weights, the base model it belongs to, and how it was trained.

``DIR/hypernet.safetensors`` holds the weights (the base-row statistics are buffers in it)
and ``base_probe``, the rows that identify the base model; ``DIR/hypernet.json`` the
architecture, the base model's spec, SHA-256 fingerprint, vocabulary size and tiedness, the
training options and the loss curve; ``DIR/hypernet.png`` the curve. The folder is written
through a temporary sibling and renamed. Loading it for a model whose rows differ from the
probe raises a one-line error (:func:`tokengraft.hypernet.base.check_probe`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.hypernet.base import check_probe
from tokengraft.hypernet.model import Hypernet, HypernetConfig

log = logging.getLogger(__name__)

WEIGHTS_FILE, RECORD_FILE, PLOT_FILE = "hypernet.safetensors", "hypernet.json", "hypernet.png"
FORMAT = 1
PROBE_KEY = "base_probe"


@dataclass
class LoadedHypernet:
    net: Hypernet
    record: dict[str, Any]
    probe: torch.Tensor               # (P, d) rows of the base model it belongs to
    path: Path

    def check(self, old_in: torch.Tensor) -> None:
        """Refuse a base model other than the one this hypernetwork was trained for."""
        check_probe(self.probe, old_in, str(self.path), str(self.record.get("base_model")))


def write_folder(tmp: Path, net: Hypernet, probe: torch.Tensor, record: dict[str, Any]) -> None:
    """Write the folder's files into ``tmp`` (the caller renames it into place)."""
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    state[PROBE_KEY] = probe.float().cpu().contiguous()
    save_file(state, str(tmp / WEIGHTS_FILE))
    record = {"tokengraft": "hypernet", "format": FORMAT, "config": net.config.to_json(), **record}
    (tmp / RECORD_FILE).write_text(json.dumps(record, indent=1, default=str))
    _plot(tmp, record.get("loss_curve") or [])


def load_hypernet(path: str | Path, device: str | torch.device = "cpu") -> LoadedHypernet:
    """The hypernetwork saved in folder ``path`` (eval mode, float32)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / RECORD_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise TokengraftError(f"{path} is not a hypernetwork folder (no {RECORD_FILE} / {WEIGHTS_FILE}); "
                              "make one with: tokengraft hypernet train --model SPEC --corpus CORPUS --out DIR")
    try:
        record = json.loads((path / RECORD_FILE).read_text())
        config = HypernetConfig(**record["config"])
        state = load_file(str(path / WEIGHTS_FILE))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TokengraftError(f"hypernetwork {path} cannot be read ({type(exc).__name__}: {exc}); "
                              "train it again") from None
    if record.get("format") != FORMAT:
        raise TokengraftError(f"hypernetwork {path} has format {record.get('format')}, this tokengraft reads {FORMAT}")
    probe = state.pop(PROBE_KEY)
    net = Hypernet(config)
    net.load_state_dict(state)
    return LoadedHypernet(net.to(device).eval(), record, probe, path)


def _plot(folder: Path, curve: list[dict[str, Any]]) -> None:
    if not curve:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("no plot written: matplotlib is missing")
        return
    keys = [k for k in ("recon_in", "recon_out", "head", "lm") if any(k in p for p in curve)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        points = [(p["step"], p[key]) for p in curve if key in p]
        ax.plot([s for s, _ in points], [v for _, v in points], lw=1)
        ax.set(xlabel="step", ylabel=key, title=key)
    fig.tight_layout()
    fig.savefig(folder / PLOT_FILE, dpi=100)
    plt.close(fig)
