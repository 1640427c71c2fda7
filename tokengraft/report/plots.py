"""The report's figures as PNG bytes (matplotlib, Agg: files only, never a window)."""
from __future__ import annotations

import io
from collections import Counter
from typing import Any

from tokengraft.errors import TokengraftError

COLORS = {"before": "#8c8c8c", "after": "#2b7bba"}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TokengraftError("tokengraft report draws its plots with matplotlib; install it with: "
                              "pip install 'tokengraft[plot]'") from None
    return plt


def _png(fig: Any, top: float = 1.0) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def bpb_plot(rows: list[dict[str, Any]]) -> bytes | None:
    """Bars of BPB and tokens per byte, before and after, one group per (corpus, stage)."""
    rows = [r for r in rows if r.get("after") is not None]
    if not rows:
        return None
    plt = _pyplot()
    labels = [f"{r['corpus']}\n{r['stage']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2 + 0.15 * len(rows)))
    for ax, (key_b, key_a, title) in zip(axes, [("before", "after", "bits per byte (lower is better)"),
                                                ("tpb_before", "tpb_after", "tokens per byte (fewer: cheaper)")]):
        ys = range(len(rows))
        before = [r.get(key_b) or 0 for r in rows]
        after = [r.get(key_a) or 0 for r in rows]
        ax.barh([y + 0.2 for y in ys], before, height=0.38, color=COLORS["before"], label="before")
        ax.barh([y - 0.2 for y in ys], after, height=0.38, color=COLORS["after"], label="after")
        for y, (b, a) in enumerate(zip(before, after)):
            for value, dy in ((b, 0.2), (a, -0.2)):
                if value:
                    ax.text(value, y + dy, f" {value:.3f}", va="center", fontsize=8)
        ax.set_yticks(list(ys), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.18)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="upper center", ncol=2)
    return _png(fig, top=0.9)


def sources_plot(sources: Counter, sources_out: Counter) -> bytes | None:
    """Where the new rows came from: count per source (input rows; output rows too when they differ)."""
    if not sources:
        return None
    plt = _pyplot()
    panels = [("input rows", sources)] + ([("output rows", sources_out)] if sources_out else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 2.6), squeeze=False)
    for ax, (title, counter) in zip(axes[0], panels):
        names = [n for n, _ in counter.most_common()]
        counts = [counter[n] for n in names]
        ax.barh(names, counts, color="#2b7bba")
        total = sum(counts)
        for y, c in enumerate(counts):
            ax.text(c, y, f" {c:,} ({c / total:.1%})", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.3)
    return _png(fig)


def pieces_plot(pieces: Counter) -> bytes | None:
    """How many old tokens each new (not copied) token was built from."""
    if not pieces:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 2.4))
    keys = sorted(pieces)
    ax.bar([str(k) if k < 8 else "8+" for k in keys], [pieces[k] for k in keys], color="#2b7bba")
    ax.set(xlabel="old pieces per new token (tokens not copied)", ylabel="tokens")
    return _png(fig)


def heal_plot(heal: dict[str, Any]) -> bytes | None:
    """Training loss and held-out BPB against training tokens."""
    loss, evals = heal.get("loss_curve") or [], heal.get("eval_curve") or []
    if not loss and not evals:
        return None
    plt = _pyplot()
    panels = (1 if loss else 0) + (1 if evals else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.2), squeeze=False)
    i = 0
    if loss:
        ax = axes[0][i]
        ax.plot([p["tokens"] for p in loss], [p["loss"] for p in loss], lw=1)
        ax.set(xlabel="training tokens", ylabel="training loss", title="loss")
        i += 1
    if evals:
        ax = axes[0][i]
        for name in evals[0].get("bpb", {}):
            ax.plot([e["tokens"] for e in evals], [e["bpb"][name] for e in evals], marker="o", label=name)
        ax.set(xlabel="training tokens", ylabel="bits per byte", title="held-out BPB")
        ax.legend(fontsize=8)
    return _png(fig)
