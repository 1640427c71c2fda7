"""Byte-level probabilities: the fast path against the plain enumeration, on tiny self-made models."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from test_bpb import make_llama
from tokengraft.bytelevel import ByteModel, ByteOptions, ReferenceByteModel, VocabTrie
from tokengraft.bytelevel.ensemble import check_weights, mix_logprobs, tune_weights
from tokengraft.bytelevel.reference import END
from tokengraft.errors import TokengraftError
from tokengraft.vocab import byte_vocab
from tokenizer_fixtures import sentencepiece_base

EXACT = ByteOptions(threshold=0.0, max_depth=1 << 30, merge=False, prompt_tail=None)
# "ü" is C3 BC: the byte-level BPE below has it as one token and as two byte tokens.
ALPHABET = [b"e", b" ", b"\xc3", b"\xbc"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def umlaut_tokenizer():
    """A throwaway byte-level BPE (300 ids) whose vocabulary has "ü" (C3 BC) whole and as two byte tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from test_bpb import TRAIN_TEXT

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TRAIN_TEXT + "über für Tür müde " * 8], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def bpe():
    tok = umlaut_tokenizer()
    return tok, make_llama(len(tok), max_positions=64)


@pytest.fixture(scope="module")
def spm():
    tok = sentencepiece_base()
    return tok, make_llama(len(tok), max_positions=64, seed=1)


def reference(model, tok, bm: ByteModel) -> ReferenceByteModel:
    return ReferenceByteModel(model, byte_vocab(tok).tokens, [bm.start_id])


def strings(max_len: int) -> list[bytes]:
    return [b"".join(p) for n in range(1, max_len + 1) for p in itertools.product(ALPHABET, repeat=n)]


def test_trie_ranges_are_the_tokens_that_start_with_a_prefix():
    tokens = [b"ab", b"a", None, b"b", b"abc", b"", b"\xff", b"\xff\xff"]
    trie = VocabTrie.from_tokens(tokens)
    for prefix in [b"a", b"ab", b"abc", b"b", b"c", b"\xff", b"\xff\xff"]:
        lo, hi = trie.span(prefix)
        assert sorted(int(trie.ids[i]) for i in range(lo, hi)) == [i for i, t in enumerate(tokens) if t and t.startswith(prefix)]
    assert trie.exact(*trie.span(b"ab"), 2) == [0]
    assert sorted(trie.ends.tolist()) == [2, 5]
    assert trie.step(*trie.span(b"a"), 1, ord("b")) == trie.span(b"ab")


@pytest.mark.parametrize("fixture", ["bpe", "spm"])
def test_next_byte_distribution_equals_the_enumeration_and_sums_to_one(fixture, request):
    tok, model = request.getfixturevalue(fixture)
    bm = ByteModel(model, tok, EXACT)
    ref = reference(model, tok, bm)
    with torch.inference_mode():
        for prefix in [b"", *strings(3)]:
            fast = bm.next_byte(prefix)
            assert fast.shape == (257,)
            assert fast.sum().item() == pytest.approx(1.0, abs=1e-9)
            assert torch.allclose(fast, ref.next_byte(prefix), atol=2e-6), prefix


@pytest.mark.parametrize("fixture", ["bpe", "spm"])
def test_prefix_probability_equals_the_enumeration_for_all_strings_up_to_four_bytes(fixture, request):
    tok, model = request.getfixturevalue(fixture)
    bm = ByteModel(model, tok, EXACT)
    ref = reference(model, tok, bm)
    with torch.inference_mode():
        for s in strings(4):
            assert bm.log_prob(s) == pytest.approx(math.log(ref.prefix_prob(s)), abs=2e-5), s


@pytest.mark.parametrize("options", [ByteOptions(threshold=0.05, merge=False), ByteOptions(threshold=0.02),
                                     ByteOptions(threshold=0.01, max_depth=1, deep_threshold=0.2)])
def test_pruned_fast_path_is_within_its_reported_mass(bpe, options):
    tok, model = bpe
    bm = ByteModel(model, tok, options)
    ref = reference(model, tok, bm)
    dropped = 0
    words = [b"Bits p", b" the m", b"\xc3\xbcber d", b"Fuchs s", b" per by", b"tokens;", b" 0123"]
    with torch.inference_mode():
        for s in words:
            lattice = bm.run(s, final=True).lattice
            kept, _ = lattice.prefix_logmass()
            slack = lattice.dropped_mass(len(s))
            dropped += slack > 0
            assert abs(math.exp(kept[-1]) - ref.prefix_prob(s)) <= slack + 1e-7, s
            if not options.merge:
                assert math.exp(kept[-1]) <= ref.prefix_prob(s) + 1e-7  # pruning only loses mass
    assert dropped > 0  # the thresholds did prune something here


