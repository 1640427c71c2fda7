"""The fit on a tiny real transplant: output rows approach the base model's own distribution over
the new tokens; the hidden-state objective of the input rows goes down."""
from __future__ import annotations

import pytest
import torch
from fit_fixtures import clone, fit_world, pieces_of  # noqa: F401  (fixtures)
from test_heal_helpers import heal_world, one_thread  # noqa: F401

from tokengraft.fit.induced import bytes_logprob, next_token_distribution
from tokengraft.fit.output import Head, OutputFitOptions, fit_output_rows
from tokengraft.fit.states import final_states
from tokengraft.heal import compat
from tokengraft.heal.alignment import align_doc
from tokengraft.heal.tokens import exact_tokens

pytestmark = pytest.mark.usefixtures("one_thread")


def aligned_contexts(world, texts, per_text: int = 3) -> list[tuple[list[int], list[int]]]:
    """(student context, teacher context) pairs ending at a byte offset where both tokenizations end a token."""
    new_tok, old_tok = world["new_tok"], world["old_tok"]
    ss, st = compat.start_token_id(new_tok), compat.start_token_id(old_tok)
    out = []
    for text in texts:
        (ids_s, len_s), = exact_tokens(new_tok, compat.token_bytes(new_tok), [text], "student")
        (ids_t, len_t), = exact_tokens(old_tok, compat.token_bytes(old_tok), [text], "teacher")
        bounds = align_doc(ids_s, len_s, ids_t, len_t).bounds
        for s, t in bounds[1:-1][5::7][:per_text].tolist():
            out.append(([ss, *ids_s[:s]], [st, *ids_t[:t]]))
    return out


def kl_to_base(world, student, contexts) -> float:
    """Mean KL(base || student) over the new tokens that have bytes, at ``contexts``."""
    cands = pieces_of(world["corr"])
    ids = torch.tensor([t for t, _, _ in cands])
    total = 0.0
    for ctx_s, ctx_t in contexts:
        base = next_token_distribution(bytes_logprob(world["teacher"], ctx_t, [p for _, p, _ in cands]),
                                       [b for _, _, b in cands])
        with torch.no_grad():
            logits = student(input_ids=torch.tensor([ctx_s])).logits[0, -1].float()
        mine = torch.log_softmax(logits[ids], dim=-1)
        total += float((base.exp() * (base - mine)).sum())
    return total / len(contexts)


def student_states(world, model, texts) -> tuple[torch.Tensor, torch.Tensor]:
    tok = world["new_tok"]
    start = compat.start_token_id(tok)
    hs, ys = [], []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([[start, *tok(text, add_special_tokens=False)["input_ids"]]])
            hs.append(final_states(model, ids)[0, :-1])
            ys.append(ids[0, 1:])
    return torch.cat(hs), torch.cat(ys)


def test_output_fit_brings_the_new_token_distribution_closer_to_the_base_model(fit_world):  # noqa: F811
    contexts = aligned_contexts(fit_world, fit_world["heldout"])
    assert len(contexts) >= 8
    before = kl_to_base(fit_world, fit_world["student"], contexts)
    fitted = clone(fit_world["student"])
    hidden, labels = student_states(fit_world, fitted, fit_world["texts"])
    head = fitted.get_output_embeddings()
    fit = fit_output_rows(hidden, labels, head.weight.detach(), Head(), OutputFitOptions(lr=1e-2, batch=256))
    assert fit.curve[-1]["heldout"] < fit.curve[0]["heldout"]
    with torch.no_grad():
        head.weight.copy_(fit.rows)
    after = kl_to_base(fit_world, fitted, contexts)
    assert after < 0.7 * before, (before, after)  # 2.74 -> 0.90 nats when written


def aligned_batches(world, texts, batch: int = 4, seq_len: int = 48):
    from tokengraft.heal.data import AlignedStream
    from tokengraft.heal.tokens import aligner

    new_tok, old_tok = world["new_tok"], world["old_tok"]
    stream = AlignedStream(texts, aligner(new_tok, old_tok), compat.start_token_id(new_tok),
                           compat.start_token_id(old_tok), seq_len, 2 * seq_len, seed=0)
    while True:
        rows = stream.next_batch(batch)
        yield [r.student for r in rows], [r.teacher for r in rows], [r.chunks for r in rows]


@pytest.mark.parametrize("loss,layer", [("mse", 1), ("mse", None), ("kl", None)])
def test_hidden_state_objective_goes_down_and_only_input_rows_move(fit_world, loss, layer):  # noqa: F811
    from tokengraft.fit.hidden import InputFitOptions, fit_input_rows

    student = clone(fit_world["student"])
    student.requires_grad_(False)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    batches = aligned_batches(fit_world, fit_world["texts"])
    curve = fit_input_rows(student, fit_world["teacher"], batches, InputFitOptions(layer=layer, loss=loss, lr=1e-2),
                           max_steps=30)
    assert len(curve) == 30 and all(e["positions"] > 10 for e in curve)
    first, last = sum(e["loss"] for e in curve[:5]) / 5, sum(e["loss"] for e in curve[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    after = student.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"model.embed_tokens.weight"}
    assert not any(p.requires_grad for p in student.parameters())  # left as found
