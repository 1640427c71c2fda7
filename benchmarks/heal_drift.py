"""Where does a healed model gain or lose against its start? Per target token, by how often the
training text shows that token.

    python3 benchmarks/heal_drift.py --before out/graft-de --after out/graft-de-healed \\
        --text manpages:de:dev --train libreoffice:de:fit

Prints the summed change in next-token loss (nats) on ``--text`` (the first ``--max-bytes``),
bucketed by the target token's count in the first MB of ``--train``, and the tokens that lose most.
Both folders must share a tokenizer (a transplant and its healed copy).
"""
from __future__ import annotations

import argparse
import collections

import torch

from tokengraft.assets import load_corpora, load_model, load_tokenizer

BUCKETS = ((0, 1), (1, 10), (10, 100), (100, 1000), (1000, 10**12))


def token_losses(folder: str, ids: list[int], window: int = 512) -> torch.Tensor:
    """Next-token loss (nats) at every position of ``ids``, in windows of ``window`` tokens."""
    model = load_model(folder)
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(ids) - 1, window - 1):
            x = torch.tensor([ids[i:i + window]])
            logp = torch.log_softmax(model(input_ids=x).logits.float(), -1)[0, :-1]
            out.append(-logp.gather(1, x[0, 1:, None])[:, 0])
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--text", default="manpages:de:dev")
    p.add_argument("--train", default="libreoffice:de:fit")
    p.add_argument("--max-bytes", type=int, default=40_000)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args()
    tok = load_tokenizer(args.before)
    text = "".join(d.text for d in load_corpora([args.text], max_bytes=args.max_bytes)[0].documents)
    train = "".join(d.text for d in load_corpora([args.train], max_bytes=1_000_000)[0].documents)
    counts = collections.Counter(tok.encode(train, add_special_tokens=False))
    ids = tok.encode(text, add_special_tokens=False)
    before, after = token_losses(args.before, ids), token_losses(args.after, ids)
    target = torch.tensor(ids[1:len(before) + 1])
    delta = after - before
    print(f"{args.text}: {before.sum():.0f} -> {after.sum():.0f} nats ({delta.sum():+.0f}) over {len(delta)} positions")
    print("| target's count in the training MB | positions | change, nats | mean |\n|---|---|---|---|")
    seen = torch.tensor([counts[int(t)] for t in target])
    for lo, hi in BUCKETS:
        m = (seen >= lo) & (seen < hi)
        mean = f"{delta[m].mean():+.3f}" if m.any() else "-"
        print(f"| {lo}-{hi - 1 if hi < 10**12 else ''} | {int(m.sum())} | {delta[m].sum():+.0f} | {mean} |")
    per, n = collections.defaultdict(float), collections.Counter()
    for t, v in zip(target.tolist(), delta.tolist()):
        per[t] += v
        n[t] += 1
    for t, v in sorted(per.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{tok.decode([t])!r}: {n[t]} positions, {v:+.1f} nats, {counts[t]} in the training MB")


if __name__ == "__main__":
    main()