def test_canonical_tokenization_is_at_most_the_marginal(bpe):
    tok, model = bpe
    text = "Der Fuchs springt über den Hund. Bits per byte."
    with torch.inference_mode():
        for options in (ByteOptions(threshold=1e-4, merge=False), ByteOptions()):
            run = ByteModel(model, tok, options).run(text.encode(), final=True)
            lattice, chain = run.lattice, run.chain
            kept, _ = lattice.prefix_logmass()
            assert len(chain) - 1 == len(tok(text, add_special_tokens=False)["input_ids"])
            assert lattice.canonical_logprob <= kept[-1] + 1e-9
        bm = ByteModel(model, tok, EXACT)
        lattice = bm.run(b"Fuchs", final=True).lattice
    marginal = math.log(reference(model, tok, bm).prefix_prob(b"Fuchs"))
    assert lattice.canonical_logprob < marginal - 1  # "F|uchs" is not what this random model likes


def test_multibyte_character_split_across_tokens(bpe, spm):
    # "über": C3 BC 62 65 72. A prompt that ends after C3 (mid-character) still continues with BC.
    for tok, model in (bpe, spm):
        bm = ByteModel(model, tok, EXACT)
        ref = reference(model, tok, bm)
        with torch.inference_mode():
            state = bm.start(b" \xc3")
            p = state.distribution()
            assert torch.allclose(p, ref.next_byte(b" \xc3"), atol=2e-6)
            assert p[0xBC] > 0
            state.append(b"\xbc")
            assert torch.allclose(state.distribution(), ref.next_byte(b" \xc3\xbc"), atol=2e-6)
            assert state.text == b" \xc3\xbc"
    vocab = byte_vocab(bpe[0])
    assert vocab.id_of(b"\xc3\xbc") is not None and vocab.id_of(b"\xc3") is not None


def test_byte_scores_agree_with_the_token_meter_and_stay_below_it(bpe):
    from tokengraft.bytelevel import score_corpora
    from tokengraft.measure import EvalOptions, bits_per_byte
    from test_bpb import DOCS

    tok, model = bpe
    options = EvalOptions(context=16, stride=8)  # several windows per document
    token = bits_per_byte(model, tok, DOCS, options)
    (score,) = score_corpora(model, tok, DOCS, options, ByteOptions())
    assert score.token_bpb == pytest.approx(token.bpb, rel=1e-5)
    assert score.tokens == token.tokens and score.bytes == token.bytes
    assert score.bpb < score.token_bpb
    assert len(score.byte_logprobs) == score.bytes
    assert -score.byte_logprobs.sum() / math.log(2) / score.bytes == pytest.approx(score.bpb)
    assert 0 < score.merged_bits < score.token_bpb * score.bytes
    (exact,) = score_corpora(model, tok, DOCS, options, ByteOptions(merge=False))
    assert exact.merged_bits == 0 and exact.bpb < exact.token_bpb == pytest.approx(score.token_bpb)


def test_tree_attention_equals_plain_forwards(bpe):
    tok, model = bpe
    text = b"Le renard saute par-dessus le chien."
    with torch.inference_mode():
        fast = ByteModel(model, tok, ByteOptions(threshold=1e-3))
        slow = ByteModel(model, tok, ByteOptions(threshold=1e-3))
        slow.evaluator.plain = slow.evaluator.checked = True
        a = fast.run(text, final=True).lattice
        b = slow.run(text, final=True).lattice
    assert not fast.evaluator.plain
    assert np.allclose(a.prefix_logmass()[0], b.prefix_logmass()[0], atol=1e-4)


def test_ensemble_of_a_model_with_itself_equals_the_model(bpe):
    from tokengraft.bytelevel import GenerateOptions
    from tokengraft.bytelevel.sampling import generate_bytes as generate

    tok, model = bpe
    lp = np.log(np.random.default_rng(0).uniform(0.01, 1, 50))
    assert np.allclose(mix_logprobs([lp, lp], [0.3, 0.7]), lp)
    options = GenerateOptions(max_bytes=30)
    with torch.inference_mode():
        bm = ByteModel(model, tok)
        single = generate([bm], "Der Fuchs", options)
        double = generate([bm, ByteModel(model, tok)], "Der Fuchs", options, weights=[2, 1])
        p = bm.next_byte(b"Der F")
        mixed = 0.5 * p + 0.5 * ByteModel(model, tok).next_byte(b"Der F")
    assert single == double and len(single) == 30
    assert torch.allclose(mixed, p)


