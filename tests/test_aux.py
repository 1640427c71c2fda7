"""Auxiliary-vector providers: co-occurrence, PPMI, SVD, static embeddings, MiniLM strings, caching."""
from __future__ import annotations

import math
import random

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary import AuxRequest, BilingualOptions, StaticOptions, StringEmbedOptions, provide_aux, static_token_embeddings
from tokengraft.transplant.auxiliary.static import cooccurrence, encode_texts, ppmi, randomized_svd, static_embeddings_from_ids
from tokengraft.transplant.auxiliary.strings import embed_strings, load_embedder, string_embeddings, token_strings
from tokengraft.transplant.methods.base import InitProblem
from tokengraft.transplant.methods.focus import FocusOptions, focus, has_vector
from transplant_fixtures import run_contract

SMALL = StaticOptions(dim=8, min_count=2, window=2)


def test_cooccurrence_hand_counted_and_never_crosses_documents():
    keep = torch.tensor([0, 1, 2, -1])  # id 3 dropped but keeps its position
    counts = cooccurrence([[0, 1, 2], [2, 3, 0]], keep, window=2).to_dense()
    expected = torch.zeros(3, 3, dtype=torch.float64)
    for a, b, w in [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 0.5), (2, 0, 0.5)]:  # (2, 0) at distance 2 in doc 2
        expected[a, b] += w
        expected[b, a] += w
    torch.testing.assert_close(counts, expected)


def test_ppmi_hand_computed():
    counts = torch.tensor([[0.0, 2.0], [2.0, 4.0]], dtype=torch.float64).to_sparse()
    out = ppmi(counts, smoothing=1.0).to_dense()
    # total 8, row/col sums 2 and 6: pmi(0, 1) = log(2/8 / (2/8 * 6/8)) = log(4/3) > 0; pmi(1, 1) = log(4/8 / (6/8)^2) < 0
    torch.testing.assert_close(out, torch.tensor([[0.0, math.log(4 / 3)], [math.log(4 / 3), 0.0]]))


