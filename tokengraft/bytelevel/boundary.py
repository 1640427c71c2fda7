"""A prompt that ends mid-token, three ways: as is, token healing, byte level.

``continuation_logprobs(bm, prompt, target)`` gives log P(target | prompt) (nats) under

- ``as_is``: the prompt's own tokens, then any tokens whose bytes start with the target
  (the usual way, which a prompt cut inside a word pushes off the model's training data);
- ``healing``: the prompt's tokens but its last one, then a first token that must start
  with that last token's bytes (Microsoft guidance's "token healing"), then any tokens;
- ``bytes``: the byte-level model, which sums over every tokenization of the prompt's end.

All three read the target's probability exactly (summing over its tokenizations, up to
the byte model's pruning), so they differ only in how the prompt's end is treated.
"""
from __future__ import annotations

from tokengraft.bytelevel.model import ByteModel

SCHEMES = ("as_is", "healing", "bytes")


def continuation_logprobs(bm: ByteModel, prompt: bytes, target: bytes) -> dict[str, float]:
    """log P(target | prompt) under each of :data:`SCHEMES` (prompt and target are raw bytes)."""
    data = bm.lead + prompt
    ids = bm.canonical(data)
    start = [bm.start_id]
    out = {}
    run = bm.run(target, final=True, before=start + ids)
    out["as_is"] = float(run.lattice.prefix_logmass()[0][-1])
    if ids:
        last = bm.vocab.tokens[ids[-1]] or b""
        run = bm.run(last + target, final=True, before=start + ids[:-1], ids=[ids[-1], *bm.canonical(target)],
                     min_first=len(last))
        kept = run.lattice.prefix_logmass()[0]
        out["healing"] = float(kept[-1] - kept[len(last)])
    else:
        out["healing"] = out["as_is"]
    tail = None if bm.options.prompt_tail is None else bm.options.prompt_tail + len(target)
    run = bm.run(data + target, final=True, tail=tail)
    kept = run.lattice.prefix_logmass()[0]
    out["bytes"] = float(kept[-1] - kept[len(data) - run.offset])
    return out
