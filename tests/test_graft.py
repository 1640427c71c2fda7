"""graft: continuations measured from the base model, the output mix, untying, and saving."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.continuation import ContinuationOptions, continuation
from tokengraft.transplant.correspondence import build_correspondence
from tokengraft.transplant.core import transplant_model
from tokengraft.transplant.methods.base import InitProblem
from tokengraft.transplant.methods.graft import GraftOptions
from tokengraft.transplant.provide import Inputs
from tokengraft.transplant.writer import write_transplant
from transplant_fixtures import NEW_TEXT, base_tokenizer, new_tokenizer, run_contract, tiny_llama


@pytest.fixture(scope="module")
def toks():
    return base_tokenizer(), new_tokenizer()


@pytest.fixture(scope="module")
def world(toks):
    old, new = toks
    model = tiny_llama(len(old), tied=True, seed=3)
    corr = build_correspondence(old, new, old_size=len(old))
    return model, corr


def plain_logprob(model, ids: list[int]) -> torch.Tensor:
    """(len(ids) - 1,) log p(ids[i] | ids[:i]) from one plain forward, no cache."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]


def test_continuation_equals_a_plain_forward_after_the_prefix(toks, world):
    old, _ = toks
    model, corr = world
    cont = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT],
                        ContinuationOptions(prefix_tokens=12, precision="float32", batch_nodes=16))
    prefix = [0, *old(NEW_TEXT + "\n", add_special_tokens=False)["input_ids"][:12]]  # start: <|endoftext|> = 0
    multi = [t for t, p in enumerate(corr.pieces) if len(p) >= 2 and corr.copied[t] < 0]
    assert len(multi) > 20 and bool(cont.measured[multi].all())
    for t in multi:  # every token: the packed prefix tree changes nothing but the order of the work
        lp = plain_logprob(model, prefix + corr.pieces[t])
        expected = lp[len(prefix):].sum()  # every piece after the first, given the prefix and the earlier pieces
        assert float(cont.logprob[t]) == pytest.approx(float(expected), abs=1e-4)
    single = [t for t, p in enumerate(corr.pieces) if len(p) < 2 or corr.copied[t] >= 0]
    assert float(cont.logprob[single].abs().max()) == 0.0 and not bool(cont.measured[single].any())
    assert cont.context == old.decode(prefix[1:])
    assert cont.unit.shape == (32,) and abs(cont.unit_fit[0] - 1.0) < 0.2


def test_bfloat16_continuations_stay_close_to_float32(toks, world):
    old, _ = toks
    model, corr = world
    exact = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], ContinuationOptions(precision="float32"))
    fast = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], ContinuationOptions(precision="bfloat16"))
    multi = exact.measured.nonzero().flatten()
    assert bool(fast.measured[multi].all())
    torch.testing.assert_close(fast.logprob[multi], exact.logprob[multi], atol=0.02, rtol=0.01)
    torch.testing.assert_close(fast.unit, exact.unit, atol=0.05, rtol=0.05)


def test_limit_measures_the_lowest_ids_and_estimates_the_rest_by_piece_count(toks, world):
    old, _ = toks
    model, corr = world
    opts = ContinuationOptions(prefix_tokens=8, order="id", precision="float32")
    full = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], opts)
    part = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], dataclasses.replace(opts, limit=10))
    multi = [t for t, p in enumerate(corr.pieces) if len(p) >= 2 and corr.copied[t] < 0]
    assert part.measured.nonzero().flatten().tolist() == multi[:10]
    torch.testing.assert_close(part.logprob[multi[:10]], full.logprob[multi[:10]], atol=1e-4, rtol=0)
    for t in multi[10:]:
        same = [s for s in multi[:10] if len(corr.pieces[s]) == len(corr.pieces[t])]
        expected = part.logprob[same].mean() if same else part.logprob[multi[:10]].mean()
        assert float(part.logprob[t]) == pytest.approx(float(expected), abs=1e-5)