def test_randomized_svd_matches_exact_singular_values():
    gen = torch.Generator().manual_seed(0)
    dense = torch.randn(60, 5, generator=gen) @ torch.randn(5, 50, generator=gen)  # rank 5
    u, s = randomized_svd(dense.to_sparse(), 5, StaticOptions())
    torch.testing.assert_close(s, torch.linalg.svdvals(dense)[:5], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(u.T @ u, torch.eye(5), atol=1e-5, rtol=0)


def grammar_texts(n: int = 400, seed: int = 0) -> list[str]:
    """Sentences in which cat/dog and red/blue are interchangeable: their vectors should be close."""
    rng = random.Random(seed)
    return [f"the {rng.choice(['cat', 'dog'])} sees a {rng.choice(['red', 'blue'])} ball and "
            f"{rng.choice(['runs', 'jumps'])} home {rng.randint(1, 9)}" for _ in range(n)]


def test_static_embeddings_structure_min_count_and_determinism():
    # 1 and 5 (3 and 6) share their contexts; 7 never has a neighbour; 8 is below min_count
    ids = [[0, 1, 2, 3, 4] * 3, [0, 5, 2, 6, 4] * 3, [7]] * 4 + [[0, 8, 2]]
    a = static_embeddings_from_ids(ids, 9, StaticOptions(dim=4, min_count=2, window=1))
    b = static_embeddings_from_ids(ids, 9, StaticOptions(dim=4, min_count=2, window=1))
    assert a.shape == (9, 4) and torch.equal(a, b)
    assert has_vector(a).tolist() == [True] * 7 + [False, False]
    unit = torch.nn.functional.normalize(a, dim=1)
    assert unit[1] @ unit[5] > 0.99 and unit[3] @ unit[6] > 0.99
    # ids beyond the vocabulary size (a tokenizer with extra added tokens) are ignored, not an IndexError
    assert static_embeddings_from_ids([[0, 1, 2, 9] * 5], 3, StaticOptions(dim=2, min_count=1)).shape == (3, 2)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(grammar_texts(), trainer)
    return tok


def test_static_token_embeddings_from_a_tokenizer_are_cached(tiny_tokenizer, tmp_path, monkeypatch):
    texts = grammar_texts()
    vectors = static_token_embeddings(tiny_tokenizer, texts, SMALL, cache=str(tmp_path))
    assert vectors.shape == (tiny_tokenizer.get_vocab_size(), 8)
    unit = torch.nn.functional.normalize(vectors, dim=1)
    cat, dog, ball = (tiny_tokenizer.token_to_id(t) for t in ("Ġcat", "Ġdog", "Ġball"))
    assert unit[cat] @ unit[dog] > unit[cat] @ unit[ball]
    assert len(list(tmp_path.glob("static-*.safetensors"))) == 1
    monkeypatch.setattr("tokengraft.transplant.auxiliary.providers.static_embeddings_from_ids", None)  # must not retrain
    assert torch.equal(static_token_embeddings(tiny_tokenizer, texts, SMALL, cache=str(tmp_path)), vectors)
    assert encode_texts(tiny_tokenizer, ["the cat"]) == [tiny_tokenizer.encode("the cat").ids]


def test_focus_end_to_end_on_provider_vectors(tiny_tokenizer, tmp_path):
    """Old vocabulary = the tiny tokenizer minus a few tokens: those get FOCUS rows, all finite."""
    vocab = tiny_tokenizer.get_vocab_size()
    new_bytes = [tiny_tokenizer.id_to_token(i).encode() for i in range(vocab)]
    request = AuxRequest(old_bytes=new_bytes, new_bytes=new_bytes, new_tokenizer=tiny_tokenizer,
                         target_texts=grammar_texts(), static=SMALL, cache=str(tmp_path))
    aux = provide_aux("static", request)
    dropped = [tiny_tokenizer.token_to_id(t) for t in ("Ġcat", "Ġred")]
    copied = torch.arange(vocab)
    copied[dropped] = -1
    old = torch.randn(vocab, 6, generator=torch.Generator().manual_seed(0))
    problem = InitProblem(old=old, which="input", new_bytes=new_bytes, old_bytes=new_bytes, copied=copied,
                          pieces=[[i] for i in range(vocab)], aux_new=aux.new)
    result = run_contract("focus", problem, FocusOptions())
    assert [result.source[i] for i in dropped] == ["focus", "focus"]
    assert torch.isfinite(result.rows).all() and torch.equal(result.rows[copied >= 0], old[copied[copied >= 0]])


def test_provide_aux_errors():
    with pytest.raises(TokengraftError, match="no auxiliary provider named 'fvt'; known: bilingual, continuation"):
        provide_aux("fvt", AuxRequest(old_bytes=[], new_bytes=[]))
    with pytest.raises(TokengraftError, match="provider static needs a target-language --corpus"):
        provide_aux("static", AuxRequest(old_bytes=[], new_bytes=[], new_tokenizer=object()))
    with pytest.raises(TokengraftError, match="unknown embedder"):
        string_embeddings("no-such-embedder", ["a"], StringEmbedOptions(cache=""))


def test_token_strings():
    assert token_strings([b" house", b"\xc3", None, b"caf\xc3\xa9", b"\n"]) == ["house", "", "", "café", ""]


def test_wechsel_provider_aligns_identical_tokens(tiny_tokenizer, tmp_path):
    """Same tokenizer on both sides, source text = target text: identical seeds, aligned space."""
    vocab = tiny_tokenizer.get_vocab_size()
    byte_list = [tiny_tokenizer.id_to_token(i).encode() for i in range(vocab)]
    request = AuxRequest(old_bytes=byte_list, new_bytes=byte_list, old_tokenizer=tiny_tokenizer,
                         new_tokenizer=tiny_tokenizer, target_texts=grammar_texts(), source_texts=grammar_texts(),
                         static=SMALL, cache=str(tmp_path), bilingual=BilingualOptions(space="tokens", seed_pairs="identical"))
    aux = provide_aux("bilingual", request)
    assert aux.old.shape == aux.new.shape == (vocab, 8)
    ok = has_vector(aux.new)
    torch.testing.assert_close(aux.old[ok], aux.new[ok], atol=1e-4, rtol=0)  # rotation = identity
    assert aux.extras["dictionary_pairs"] == 0


def test_minilm_string_embeddings_real_model(tmp_path, monkeypatch):
    """Real all-MiniLM-L6-v2 on a dozen strings: unit vectors, sensible similarities, cached."""
    strings = ["house", "home", "carburetor", "", "dog", "puppy", "Fenster", "window", "1", "2"]
    options = StringEmbedOptions(cache=str(tmp_path), batch_size=4)
    model, tokenizer = load_embedder("minilm-l6")
    vectors = string_embeddings("minilm-l6", strings, options, loader=lambda: (model, tokenizer))
    assert vectors.shape == (10, 384)
    norms = vectors.norm(dim=1)
    torch.testing.assert_close(norms[[0, 1, 2, 4]], torch.ones(4))
    assert norms[3] == 0
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2 and sims[4, 5] > sims[4, 2] + 0.2
    # batching and padding do not change a vector: one string alone gives the same row
    alone = embed_strings(model, tokenizer, ["puppy"], StringEmbedOptions(batch_size=1))
    torch.testing.assert_close(alone[0], vectors[5], atol=1e-5, rtol=0)
    assert torch.equal(string_embeddings("minilm-l6", strings, options, loader=lambda: None), vectors)  # cache hit
    # the provider embeds both vocabularies with one model load
    calls = []
    monkeypatch.setattr("tokengraft.transplant.auxiliary.strings.load_embedder", lambda *a: calls.append(a) or (model, tokenizer))
    request = AuxRequest(old_bytes=[b" dog", b"s", None], new_bytes=[b" puppy", b"\xc3"], cache=str(tmp_path))
    aux = provide_aux("strings", request)
    assert len(calls) == 1 and aux.new.shape == (2, 384) and aux.old.shape == (3, 384)
    torch.testing.assert_close(aux.new[0], vectors[5], atol=1e-5, rtol=0)
    assert has_vector(aux.new).tolist() == [True, False] and has_vector(aux.old).tolist() == [True, True, False]



def test_minilm_in_bfloat16_stays_close_and_caches_apart(tmp_path):
    strings = ["house", "home", "Fenster", "fichiers", "données", "1"]
    model, tokenizer = load_embedder("minilm-l6")
    exact = string_embeddings("minilm-l6", strings, StringEmbedOptions(cache=str(tmp_path)), loader=lambda: (model, tokenizer))
    fast = string_embeddings("minilm-l6", strings, StringEmbedOptions(cache=str(tmp_path), dtype="bfloat16"),
                             loader=lambda: (model, tokenizer))
    cos = (exact * fast).sum(dim=1)
    assert float(cos.min()) > 0.999 and not torch.equal(exact, fast)
    assert next(model.parameters()).dtype == torch.float32  # bfloat16 ran on a copy: the caller's model is untouched
    assert len(list(tmp_path.iterdir())) == 2  # a bfloat16 result never answers a float32 request
