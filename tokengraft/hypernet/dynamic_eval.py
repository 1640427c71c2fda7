"""``eval --dynamic``: sequence length and bits per byte when each batch is tokenized dynamically.

Texts are cut into segments of at most ``segment_bytes`` (at line breaks where possible), so
every segment fits one forward pass and every setting scores exactly the same bytes.
Segments are grouped in batches of ``batch_segments``; each batch is tokenized by the base
tokenizer, merged by batch-level BPE (:mod:`tokengraft.hypernet.dynamic`) with each budget
in ``merges`` (0 = the base tokenization), and the merged units get rows on the fly: the
hypernetwork's, or FVT's piece means without one.

Two modes:

* ``full``: the model reads and predicts units; the softmax holds the base vocabulary plus
  the batch's units (their output rows predicted too). Every byte is scored.
* ``prefill``: the first half of each segment's words is read as units (the prompt), the
  rest in base tokens, and only that rest is scored, with the base vocabulary: how well
  the model understands a dynamically tokenized context.

Length reduction = 1 - (input tokens with merges) / (input tokens without), over the
positions that were merged (all of them in ``full`` mode, the prompt half in ``prefill``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from tokengraft.hypernet.dynamic import batch_bpe, unit_pieces

log = logging.getLogger(__name__)
MODES = ("full", "prefill")


@dataclass
class DynamicOptions:
    merges: list[int] = field(default_factory=lambda: [0, 300, 1000, 3000])  # merge budgets per batch
    min_count: int = 2                # a pair must occur this often in the batch to be merged
    segment_bytes: int = 2000         # longest scored segment
    batch_segments: int = 16          # segments merged together (the batch of batch-level BPE)
    mode: str = "full"                # full | prefill
    forward_rows: int = 8             # segments per forward pass


@dataclass
class DynamicRow:
    merges: int
    bytes: int                        # scored bytes
    tokens: int                       # input tokens of the merged stretches
    base_tokens: int                  # the same stretches in base tokens
    nll_bits: float
    units: int                        # distinct merged units made (all batches)

    @property
    def bpb(self) -> float:
        return self.nll_bits / max(1, self.bytes)

    @property
    def reduction(self) -> float:
        return 1.0 - self.tokens / max(1, self.base_tokens)


def segments(texts: Sequence[str], limit: int) -> list[str]:
    """Texts cut into pieces of at most ``limit`` UTF-8 bytes, at line breaks where possible."""
    out: list[str] = []
    for text in texts:
        piece = ""
        for line in text.splitlines(keepends=True):
            while len(line.encode("utf-8")) > limit:  # a single overlong line: cut at a character
                head = line.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
                out += [piece] if piece else []
                out.append(head)
                piece, line = "", line[len(head):]
            if len((piece + line).encode("utf-8")) > limit:
                out.append(piece)
                piece = ""
            piece += line
        if piece:
            out.append(piece)
    return [s for s in out if s.strip()]


def _kind(byte: int) -> int:
    """0 whitespace, 1 letter or digit (any non-ASCII byte counts as a letter), 2 punctuation."""
    if byte in b" \t\n\r":
        return 0
    return 1 if byte >= 0x80 or chr(byte).isalnum() else 2


def words_of(tokenizer: Any, token_bytes: Sequence[bytes | None], texts: Sequence[str]) -> list[list[tuple[int, ...]]]:
    """Per text: its words as tuples of base ids, in order.

    A token starts a new word when it starts with whitespace or when its first byte is of
    another kind (whitespace / letter-or-digit / punctuation) than the previous token's last
    byte: the GPT-2 pre-tokenizer's words, recovered from bytes alone, so that tokenizers
    whose pre-tokenizer does not split words (SentencePiece) are merged the same way.
    """
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    out = []
    for enc in backend.encode_batch(list(texts), add_special_tokens=False):
        words: list[list[int]] = []
        last = 0
        for i in enc.ids:
            data = token_bytes[i] or b" "
            if not words or _kind(data[0]) == 0 or _kind(data[0]) != _kind(last):
                words.append([])
            words[-1].append(i)
            last = data[-1]
        out.append([tuple(w) for w in words])
    return out


def unit_rows(base: Any, loaded: Any, pieces: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) input and output rows of the units: the hypernetwork's, or FVT's piece means."""
    from tokengraft.transplant.methods.fvt import piece_means

    if not pieces:
        empty = base.old_in.new_zeros(0, base.d_model)
        return empty, empty
    if loaded is None:
        mean_in = piece_means(base.old_in, pieces, range(len(pieces)))
        return mean_in, mean_in if base.tied else piece_means(base.old_out, pieces, range(len(pieces)))
    from tokengraft.hypernet.apply import predict_rows

    return predict_rows(loaded.net.to(base.old_in.device), base.old_in, base.old_out, pieces, range(len(pieces)))