def test_mixture_weights():
    a = np.log(np.array([0.9, 0.9, 0.1]))
    b = np.log(np.array([0.1, 0.1, 0.9]))
    w = tune_weights([a, b])
    assert w == pytest.approx([17 / 24, 7 / 24], abs=1e-4)  # d/dw [2 log(.1 + .8w) + log(.9 - .8w)] = 0
    assert check_weights(None, 2) == [0.5, 0.5]
    assert check_weights([1, 3], 2) == [0.25, 0.75]
    with pytest.raises(TokengraftError, match="2 weights for 3 models"):
        check_weights([1, 1], 3)


def test_generate_from_a_prompt_that_ends_mid_character(spm):
    from tokengraft.bytelevel import GenerateOptions
    from tokengraft.bytelevel.sampling import generate_bytes as generate

    tok, model = spm
    with torch.inference_mode():
        bm = ByteModel(model, tok)
        greedy = generate([bm], b"ab \xc3", GenerateOptions(max_bytes=12))
        again = generate([bm], b"ab \xc3", GenerateOptions(max_bytes=12))
        sampled = generate([bm], b"ab \xc3", GenerateOptions(max_bytes=12, temperature=1.0, seed=3))
        # greedy picks the argmax of the next-byte distribution every time
        state = bm.start(b"ab \xc3")
        first = int(state.distribution().argmax())
    assert greedy == again and len(greedy) <= 12
    assert greedy[0] == first and first != END
    assert len(sampled) <= 12


def test_bad_options_are_user_errors(bpe):
    tok, model = bpe
    with pytest.raises(TokengraftError, match="threshold"):
        ByteModel(model, tok, ByteOptions(threshold=0.9))


def test_prompt_boundary_schemes_against_enumeration(bpe):
    from tokengraft.bytelevel.boundary import continuation_logprobs

    tok, model = bpe
    bm = ByteModel(model, tok, EXACT)
    prompt, target = b"r Fu", b"chs"
    vocab = byte_vocab(tok)
    with torch.inference_mode():
        got = continuation_logprobs(bm, prompt, target)
        ids = bm.canonical(prompt)
        as_is = ReferenceByteModel(model, vocab.tokens, [bm.start_id, *ids])
        assert got["as_is"] == pytest.approx(math.log(as_is.prefix_prob(target)), abs=1e-5)
        # healing: drop the last token r, the next token must start with r's bytes
        r = vocab.tokens[ids[-1]]
        healed = ReferenceByteModel(model, vocab.tokens, [bm.start_id, *ids[:-1]])
        q = healed.next_token_probs(())
        first = [v for v, t in enumerate(vocab.tokens) if t and t.startswith(r)]
        norm = q[first].sum().item()
        total = 0.0
        for v in first:
            t = vocab.tokens[v]
            if t.startswith(r + target):
                total += q[v].item()
            elif (r + target).startswith(t):
                rest = ReferenceByteModel(model, vocab.tokens, [bm.start_id, *ids[:-1], v])
                total += q[v].item() * rest.prefix_prob((r + target)[len(t):])
        assert got["healing"] == pytest.approx(math.log(total / norm), abs=1e-5)
        assert got["bytes"] == pytest.approx(bm.log_prob(target, prefix=prompt), abs=1e-9)
        full = ReferenceByteModel(model, vocab.tokens, [bm.start_id])
        assert got["bytes"] == pytest.approx(math.log(full.prefix_prob(prompt + target) / full.prefix_prob(prompt)),
                                             abs=1e-4)


def test_prompt_tail_keeps_the_text_and_nearly_the_distribution(bpe):
    tok, model = bpe
    prompt = b"Bits per byte compare language models across tokenizers. A tok"
    with torch.inference_mode():
        full = ByteModel(model, tok, ByteOptions(prompt_tail=None)).start(prompt)
        short = ByteModel(model, tok, ByteOptions(prompt_tail=16)).start(prompt)
        assert short.text == full.text == prompt
        assert len(short.lattice.text) < len(prompt)
        assert (short.distribution() - full.distribution()).abs().sum().item() < 0.2
        short.append(b"e")
        assert short.text == prompt + b"e"
