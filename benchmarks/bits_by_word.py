"""Where do the bits go? BPB of several models on the same bytes, split by the kind of word the bytes
belong to: words by how often the training text shows them, spaces, punctuation, digits.

    python3 benchmarks/bits_by_word.py --model original=smollm2-135m --model zero-shot=out/graft-de \\
        --model healed=out/graft-de-healed --text manpages:de:dev --train libreoffice:de:fit

Each model reads the text with its own tokenizer; a token's loss (bits) is spread evenly over its
bytes, so models with different vocabularies compare byte for byte, class by class. The first
model is the reference: the last columns give each other model's share of its excess bits over
the reference that falls in each class. Word counts come from the first ``--train-bytes`` of
``--train`` (case-folded ``\\w+`` words).

``--by pieces`` classes words instead by how many tokens the new tokenizer spends on them
against the reference's (each word read alone after a space): a German tokenizer trained on
LibreOffice help writes " License" as " L" "ic" "en" "se" where SmolLM2's has one token.

    python3 benchmarks/bits_by_word.py --by pieces --model original=smollm2-135m \\
        --model healed=out/graft-de-healed --model fair=out/original-healed --new healed

Each table also gives, per model, the bits of the tokens that start inside a word (after its first
byte: "ic" "en" "se" of " L" "ic" "en" "se"), per byte of the class: what continuing a word costs,
apart from starting it.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import re

import torch

WORD = re.compile(r"\w+|\s+|[^\w\s]+")
COUNT_BUCKETS = ((0, 0, "unseen"), (1, 9, "1-9"), (10, 99, "10-99"), (100, None, "100+"))


def spread_bits(num_bytes: int, spans: list[tuple[int, int]], bits: list[float]) -> torch.Tensor:
    """Bits per byte position: each token's bits spread evenly over its byte span; an empty span
    (a special token) adds its bits to the byte before it.

    >>> spread_bits(4, [(0, 1), (1, 4), (4, 4)], [1.0, 3.0, 0.5]).tolist()
    [1.0, 1.0, 1.0, 1.5]
    """
    out = torch.zeros(num_bytes, dtype=torch.float64)
    for (s, e), b in zip(spans, bits):
        if e > s:
            out[s:e] += b / (e - s)
        elif num_bytes:
            out[max(min(s, num_bytes) - 1, 0)] += b
    return out


def word_class(word: str, counts: collections.Counter) -> str:
    """``word unseen|1-9|10-99|100+`` by the word's count in the training text; else space, digits, punct.

    >>> c = collections.Counter({"datei": 12})
    >>> [word_class(w, c) for w in ("Datei", "Zeile", "  ", "42", "--")]
    ['word 10-99', 'word unseen', 'space', 'digits', 'punct']
    """
    if word.isspace():
        return "space"
    if word.isdigit():
        return "digits"
    if not re.match(r"\w", word):
        return "punct"
    n = counts[word.lower()]
    return "word " + next(name for lo, hi, name in COUNT_BUCKETS if n >= lo and (hi is None or n <= hi))


def piece_class(word: str, ref_tok, new_tok) -> str:
    """``word split more|same|less`` by the tokens the new tokenizer spends on " word" against the
    reference's; space, digits and punct as in :func:`word_class`."""
    kind = word_class(word, collections.Counter())  # space | digits | punct | word unseen
    if not kind.startswith("word"):
        return kind
    new, ref = (len(t.encode(" " + word, add_special_tokens=False)) for t in (new_tok, ref_tok))
    return "word split " + ("more" if new > ref else "less" if new < ref else "same")


def byte_classes(text: str, classify) -> tuple[list[str], torch.Tensor]:
    """The class names and, per UTF-8 byte of ``text``, the index of its class (``classify(word)``)."""
    starts = [0, *itertools.accumulate(len(ch.encode()) for ch in text)]
    names: dict[str, int] = {}
    index = torch.zeros(starts[-1], dtype=torch.long)
    for m in WORD.finditer(text):
        k = names.setdefault(classify(m.group()), len(names))
        index[starts[m.start()]:starts[m.end()]] = k
    return list(names), index


def inner_bytes(text: str) -> torch.Tensor:
    """Per UTF-8 byte of ``text``: True inside a word after its first byte.

    >>> inner_bytes(" Lic, ä!").tolist()
    [False, False, True, True, False, False, False, True, False]
    """
    starts = [0, *itertools.accumulate(len(ch.encode()) for ch in text)]
    out = torch.zeros(starts[-1], dtype=torch.bool)
    for m in re.finditer(r"\w+", text):
        out[starts[m.start()] + 1:starts[m.end()]] = True
    return out


def continuation_bits(num_bytes: int, spans: list[tuple[int, int]], bits: list[float], inner: torch.Tensor) -> torch.Tensor:
    """Per-byte bits of the tokens that start inside a word (``inner`` at their first byte) only.

    >>> continuation_bits(4, [(0, 2), (2, 4)], [2.0, 4.0], torch.tensor([False, True, True, True])).tolist()
    [0.0, 0.0, 2.0, 2.0]
    """
    keep = [(sp, b) for sp, b in zip(spans, bits) if sp[1] > sp[0] and bool(inner[sp[0]])]
    return spread_bits(num_bytes, [sp for sp, _ in keep], [b for _, b in keep])


