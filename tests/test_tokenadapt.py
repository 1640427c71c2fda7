"""TokenAdapt hybrid: hand-computed local and global weights, their mix, and the fallbacks."""
from __future__ import annotations

import math

import torch

from tokengraft.transplant.methods.base import METHODS, InitProblem, Needs
from tokengraft.transplant.methods.tokenadapt import TokenAdaptOptions, global_weights, local_weights, tokenadapt
from transplant_fixtures import run_contract


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_local_weights_hand_made():
    # sims 1, 0 -> a = softmax = (.731, .269); length shares .4, .6; w = softmax(((a + len) / 2) / .3)
    a = softmax([1.0, 0.0])
    expected = softmax([(a[0] + 0.4) / 2 / 0.3, (a[1] + 0.6) / 2 / 0.3])
    out = local_weights(torch.tensor([[1.0, 0.0, 9.0]]), torch.tensor([[0.4, 0.6, 9.0]]),
                        torch.tensor([[True, True, False]]), 0.3)
    torch.testing.assert_close(out, torch.tensor([expected + [0.0]]))


def test_global_weights_drop_negative_and_renormalise():
    out = global_weights(torch.tensor([[0.9, 0.3, -0.2], [-0.1, -0.2, -0.3]]), 0.3, 0.0)
    kept = softmax([3.0, 1.0])  # softmax over (.9, .3, -.2) / .3 with the third dropped, renormalised
    torch.testing.assert_close(out, torch.tensor([kept + [0.0], [0.0, 0.0, 0.0]]))


OLD = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, -1.0]])


def make_problem(seed: int = 0) -> InitProblem:
    """Old: he, llo, x, y. New: he (copied), hello (pieces he+llo), zz (no pieces), \\xff (nothing), hey (no vector)."""
    return InitProblem(
        old=OLD, which="input",
        new_bytes=[b"he", b"hello", b"zz", b"\xff", b"hey"], old_bytes=[b"he", b"llo", b"x", b"y"],
        copied=torch.tensor([0, -1, -1, -1, -1]), pieces=[[0], [0, 1], [], [], [0, 3]],
        aux_old=torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-0.6, -0.8]]),
        aux_new=torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]),
        seed=seed,
    )


def test_tokenadapt_hand_computed_rows():
    result = run_contract("tokenadapt", make_problem(), TokenAdaptOptions())
    # hello: local over he (sim 1, 2/5 bytes) and llo (sim 0, 3/5 bytes)
    a = softmax([1.0, 0.0])
    w = softmax([(a[0] + 0.4) / 2 / 0.3, (a[1] + 0.6) / 2 / 0.3])
    e_loc = w[0] * OLD[0] + w[1] * OLD[1]
    # global: cos to he, llo, x, y = 1, 0, .6, -.6 -> top 3 he, x, llo (sim 0 is kept: not below 0)
    g = softmax([1 / 0.3, 0.6 / 0.3, 0.0])
    e_glob = g[0] * OLD[0] + g[1] * OLD[2] + g[2] * OLD[1]
    torch.testing.assert_close(result.rows[1], 0.7 * e_loc + 0.3 * e_glob)
    # zz: global only; cos = 0, 1, .8, -.8 -> llo, x, he
    g = softmax([1 / 0.3, 0.8 / 0.3, 0.0])
    torch.testing.assert_close(result.rows[2], g[0] * OLD[1] + g[1] * OLD[2] + g[2] * OLD[0])
    # hey: no vector -> local only with similarity 0 for both pieces (he 2/3 bytes, y 1/3)
    w = softmax([(0.5 + 2 / 3) / 2 / 0.3, (0.5 + 1 / 3) / 2 / 0.3])
    torch.testing.assert_close(result.rows[4], w[0] * OLD[0] + w[1] * OLD[3])
    assert result.source == ["copied", "tokenadapt", "tokenadapt", "fallback:no-estimate", "tokenadapt"]
    assert torch.equal(result.rows[0], OLD[0])


def test_tokenadapt_local_only_when_mix_is_zero_and_deterministic_fallback():
    local = run_contract("tokenadapt", make_problem(), TokenAdaptOptions(mix=0.0))
    a = softmax([1.0, 0.0])
    w = softmax([(a[0] + 0.4) / 2 / 0.3, (a[1] + 0.6) / 2 / 0.3])
    torch.testing.assert_close(local.rows[1], w[0] * OLD[0] + w[1] * OLD[1])
    again, other = run_contract("tokenadapt", make_problem(seed=0), TokenAdaptOptions()), run_contract("tokenadapt", make_problem(seed=1), TokenAdaptOptions())
    assert torch.equal(again.rows, run_contract("tokenadapt", make_problem(seed=0), TokenAdaptOptions()).rows)
    assert not torch.equal(again.rows[3], other.rows[3])
    assert torch.isfinite(again.rows).all()


