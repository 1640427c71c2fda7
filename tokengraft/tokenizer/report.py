"""Render a :class:`CompareReport`: terminal tables, JSON, and a PNG of grouped bars."""
from __future__ import annotations

import json
from pathlib import Path

from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.compare import CompareReport, short_labels

DIGIT_BUCKETS = (1, 2, 3, 4)  # the last bucket collects 4 digits and more


def _digit_shares(hist: dict[int, int]) -> list[float]:
    total = sum(hist.values()) or 1
    last = DIGIT_BUCKETS[-1]
    shares = [hist.get(k, 0) / total for k in DIGIT_BUCKETS[:-1]]
    return shares + [sum(v for k, v in hist.items() if k >= last) / total]


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [fmt(header), "-" * len(fmt(header))] + [fmt(r) for r in rows]


def format_table(report: CompareReport) -> str:
    """Plain-text tables: one block per corpus, then digits, overlap and token premium."""
    lines: list[str] = []
    head = ["tokenizer", "bytes/tok", "chars/tok", "tok/word", "split%", "vocab%", "fallback%", "unk%"]
    for corpus in report.corpora:
        first = report.get(report.tokenizers[0], corpus)
        lines.append(f"\n{corpus}: {first.n_bytes:,} bytes, {first.n_words:,} words")
        rows = []
        for name in report.tokenizers:
            s = report.get(name, corpus)
            rows.append([name, f"{s.bytes_per_token:.3f}", f"{s.chars_per_token:.3f}", f"{s.fertility:.3f}",
                         f"{100 * s.split_share:.1f}", f"{100 * s.utilisation:.1f}", f"{100 * s.fallback_rate:.2f}",
                         f"{100 * s.unk_rate:.2f}"])
        lines += _grid(head, rows)
    lines.append("\nnumbers: share of digit-bearing tokens with 1 / 2 / 3 / 4+ digits (all corpora)")
    rows = []
    for name in report.tokenizers:
        hist: dict[int, int] = {}
        for s in report.stats:
            if s.tokenizer == name:
                for k, v in s.digits_per_token.items():
                    hist[k] = hist.get(k, 0) + v
        rows.append([name] + [f"{100 * x:.1f}%" for x in _digit_shares(hist)])
    lines += _grid(["tokenizer", "1", "2", "3", "4+"], rows)
    if report.overlaps:
        lines.append("\nvocabulary overlap (identical token bytes, specials excluded)")
        lines += _grid(["a", "b", "shared", "% of a", "% of b"],
                       [[o.a + " ", o.b, f"{o.shared:,}", f"{100 * o.shared / max(o.size_a, 1):.1f}",
                         f"{100 * o.shared / max(o.size_b, 1):.1f}"] for o in report.overlaps])
    if report.parallel:
        labels = short_labels(report.corpora)
        lines.append(f"\ntoken premium vs {report.reference} (tokens for X / tokens for the reference, "
                     f"{report.aligned_documents} aligned documents)")
        lines += _grid(["tokenizer"] + labels,
                       [[n] + [f"{report.get(n, c).premium:.3f}" for c in report.corpora] for n in report.tokenizers])
    return "\n".join(lines).lstrip("\n")


def write_json(report: CompareReport, path: str | Path) -> Path:
    from tokengraft.assets.outputs import write_text

    return write_text(path, json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", flag="--json")


def _bars(ax, report: CompareReport, value, title: str, ylabel: str, reference_line: float | None = None) -> None:
    import numpy as np

    labels = short_labels(report.corpora)
    n = len(report.tokenizers)
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, name in enumerate(report.tokenizers):
        heights = [value(report.get(name, c)) for c in report.corpora]
        bars = ax.bar(x + (i - (n - 1) / 2) * width, heights, width, label=name)
        if len(labels) * n <= 40:  # numbers on bars only while they stay legible
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1, rotation=90 if n > 3 else 0)
    if reference_line is not None:
        ax.axhline(reference_line, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, labels)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.18)
    ax.grid(axis="y", alpha=0.3)


def plot_report(report: CompareReport, path: str | Path) -> Path:
    """Grouped bars per corpus: token premium (parallel runs) and bytes per token."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TokengraftError("plots need matplotlib; install it with: pip install 'tokengraft[plot]'") from exc
    panels = 2 if report.parallel else 1
    width = min(16.0, max(7.0, 1.5 + 0.4 * len(report.corpora) * len(report.tokenizers)))
    fig, axes = plt.subplots(panels, 1, figsize=(width, 0.6 + 3.8 * panels), squeeze=False)
    if report.parallel:
        ref = short_labels(report.corpora)[report.corpora.index(report.reference)]
        _bars(axes[0][0], report, lambda s: s.premium, f"Token premium vs {ref} on aligned documents (lower is better)",
              f"tokens / tokens for {ref}", reference_line=1.0)
    _bars(axes[-1][0], report, lambda s: s.bytes_per_token, "Bytes per token (higher is better)", "UTF-8 bytes / token")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=min(len(names), 5), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (0.6 + 3.8 * panels)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