def score_batch(base: Any, head: Any, seqs: list[list[int]], scored: list[list[bool]], rows_in: torch.Tensor,
                rows_out: torch.Tensor | None, forward_rows: int) -> float:
    """Total NLL in bits of the scored positions' next ids (ids >= V_old are units)."""
    model, device = base.model, base.old_in.device
    table = torch.cat([base.old_in, rows_in.to(base.old_in.dtype)])
    out_rows = base.old_out if rows_out is None else torch.cat([base.old_out, rows_out.to(base.old_out.dtype)])
    embed = model.get_input_embeddings()
    total = 0.0
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for start in range(0, len(order), forward_rows):
        group = [order[i] for i in range(start, min(start + forward_rows, len(order)))]
        width = max(len(seqs[g]) for g in group)
        ids = torch.zeros(len(group), width, dtype=torch.long)
        mask = torch.zeros(len(group), width, dtype=torch.long)
        pos, labels = [], []
        for r, g in enumerate(group):
            n = len(seqs[g])
            ids[r, :n], mask[r, :n] = torch.tensor(seqs[g]), 1
            pos += [r * width + p for p in range(n - 1) if scored[g][p + 1]]
            labels += [seqs[g][p + 1] for p in range(n - 1) if scored[g][p + 1]]
        with torch.no_grad():
            embeds = torch.func.functional_call(embed, {"weight": table}, (ids.to(device),))
            hidden = model.base_model(inputs_embeds=embeds, attention_mask=mask.to(device), use_cache=False)[0]
            picked = hidden.reshape(-1, hidden.shape[-1])[torch.tensor(pos, device=device)]
            for i in range(0, len(labels), 512):
                logits = F.linear(picked[i:i + 512], out_rows).float()
                if head is not None and head.scale != 1.0:
                    logits = logits * head.scale
                if head is not None and head.softcap:
                    logits = torch.tanh(logits / head.softcap) * head.softcap
                target = torch.tensor(labels[i:i + 512], device=device)
                total += float(F.cross_entropy(logits, target, reduction="sum"))
    return total / math.log(2)


def _sequences(base: Any, words: list[list[tuple[int, ...]]], seg: dict[tuple[int, ...], list[int]],
               mode: str) -> tuple[list[list[int]], list[list[bool]], int, int, int]:
    """Input sequences, which next ids are scored, merged/base token counts and scored bytes."""
    seqs, scored, tokens, base_tokens, nbytes = [], [], 0, 0, 0
    for text_words in words:
        cut = len(text_words) if mode == "full" else len(text_words) // 2
        seq, mark = [base.start_id], [False]
        for k, word in enumerate(text_words):
            merged = k < cut
            ids = seg[word] if merged else list(word)
            seq += ids
            mark += [mode == "full" or not merged] * len(ids)
            if merged:
                tokens, base_tokens = tokens + len(ids), base_tokens + len(word)
            if mode == "full" or not merged:
                nbytes += sum(len(base.token_bytes[i] or b"") for i in word)
        seqs.append(seq)
        scored.append(mark)
    return seqs, scored, tokens, base_tokens, nbytes


def evaluate_dynamic(base: Any, loaded: Any, texts: Sequence[str], options: DynamicOptions) -> list[DynamicRow]:
    """One :class:`DynamicRow` per merge budget over all ``texts`` (``loaded`` None: FVT unit rows)."""
    from collections import Counter

    from tokengraft.errors import TokengraftError
    from tokengraft.lm.head import split_head

    if options.mode not in MODES:
        raise TokengraftError(f"unknown dynamic mode {options.mode!r}; choose one of {', '.join(MODES)}")
    if any(m < 0 for m in options.merges):
        raise TokengraftError(f"merge budgets must be >= 0, got {options.merges}")
    if loaded is not None:
        loaded.check(base.old_in)
    head = split_head(base.model)
    pieces_all = segments(texts, options.segment_bytes)
    rows = {m: DynamicRow(m, 0, 0, 0, 0.0, 0) for m in options.merges}
    first_new = base.old_in.shape[0]
    for start in range(0, len(pieces_all), options.batch_segments):
        batch = pieces_all[start:start + options.batch_segments]
        words = words_of(base.tokenizer, base.token_bytes, batch)
        merged = words if options.mode == "full" else [w[: len(w) // 2] for w in words]
        counts = Counter(w for ws in merged for w in ws)
        for budget in options.merges:
            merges, seg = batch_bpe(counts, budget, options.min_count, first_new)
            for word in {w for ws in words for w in ws} - set(seg):
                seg[word] = list(word)
            units = unit_pieces(merges, first_new)
            rows_in, rows_out = unit_rows(base, loaded, [list(u) for u in units])
            seqs, scored, tokens, base_tokens, nbytes = _sequences(base, words, seg, options.mode)
            bits = score_batch(base, head, seqs, scored, rows_in, rows_out if options.mode == "full" else None,
                               options.forward_rows)
            row = rows[budget]
            row.bytes, row.tokens, row.base_tokens = row.bytes + nbytes, row.tokens + tokens, row.base_tokens + base_tokens
            row.nll_bits, row.units = row.nll_bits + bits, row.units + len(units)
        log.info("dynamic: %d / %d segments", min(start + options.batch_segments, len(pieces_all)), len(pieces_all))
    return [rows[m] for m in options.merges]


def format_rows(name: str, rows: list[DynamicRow]) -> str:
    """A markdown table: merges, units, tokens, reduction, BPB and its change from the first row."""
    lines = [f"{name}", "| merges / batch | units | input tokens | length reduction | BPB | BPB change |",
             "|---|---|---|---|---|---|"]
    first = rows[0].bpb if rows else float("nan")
    for r in rows:
        lines.append(f"| {r.merges} | {r.units} | {r.tokens:,} | {100 * r.reduction:.1f}% | {r.bpb:.4f} | "
                     f"{r.bpb - first:+.4f} |")
    return "\n".join(lines)