def document_bits(model, tokenizer, text: str, start_id: int, window: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-byte bits of one document (windows of ``window`` tokens, each after ``context`` tokens of
    the last), and the same for the tokens that start inside a word only."""
    from tokengraft.vocab import byte_offsets

    ids = tokenizer.encode(text, add_special_tokens=False)
    seq = torch.tensor([start_id, *ids])
    nll = []
    with torch.no_grad():
        for b in range(0, len(ids), window):
            lo = max(0, b - context)
            x = seq[lo:b + window + 1]
            logp = torch.log_softmax(model(input_ids=x[None, :-1]).logits[0].float(), -1)
            nll.append(-logp.gather(1, x[1:, None])[b - lo:, 0])
    bits = (torch.cat(nll) / torch.log(torch.tensor(2.0))).tolist() if nll else []
    spans = byte_offsets(tokenizer, ids)
    if spans and spans[-1][1] != len(text.encode()):  # e.g. a tokenizer that adds a prefix space
        raise SystemExit(f"{getattr(tokenizer, 'name_or_path', 'a tokenizer')}: its tokens do not spell the text"
                         " byte for byte, so its bits cannot be placed on the text's bytes")
    num = len(text.encode())
    return spread_bits(num, spans, bits), continuation_bits(num, spans, bits, inner_bytes(text))


def main() -> None:
    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.lm.start import resolve_start_token

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="[LABEL=]model folder or built-in name; the first is the reference")
    p.add_argument("--text", default="manpages:de:dev")
    p.add_argument("--train", default="libreoffice:de:fit")
    p.add_argument("--max-bytes", type=int, default=40_000)
    p.add_argument("--train-bytes", type=int, default=3_000_000)
    p.add_argument("--window", type=int, default=2048)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--by", choices=("count", "pieces"), default="count",
                   help="class words by their count in --train, or by the tokens --new spends on them against the reference")
    p.add_argument("--new", help="--by pieces: the label of the model whose tokenizer is the new one (default: the second)")
    args = p.parse_args()
    docs = [d.text for d in load_corpora([args.text], max_bytes=args.max_bytes)[0].documents]
    models = dict(m.split("=", 1) if "=" in m else (m, m) for m in args.model)
    if args.by == "pieces":
        labels = list(models)
        new = args.new or (labels[1] if len(labels) > 1 else None)
        if new not in models:
            p.error(f"--by pieces needs --new naming one of the models ({', '.join(labels)})")
        ref_tok, new_tok = load_tokenizer(models[labels[0]]), load_tokenizer(models[new])
        source = f"word pieces: {new}'s tokenizer against {labels[0]}'s"
        classes = [byte_classes(t, lambda w: piece_class(w, ref_tok, new_tok)) for t in docs]
    else:
        train = load_corpora([args.train], max_bytes=args.train_bytes)[0].documents
        counts = collections.Counter(w.lower() for d in train for w in re.findall(r"\w+", d.text))
        source = f"words counted in {args.train}"
        classes = [byte_classes(t, lambda w: word_class(w, counts)) for t in docs]
    names = sorted({n for ns, _ in classes for n in ns})
    nbytes = collections.Counter()
    for ns, idx in classes:
        for k, n in enumerate(ns):
            nbytes[n] += int((idx == k).sum())
    total = sum(nbytes.values())
    bits: dict[str, collections.Counter] = {}
    rest: dict[str, collections.Counter] = {}
    for label, folder in models.items():
        model, tok = load_model(folder), load_tokenizer(folder)
        model.eval()
        start = resolve_start_token(tok, "auto")[1]
        per, cont = bits[label], rest[label] = collections.Counter(), collections.Counter()
        for text, (ns, idx) in zip(docs, classes):
            b, c = document_bits(model, tok, text, start, args.window, args.context)
            for k, n in enumerate(ns):
                per[n] += float(b[idx == k].sum())
                cont[n] += float(c[idx == k].sum())
    labels = list(models)
    ref, others = labels[0], labels[1:]
    excess = {m: sum(bits[m].values()) - sum(bits[ref].values()) for m in others}
    print(f"{args.text}, first {total:,} bytes; {source}; BPB per class\n")
    print("| class | bytes | " + " | ".join(labels) + " | " + " | ".join(f"excess share {m}" for m in others)
          + " | " + " | ".join(f"{m}: inside words" for m in labels) + " |")
    print("|---" * (2 + 2 * len(labels) + len(others)) + "|")
    for n in sorted(names, key=lambda n: -nbytes[n]):
        row = [f"{100 * nbytes[n] / total:.1f}%"] + [f"{bits[m][n] / nbytes[n]:.3f}" for m in labels]
        row += [f"{100 * (bits[m][n] - bits[ref][n]) / excess[m]:.1f}%" if excess[m] else "-" for m in others]
        row += [f"{rest[m][n] / nbytes[n]:.3f}" for m in labels]
        print(f"| {n} | " + " | ".join(row) + " |")
    print("| all | 100% | " + " | ".join(f"{sum(bits[m].values()) / total:.4f}" for m in labels) + " |"
          + " |" * len(others) + " " + " | ".join(f"{sum(rest[m].values()) / total:.4f}" for m in labels) + " |")


if __name__ == "__main__":
    main()
