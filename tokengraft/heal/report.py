"""The record of a healing run: ``heal.json`` and ``heal.png`` (loss and BPB vs tokens)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RECORD_FILE, PLOT_FILE = "heal.json", "heal.png"


def write_record(folder: Path, record: dict[str, Any]) -> None:
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1, default=str))


def preload() -> None:
    """Import matplotlib now (about a second), so that a budgeted run's end does not pay for it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pass


def plot_curves(folder: Path, loss_curve: list[dict[str, Any]], eval_curve: list[dict[str, Any]], title: str) -> bool:
    """Write ``heal.png``; returns False (with a warning) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("no plot written: matplotlib is missing; install it with: pip install 'tokengraft[plot]'")
        return False
    panels = 2 if eval_curve else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot([p["tokens"] for p in loss_curve], [p["loss"] for p in loss_curve], lw=1)
    ax.set(xlabel="training tokens", ylabel="training loss", title=title)
    if eval_curve:
        ax = axes[0][1]
        for name in eval_curve[0]["bpb"]:
            ax.plot([e["tokens"] for e in eval_curve], [e["bpb"][name] for e in eval_curve], marker="o", label=name)
        ax.set(xlabel="training tokens", ylabel="held-out bits per byte", title="held-out BPB")
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / PLOT_FILE, dpi=100)
    plt.close(fig)
    return True
