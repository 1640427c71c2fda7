"""Input rows fitted in one short real context (session 15's probe; a measured negative result).

    python3 benchmarks/fit_in_context.py out/de-graft out/de-fitctx --share 0.5   # 12 steps at 2e-2

For every new token t spelled p_1 .. p_k by the old tokenizer (k >= 2, not copied), the teacher
state is the residual stream after the first ``--layer`` blocks at p_k, the base body having read
the start token, the first ``--context-tokens`` old tokens of ``--corpus`` and then p_1 .. p_k with
the old input rows (a prefix tree after the cached context); the student state is the same body
after that context and the new row e_t alone. Each row has its own loss (squared difference scaled
per dimension by the teacher's RMS), so all rows are fitted at once and independently by Adam, one
forward and backward pass through ``--layer`` blocks per token and step (2.6 ms a token here: 65 s a
step for the 25,974 rows of SmolLM2-135M -> the 32k German BPE, 2 float32 threads). ``--share``
keeps that share of the fitted change (init + share x (fitted - init)); ``--skip-top N`` leaves
the N most frequent tokens (first MB of the corpus) as they were.

Dev text (first 40,000 bytes of libreoffice:de:dev / manpages:de:dev; graft start 1.7411 / 2.3150):
12 steps at 2e-2 (loss 1.07 -> 0.32), share 1: 1.7756 / 2.2847; the rare rows only (all but the 8,192 most frequent):
1.7522 / 2.3186; share 0.5: 1.7363 / 2.2678 (better on both). After 60 steps of heal's default
(1 thread each, side by side), from graft 1.1533 / 1.9563, from share 0.5 1.1886 / 1.9576: the
zero-shot gain does not survive healing. See the README (session 15).
"""
import argparse
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import torch

from tokengraft.assets.corpora import load_corpus
from tokengraft.assets.models import load_model
from tokengraft.assets.tokenizers import load_tokenizer
from tokengraft.fit.states import decoder_layers
from tokengraft.lm.cache import cache_argument
from tokengraft.lm.start import resolve_start_token
from tokengraft.transplant.auxiliary.prefix_tree import Batch, nodes_of, pack, tree_mask
from tokengraft.transplant.correspondence import build_correspondence


class Stop(Exception):
    pass


