"""Render a :class:`MixtureResult`: a terminal table, ``{category: proportion}`` JSON, a bar plot."""
from __future__ import annotations

import json
from pathlib import Path

from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.mixture import MixtureResult


def format_mixture(result: MixtureResult) -> str:
    """Categories by share, then the fit: slack, merges used, LP size, time."""
    width = max(len("category"), *(len(c) for c in result.proportions))
    lines = [f"{'category':<{width}}  {'share':>7}  {'sample bytes':>12}", "-" * (width + 23)]
    for name, share in sorted(result.proportions.items(), key=lambda kv: -kv[1]):
        lines.append(f"{name:<{width}}  {100 * share:6.2f}%  {result.sample_bytes[name]:>12,}")
    lines.append(f"\n{result.tokenizer}: {result.merges:,} merges constrained ({result.active_merges:,} seen in the "
                 f"samples); slack {result.total_slack:,.0f} per MB = {result.slack_share:.3f} of the merges' "
                 f"frequency ({result.early_slack:.3f} for the first merges); {result.constraints:,} rows, {result.rounds} rounds; "
                 f"{result.seconds.get('count', 0):.0f}s counting, {result.seconds.get('solve', 0):.0f}s solving")
    if result.warning:
        lines.append(f"warning: {result.warning}")
    return "\n".join(lines)


def write_mixture_json(result: MixtureResult, path: str | Path) -> Path:
    """``{category: proportion}``, as the issue asks; the fit details are in the table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.proportions, indent=2, ensure_ascii=False) + "\n")
    return path


def plot_mixture(result: MixtureResult, path: str | Path) -> Path:
    """One horizontal bar per category, largest first."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TokengraftError("plots need matplotlib; install it with: pip install 'tokengraft[plot]'") from exc
    items = sorted(result.proportions.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6.5, 0.9 + 0.4 * len(items)))
    bars = ax.barh([k for k, _ in items], [100 * v for _, v in items], color="#4C72B0")
    ax.bar_label(bars, fmt="%.1f%%", padding=2, fontsize=8)
    ax.set_xlabel("share of training bytes (%)")
    ax.set_xlim(0, max(100 * v for _, v in items) * 1.18 + 1)
    ax.set_title(f"{result.tokenizer}: inferred training mixture ({result.merges:,} merges)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