def aux_for(old, new, dim: int = 8):
    """Random 'embedder' vectors for both vocabularies: what tokenadapt's provider would give."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(len(new), dim, generator=g), torch.randn(len(old), dim, generator=g)


def corpus_inputs(old, new) -> Inputs:
    """What a transplant with ``--corpus`` gives graft: the text and the embedder vectors."""
    aux_new, aux_old = aux_for(old, new)
    return Inputs(corpus_texts=[NEW_TEXT], aux_new=aux_new, aux_old=aux_old)


def test_rows_are_the_documented_ensemble(toks, world):
    from tokengraft.transplant.auxiliary.continuation import Continuation
    from tokengraft.transplant.methods.fvt import FVTOptions, wvt
    from tokengraft.transplant.methods.tokenadapt import TokenAdaptOptions, tokenadapt

    old_tok, new_tok = toks
    _, corr = world
    n, d = len(corr.new_bytes), 4
    old = torch.randn(len(corr.old_bytes), d, generator=torch.Generator().manual_seed(0))
    c = torch.linspace(-3, 0, n)
    measured = torch.arange(n) % 2 == 0  # odd ids: continuations estimated (beyond the limit)
    cont = Continuation(c, measured, torch.tensor([1.0, 2.0, 0.0, -1.0]), (1.0, 0.0), "", 0.0)
    aux_new, aux_old = aux_for(old_tok, new_tok)
    problem = InitProblem(old=old, which="output", new_bytes=corr.new_bytes, old_bytes=corr.old_bytes,
                          copied=corr.copied, pieces=corr.pieces, aux_new=aux_new, aux_old=aux_old,
                          extras={"continuation": cont})
    opts = GraftOptions(semantic=0.2, mean=0.5, exact=0.3, exact_estimated=0.6)
    got = run_contract("graft", problem, opts)
    mean = run_contract("wvt", problem, FVTOptions()).rows
    semantic = run_contract("tokenadapt", problem, TokenAdaptOptions(fallback="mean")).rows
    multi = [t for t, p in enumerate(corr.pieces) if len(p) >= 2 and corr.copied[t] < 0]
    assert len(multi) > 20
    for t in multi[:6] + multi[-6:]:
        exact = old[corr.pieces[t][0]] + c[t] * cont.unit
        m, e = (0.5, 0.3) if t % 2 == 0 else (0.2, 0.6)  # estimated: exact takes its extra share from mean's
        torch.testing.assert_close(got.rows[t], 0.2 * semantic[t] + m * mean[t] + e * exact)
        assert got.source[t] == "graft"
    copied = (corr.copied >= 0).nonzero().flatten()
    assert torch.equal(got.rows[copied], old[corr.copied[copied]])
    inputs = run_contract("graft", InitProblem(**{**problem.__dict__, "which": "input"}), opts)
    torch.testing.assert_close(inputs.rows[multi], semantic[multi])  # input rows: the semantic estimate
    assert bool(torch.isfinite(got.rows).all()) and bool(torch.isfinite(inputs.rows).all())
    with pytest.raises(TokengraftError, match="sum to 1"):
        run_contract("graft", problem, GraftOptions(semantic=0.9))
    with pytest.raises(TokengraftError, match="exact_estimated takes its share from mean's"):
        run_contract("graft", problem, GraftOptions(exact_estimated=0.6))
    with pytest.raises(TokengraftError, match="needs the base model's continuations"):
        run_contract("graft", InitProblem(**{**problem.__dict__, "extras": {}}), GraftOptions())


def test_transplant_unties_a_tied_model_and_the_folder_loads_untied(toks, tmp_path):
    from transformers import AutoModelForCausalLM

    old, new = toks
    model = tiny_llama(len(old), tied=True, seed=4)
    inputs = corpus_inputs(old, new)
    model, tok, diag = transplant_model(model, old, new, "graft", inputs=inputs)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.data_ptr() != head.data_ptr() and not model.config.tie_word_embeddings
    assert diag.tokens.source_output is not None and "graft" in diag.tokens.source_output
    differs = (emb - head).abs().amax(dim=1) > 0
    corr = build_correspondence(old, tok, old_size=len(old))
    assert bool(differs[[t for t, p in enumerate(corr.pieces) if len(p) >= 2]].all())
    assert not bool(differs[corr.copied >= 0].any())  # calibrate_copied is off by default
    out = write_transplant(tmp_path / "m", model, tok, {"method": "graft"}, diag)
    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not loaded.config.tie_word_embeddings
    assert torch.equal(loaded.get_output_embeddings().weight, head.detach())
    ids = torch.tensor([tok("Ouvrez le menu Fichier", add_special_tokens=False)["input_ids"]])
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_an_untied_model_gets_its_own_output_rows(toks):
    old, new = toks
    model = tiny_llama(len(old), tied=False, seed=5)
    head_before = model.get_output_embeddings().weight.detach().clone()
    inputs = corpus_inputs(old, new)
    model, tok, _ = transplant_model(model, old, new, "graft", inputs=inputs)
    corr = build_correspondence(old, tok, old_size=len(old))
    t = next(t for t, p in enumerate(corr.pieces) if len(p) >= 2 and corr.copied[t] < 0)
    # output rows come from the old output matrix: the first piece's old output row enters the mix
    assert not torch.equal(model.get_output_embeddings().weight[t], model.get_input_embeddings().weight[t])
    copied = int((corr.copied >= 0).nonzero()[0])
    assert torch.equal(model.get_output_embeddings().weight[copied], head_before[corr.copied[copied]])


def test_an_untied_bf16_model_through_the_api_gets_rows_from_each_matrix(toks, world):
    """bf16 weights make the orchestrator pass float copies of both matrices: the output rows
    must come from the output matrix. The float32 twin holds the same values, so the rows agree
    bit for bit, and the input and output rows of a multi-piece token differ."""
    old, new = toks
    model, corr = world
    cont = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], ContinuationOptions(prefix_tokens=8))
    aux_new, aux_old = aux_for(old, new)
    inputs = Inputs(aux_new=aux_new, aux_old=aux_old, extras={"continuation": cont})  # given: no provider runs
    half = tiny_llama(len(old), tied=False, seed=6).to(torch.bfloat16)
    full = tiny_llama(len(old), tied=False, seed=6).to(torch.bfloat16).float()
    half, tok, _ = transplant_model(half, old, new, "graft", inputs=inputs)
    full, _, _ = transplant_model(full, old, new, "graft", inputs=inputs)
    for get in ("get_input_embeddings", "get_output_embeddings"):
        got, want = getattr(half, get)().weight, getattr(full, get)().weight
        assert got.dtype == torch.bfloat16 and torch.equal(got, want.to(torch.bfloat16)), get
    t = next(t for t, p in enumerate(build_correspondence(old, tok, old_size=len(old)).pieces) if len(p) >= 2)
    assert not torch.equal(half.get_input_embeddings().weight[t], half.get_output_embeddings().weight[t])


def test_graft_reads_the_tokenizers_training_corpus_by_default(tmp_path):
    from tokengraft.transplant.plan import training_corpus

    (tmp_path / "tokengraft_train.json").write_text('{"corpora": ["libreoffice:fr:train", "x.txt"]}')
    assert training_corpus(str(tmp_path)) == "libreoffice:fr:train"
    (tmp_path / "tokengraft_train.json").write_text("not json")
    assert training_corpus(str(tmp_path)) is None
    assert training_corpus("gemma3-270m") is None  # a built-in name, not a folder


def test_encoder_transplant_needs_no_continuations(toks):
    from transformers import BertConfig, BertModel

    old, new = toks
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(old), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64)).eval()
    aux_new, aux_old = aux_for(old, new)
    model, tok, diag = transplant_model(model, old, new, "graft", kind="encoder",
                                        inputs=Inputs(aux_new=aux_new, aux_old=aux_old))
    assert model.get_input_embeddings().weight.shape == (len(tok), 32)
    assert diag.tokens.source_output is None


def test_limit_in_frequency_order_measures_the_most_frequent_tokens(toks, world):
    old, new = toks
    model, corr = world
    opts = ContinuationOptions(prefix_tokens=8, precision="float32", limit=10)
    part = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], opts, new_tok=new)
    counts = Counter(new(NEW_TEXT, add_special_tokens=False)["input_ids"])
    multi = [t for t, p in enumerate(corr.pieces) if len(p) >= 2 and corr.copied[t] < 0]
    expected = sorted(sorted(multi, key=lambda t: (-counts[t], t))[:10])
    assert counts[expected[-1]] > 0 and part.measured.nonzero().flatten().tolist() == expected
    full = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], dataclasses.replace(opts, limit=None))
    torch.testing.assert_close(part.logprob[expected], full.logprob[expected], atol=1e-4, rtol=0)
    no_text = continuation(model, old, corr.pieces, corr.copied, None, opts, new_tok=new)  # no counts: lowest ids
    assert no_text.measured.nonzero().flatten().tolist() == multi[:10]


def test_prefix_tree_packs_whole_subtrees_and_masks_all_but_ancestors():
    from tokengraft.transplant.auxiliary.prefix_tree import nodes_of, pack, tree_mask

    nodes = list(nodes_of([(5, 6, 8), (5,), (9, 6), (5, 7), (9, 6)]))
    assert nodes == [(5,), (5, 6), (5, 6, 8), (5, 7), (9,), (9, 6)]  # each prefix once, parents first
    batches = pack(nodes, 3)
    assert [b.nodes for b in batches] == [nodes[:4], nodes[4:]]  # the subtree of 5 is never split
    assert batches[0].parent == [-1, 0, 1, 0] and batches[1].parent == [-1, 0]
    mask = tree_mask(batches[0], 2, torch.float32, "cpu")[0, 0]
    allowed = mask == 0
    assert mask.shape == (4, 6) and bool(allowed[:, :2].all())  # the context: always
    assert allowed[:, 2:].tolist() == [[True, False, False, False], [True, True, False, False],
                                       [True, True, True, False], [True, False, False, True]]


def test_max_pieces_sums_only_the_first_pieces(toks, world):
    old, _ = toks
    model, corr = world
    cut = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT],
                       ContinuationOptions(prefix_tokens=8, max_pieces=2, precision="float32"))
    prefix = [0, *old(NEW_TEXT + "\n", add_special_tokens=False)["input_ids"][:8]]
    long = [t for t, p in enumerate(corr.pieces) if len(p) >= 3 and corr.copied[t] < 0]
    assert long
    for t in long[:5]:
        lp = plain_logprob(model, prefix + corr.pieces[t][:2])
        assert float(cut.logprob[t]) == pytest.approx(float(lp[-1]), abs=1e-4)  # the second piece only
    with pytest.raises(TokengraftError, match="max_pieces must be at least 2"):
        continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT], ContinuationOptions(max_pieces=1))


def test_pair_logprobs_equal_a_full_log_softmax_with_bias_scale_and_softcap():
    from tokengraft.lm.head import OutputHead
    from tokengraft.transplant.auxiliary.prefix_tree import pair_logprobs

    gen = torch.Generator().manual_seed(0)
    head = OutputHead(torch.randn(50, 8, generator=gen) * 3, torch.randn(50, generator=gen), softcap=5.0, scale=0.7)
    hidden = torch.randn(6, 8, generator=gen)
    rows, labels = torch.tensor([0, 0, 3, 5, 2]), torch.tensor([4, 9, 0, 49, 4])
    want = torch.log_softmax(head.logits(hidden), dim=-1)[rows, labels]
    torch.testing.assert_close(pair_logprobs(head, hidden, rows, labels, head.weight), want)
    fast = pair_logprobs(head, hidden, rows, labels, head.weight.to(torch.bfloat16))  # the logsumexp in bf16
    torch.testing.assert_close(fast, want, atol=0.05, rtol=0)


@pytest.mark.parametrize("name", ["gemma3", "gemma2", "qwen2", "gpt2", "gpt_neox", "phi3"])
def test_the_packed_tree_equals_a_plain_forward_on_each_family(name):
    """Tree attention after a cached context (custom 4D mask, explicit positions) against a plain
    per-token forward, on the families whose traps touch it: Gemma's scaled embeddings and softcaps,
    sliding-window layers (context + pieces stay inside the window), learned absolute positions
    (GPT-2), untied heads, extra embedding rows; small batches so that subtrees span several passes."""
    from arch_fixtures import FAMILIES, base_model
    from tokengraft.lm.start import resolve_start_token

    family = FAMILIES[name]
    model, old = base_model(family, seed=1)
    corr = build_correspondence(old, family.new_tokenizer(), old_size=len(old))
    cont = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT],
                        ContinuationOptions(prefix_tokens=6, precision="float32", batch_nodes=8))
    prefix = [resolve_start_token(old)[1], *old(NEW_TEXT + "\n", add_special_tokens=False)["input_ids"][:6]]
    multi = [t for t, p in enumerate(corr.pieces) if len(p) >= 2 and corr.copied[t] < 0]
    assert len(multi) >= 10 and bool(cont.measured[multi].all())
    assert len(prefix) + max(len(corr.pieces[t]) for t in multi) <= 16  # inside the tiny Gemmas' window
    want = torch.tensor([float(plain_logprob(model, prefix + corr.pieces[t])[len(prefix):].sum()) for t in multi])
    torch.testing.assert_close(cont.logprob[multi], want, atol=1e-4, rtol=0)


def test_a_limit_that_is_not_an_integer_is_a_one_line_error():
    with pytest.raises(TokengraftError, match="limit must be an integer >= 0 or null"):
        ContinuationOptions(limit="None").validate()
    ContinuationOptions(limit=None).validate()


def test_exclusive_logprob_removes_the_nearest_longer_spellings():
    from math import log

    from tokengraft.transplant.auxiliary.continuation import exclusive_logprob

    # t0 = [5] (a copied token), t1 = [5, 6], t2 = [5, 6, 7], t3 = [5, 8], t4 = [9, 1] (no token is its prefix)
    pieces = [[5], [5, 6], [5, 6, 7], [5, 8], [9, 1]]
    value = {((5,), 6): log(0.3), ((5, 6), 7): log(0.5), ((5,), 8): log(0.2), ((9,), 1): log(0.9)}
    got = exclusive_logprob(value, [1, 2, 3, 4], pieces)
    # t0 goes on into t1 (0.3) or t3 (0.2), never counted twice through t2; t1 into t2 (0.5)
    torch.testing.assert_close(got, torch.tensor([log(0.5), log(0.5), 0.0, 0.0, 0.0]))
    floored = exclusive_logprob({((5,), 6): 0.0}, [1], [[5], [5, 6]], floor=1e-3)  # every text goes on
    assert float(floored[0]) == pytest.approx(log(1e-3))


def test_continuation_reports_the_exclusive_share_from_a_plain_forward(toks, world):
    old, _ = toks
    model, corr = world
    cont = continuation(model, old, corr.pieces, corr.copied, [NEW_TEXT],
                        ContinuationOptions(prefix_tokens=12, precision="float32", batch_nodes=16))
    prefix = [0, *old(NEW_TEXT + "\n", add_special_tokens=False)["input_ids"][:12]]
    owner = {tuple(p): t for t, p in enumerate(corr.pieces)}
    parents = [t for t, p in enumerate(corr.pieces) if any(
        tuple(q[:len(p)]) == tuple(p) and len(q) > len(p) and corr.copied[u] < 0 for u, q in enumerate(corr.pieces))]
    assert len(parents) >= 3 and float(cont.exclusive.max()) <= 0.0
    for t in parents:  # 1 - the probability of going on into each nearest longer token, from plain forwards
        p = tuple(corr.pieces[t])
        children = [u for u, q in enumerate(corr.pieces) if corr.copied[u] < 0 and len(q) > len(p)
                    and tuple(q[:len(p)]) == p and not any(tuple(q[:k]) in owner for k in range(len(p) + 1, len(q)))]
        rest = sum(float(plain_logprob(model, prefix + list(corr.pieces[u]))[len(prefix) + len(p) - 1:].sum().exp())
                   for u in children)
        assert float(cont.exclusive[t]) == pytest.approx(float(torch.log1p(torch.tensor(-min(rest, 1 - 1e-3)))), abs=1e-4)


def test_calibrate_copied_lowers_copied_output_rows_by_the_measured_share(toks):
    old, new = toks
    base = tiny_llama(len(old), tied=True, seed=4)
    old_rows = base.get_input_embeddings().weight.detach().clone()
    inputs = corpus_inputs(old, new)
    model, tok, _ = transplant_model(base, old, new, "graft", inputs=inputs,
                                     method_options={"calibrate_copied": 2.0, "precision": "float32"})
    corr = build_correspondence(old, tok, old_size=len(old))
    cont = continuation(tiny_llama(len(old), tied=True, seed=4), old, corr.pieces, corr.copied, [NEW_TEXT],
                        ContinuationOptions(precision="float32"), new_tok=tok)
    copied = (corr.copied >= 0).nonzero().flatten()
    lowered = copied[cont.exclusive[copied] < 0]
    assert len(lowered) >= 3
    expected = old_rows[corr.copied[copied]] + 2.0 * cont.exclusive[copied, None] * cont.unit[None]
    torch.testing.assert_close(model.get_output_embeddings().weight.detach()[copied], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.get_input_embeddings().weight.detach()[copied], old_rows[corr.copied[copied]])
    with pytest.raises(TokengraftError, match="calibrate_copied"):
        transplant_model(tiny_llama(len(old), tied=True, seed=4), old, new, "graft", inputs=inputs,
                         method_options={"calibrate_copied": -1.0})


@pytest.mark.parametrize("columns", [1, 7, 50, 8192])
def test_blocked_logsumexp_equals_the_plain_one_in_every_block_width(columns):
    """The running max and sum over column blocks, in place in one buffer, against torch's logsumexp
    of the full logits (bias, scale and softcap included); a block width that does not divide the
    vocabulary, and logits far apart (a block whose maximum is far below the running one)."""
    from tokengraft.lm.head import OutputHead
    from tokengraft.transplant.auxiliary.prefix_tree import logsumexp_logits

    gen = torch.Generator().manual_seed(1)
    for softcap, scale in ((None, 1.0), (30.0, 0.5)):
        head = OutputHead(torch.randn(50, 8, generator=gen) * 4, torch.randn(50, generator=gen), softcap=softcap,
                          scale=scale)
        hidden = torch.randn(5, 8, generator=gen) * 3
        want = head.logits(hidden).logsumexp(dim=-1)
        torch.testing.assert_close(logsumexp_logits(head, hidden, head.weight, columns), want)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # as continuations call it, under autocast
            got = logsumexp_logits(head, hidden, head.weight.to(torch.bfloat16), columns)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=0.5, rtol=0)
    masked = OutputHead(head.weight, torch.cat([torch.full((10,), float("-inf")), head.bias[10:]]), None, 1.0)
    torch.testing.assert_close(logsumexp_logits(masked, hidden, head.weight, columns),  # a first block all -inf
                               masked.logits(hidden).logsumexp(dim=-1))