def capture(body, layer, **kw):
    seen = []

    def hook(_m, _i, out):
        seen.append(out[0] if isinstance(out, tuple) else out)
        raise Stop

    h = decoder_layers(body)[layer - 1].register_forward_hook(hook)
    try:
        body(**kw)
    except Stop:
        pass
    finally:
        h.remove()
    return seen[0][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--base", default="smollm2-135m")
    ap.add_argument("--corpus", default="libreoffice:de:fit")
    ap.add_argument("--layer", type=int, default=10)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--skip-top", type=int, default=0)
    ap.add_argument("--share", type=float, default=1.0)
    ap.add_argument("--contexts", type=int, default=1)
    ap.add_argument("--context-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    from transformers import DynamicCache
    old_tok, new_tok = load_tokenizer(a.base), load_tokenizer(a.model)
    base = load_model(a.base)
    model = load_model(a.model)
    body = model.base_model
    old_emb = base.get_input_embeddings().weight.detach()
    new_emb = model.get_input_embeddings().weight.detach()
    for p in body.parameters():
        p.requires_grad_(False)
    corr = build_correspondence(old_tok, new_tok)
    pieces, copied = corr.pieces, corr.copied
    corpus = load_corpus(a.corpus)
    texts = [d.text for d in corpus.documents]
    sample, size = [], 0
    for t in texts:
        if size >= 1_000_000:
            break
        sample.append(t)
        size += len(t.encode())
    counts = Counter(i for ids in new_tok(sample, add_special_tokens=False)["input_ids"] for i in ids)
    cand = [t for t, p in enumerate(pieces) if len(p) >= 2 and int(copied[t]) < 0]
    cand.sort(key=lambda t: (-counts[t], t))
    cand = cand[a.skip_top:]
    if a.limit:
        cand = cand[: a.limit]
    print(f"{len(cand)} candidates; load+prep {time.perf_counter() - t_start:.0f}s", flush=True)
    # contexts: consecutive windows of C old tokens from the corpus start
    start_id = resolve_start_token(old_tok)[1]
    ids = []
    for t in texts:
        ids += old_tok(t + "\n", add_special_tokens=False)["input_ids"]
        if len(ids) >= a.contexts * a.context_tokens:
            break
    contexts = [[start_id] + ids[i * a.context_tokens:(i + 1) * a.context_tokens] for i in range(a.contexts)]
    C = len(contexts[0])
    L = a.layer
    t0 = time.perf_counter()
    kvs, targets = [], []
    with torch.no_grad():
        for ctx in contexts:
            cache = DynamicCache()
            body(inputs_embeds=old_emb[torch.tensor([ctx])], use_cache=True, **cache_argument(body, cache))
            kv = [(layer.keys, layer.values) for layer in cache.layers]
            kvs.append(kv)
            want = {tuple(pieces[t]): None for t in cand}
            nodes = nodes_of(list(want))
            state = {}
            for batch in pack(list(nodes), 512):
                bid = torch.tensor([[n[-1] for n in batch.nodes]])
                pos = torch.tensor([[C + len(n) - 1 for n in batch.nodes]])
                h = capture(body, L, inputs_embeds=old_emb[bid], attention_mask=tree_mask(batch, C, torch.float32, "cpu"),
                            position_ids=pos, use_cache=True, **cache_argument(body, DynamicCache(ddp_cache_data=kv)))
                for i, n in enumerate(batch.nodes):
                    if n in want:
                        state[n] = h[i]
            targets.append(torch.stack([state[tuple(pieces[t])] for t in cand]))
    target = torch.stack(targets)  # (K, N, d)
    scale = target.reshape(-1, target.shape[-1]).pow(2).mean(0).sqrt()
    scale = scale.clamp(min=float(scale.mean()) * 1e-2)
    print(f"teacher targets {time.perf_counter() - t0:.0f}s", flush=True)
    init = new_emb[cand].clone()
    rows = torch.nn.Parameter(init.clone())
    opt = torch.optim.Adam([rows], lr=a.lr)
    N, B = len(cand), a.batch
    single = [Batch([(0,)] * n, [-1] * n) for n in {min(B, N - i) for i in range(0, N, B)}]
    masks = {len(b.nodes): tree_mask(b, C, torch.float32, "cpu") for b in single}
    curve = []
    for step in range(a.steps):
        t1 = time.perf_counter()
        opt.zero_grad()
        total = 0.0
        for k, kv in enumerate(kvs):
            for i in range(0, N, B):
                e = rows[i:i + B]
                n = e.shape[0]
                h = capture(body, L, inputs_embeds=e[None], attention_mask=masks[n], position_ids=torch.full((1, n), C),
                            use_cache=True, **cache_argument(body, DynamicCache(ddp_cache_data=kv)))
                loss = (((h - target[k, i:i + B]) / scale) ** 2).mean(-1).sum() / len(kvs)
                loss.backward()
                total += float(loss.detach())
        opt.step()
        curve.append(total / N)
        print(f"step {step + 1} loss {total / N:.4f} {time.perf_counter() - t1:.0f}s", flush=True)
    final = init + a.share * (rows.detach() - init)
    change = ((final - init).norm(dim=-1) / init.norm(dim=-1)).mean()
    print(f"mean relative row change {float(change):.3f}", flush=True)
    out = Path(a.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    from tokengraft.assets.models import model_folder
    shutil.copytree(model_folder(a.model), tmp)
    with torch.no_grad():
        model.get_input_embeddings().weight[torch.tensor(cand)] = final
    model.save_pretrained(tmp)
    new_tok.save_pretrained(tmp)
    (tmp / "infit.json").write_text(json.dumps({"args": vars(a), "curve": curve, "candidates": N,
                                                "seconds": time.perf_counter() - t_start}, indent=1))
    torch.save({"cand": cand, "rows": final, "init": init}, str(out) + ".rows.pt")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"wrote {out} in {time.perf_counter() - t_start:.0f}s total")


if __name__ == "__main__":
    main()