def test_tokenadapt_chunking_does_not_change_rows():
    gen = torch.Generator().manual_seed(0)
    n_old, n_new = 30, 25
    old_bytes = [bytes([97 + i % 26]) * (1 + i // 26) for i in range(n_old)]
    problem = InitProblem(
        old=torch.randn(n_old, 4, generator=gen), which="output",
        new_bytes=[b"q" * (i + 1) for i in range(n_new)], old_bytes=old_bytes,
        copied=torch.full((n_new,), -1), pieces=[[i % n_old, (3 * i) % n_old][: 1 + i % 2] for i in range(n_new)],
        aux_new=torch.randn(n_new, 3, generator=gen), aux_old=torch.randn(n_old, 3, generator=gen),
    )
    whole = run_contract("tokenadapt", problem, TokenAdaptOptions())
    pieces = run_contract("tokenadapt", problem, TokenAdaptOptions(chunk_size=4))
    torch.testing.assert_close(whole.rows, pieces.rows)
    assert whole.source == ["tokenadapt"] * n_new


def test_tokenadapt_is_registered():
    assert METHODS["tokenadapt"].options is TokenAdaptOptions
    assert METHODS["tokenadapt"].needs == Needs(space=("strings",))


def test_global_search_over_usable_keys_equals_the_plain_masked_search():
    """Neighbours are searched among usable old tokens only (keys normalised once): the same ids
    and weights as a plain search over every old token with the unusable ones masked out."""
    from tokengraft.transplant.methods.tokenadapt import global_weights_of, usable_keys

    gen = torch.Generator().manual_seed(3)
    n_old, n_new = 40, 12
    aux_old = torch.randn(n_old, 5, generator=gen)
    aux_old[::3] = 0  # no vector
    old_bytes = [None if i % 7 == 0 else b"x%d" % i for i in range(n_old)]  # specials
    problem = InitProblem(old=torch.randn(n_old, 4, generator=gen), which="input", new_bytes=[b"n"] * n_new,
                          old_bytes=old_bytes, copied=torch.full((n_new,), -1), pieces=[[1]] * n_new,
                          aux_new=torch.randn(n_new, 5, generator=gen), aux_old=aux_old)
    options = TokenAdaptOptions(threshold=-1.0)
    tokens, ids, weights = global_weights_of(problem, torch.arange(n_new), usable_keys(problem), options)
    unit = lambda x: torch.nn.functional.normalize(x, dim=-1)  # noqa: E731
    sims = unit(problem.aux_new) @ unit(aux_old).T
    usable = (aux_old.abs().sum(1) > 0) & torch.tensor([b is not None for b in old_bytes])
    plain_sims, plain_ids = sims.masked_fill(~usable, float("-inf")).topk(3, dim=-1)
    assert torch.equal(tokens, torch.arange(n_new)) and torch.equal(ids, plain_ids)
    torch.testing.assert_close(weights, global_weights(plain_sims, 0.3, -1.0))


def test_local_pieces_and_shares_equal_a_plain_loop():
    """The padded piece ids and length shares built at once equal a per-token loop: pieces of 1-4 old
    tokens, a new token without bytes (its share divides by 1), zero-byte old pieces."""
    from tokengraft.transplant.methods.tokenadapt import byte_lengths, local_weights, local_weights_of

    gen = torch.Generator().manual_seed(5)
    n_old, n_new = 30, 9
    old_bytes = [b"" if i == 4 else b"a" * (1 + i % 5) for i in range(n_old)]
    pieces = [torch.randint(0, n_old, (1 + t % 4,), generator=gen).tolist() for t in range(n_new)]
    new_bytes = [None if t == 2 else b"".join(old_bytes[o] for o in p) for t, p in enumerate(pieces)]
    problem = InitProblem(old=torch.randn(n_old, 4, generator=gen), which="input", new_bytes=new_bytes,
                          old_bytes=old_bytes, copied=torch.full((n_new,), -1), pieces=pieces,
                          aux_new=torch.randn(n_new, 5, generator=gen), aux_old=torch.randn(n_old, 5, generator=gen))
    tokens = torch.tensor([8, 0, 2, 5, 3])
    ids, weights = local_weights_of(problem, tokens, 0.3)
    assert torch.equal(ids, local_weights_of(problem, tokens, 0.3, byte_lengths(problem))[0])
    width = max(len(pieces[t]) for t in tokens.tolist())
    want_ids, mask, share = torch.zeros(5, width, dtype=torch.long), torch.zeros(5, width, dtype=torch.bool), torch.zeros(5, width)
    for row, t in enumerate(tokens.tolist()):
        p = pieces[t]
        want_ids[row, :len(p)], mask[row, :len(p)] = torch.tensor(p), True
        share[row, :len(p)] = torch.tensor([len(old_bytes[o]) / (len(new_bytes[t] or b"") or 1) for o in p])
    unit = lambda x: torch.nn.functional.normalize(x, dim=-1)  # noqa: E731
    sims = torch.einsum("na,nla->nl", unit(problem.aux_new[tokens]), unit(problem.aux_old[want_ids]))
    assert torch.equal(ids, want_ids)
    torch.testing.assert_close(weights, local_weights(sims, share, mask, 0.3))
