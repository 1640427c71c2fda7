"""Data-mixture inference: the LP, the incremental pair counts, the pre-tokenizer, bad input."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.mixture import MixtureOptions, infer_mixture, sample_documents
from tokengraft.tokenizer.mixture_counts import PairCounts, count_pairs, recount_pairs
from tokengraft.tokenizer.mixture_lp import dyadic_cover, range_argmin, solve_mixture
from tokengraft.tokenizer.mixture_merges import dedupe_merges, merge_list, symbol_words, word_counts
from tokenizer_fixtures import corpus_docs, sentencepiece_base


def _pair_counts(initial: dict[int, int], deltas: list[dict[int, int]], merge_counts: list[int],
                 n_bytes: int = 1_000_000) -> PairCounts:
    keys = np.array(sorted(initial), dtype=np.int64)
    ptr = np.cumsum([0] + [len(d) for d in deltas])
    return PairCounts(initial_keys=keys, initial_counts=np.array([initial[k] for k in keys], dtype=np.int64),
                      step_ptr=ptr.astype(np.int64),
                      delta_keys=np.array([k for d in deltas for k in d], dtype=np.int64),
                      delta_values=np.array([v for d in deltas for v in d.values()], dtype=np.int64),
                      merge_counts=np.array(merge_counts, dtype=np.int64), base=1000, n_bytes=n_bytes)


def _planted(alpha: np.ndarray, steps: int, pairs: int, seed: int) -> tuple[list[PairCounts], np.ndarray]:
    """Random counts per category; at every step the merge is the pair most frequent under
    ``alpha`` (then removed), so ``alpha`` explains every merge with zero slack."""
    rng = np.random.default_rng(seed)
    n = len(alpha)
    counts = rng.integers(0, 1000, size=(n, pairs)) * rng.random(pairs) ** 3
    counts = counts.astype(np.int64)
    alive = np.ones(pairs, dtype=bool)
    initial = [{k + 1: int(c) for k, c in enumerate(counts[i]) if c} for i in range(n)]
    deltas: list[list[dict[int, int]]] = [[] for _ in range(n)]
    merges, merge_counts = [], [[] for _ in range(n)]
    for _ in range(steps):
        mixed = np.where(alive, alpha @ counts, -1.0)
        m = int(np.argmax(mixed))
        merges.append(m + 1)
        alive[m] = False
        for i in range(n):
            merge_counts[i].append(int(counts[i, m]))
            change = {m + 1: -int(counts[i, m])} if counts[i, m] else {}
            bump = int(rng.integers(0, 40, size=1)[0])  # a merge also changes another pair's count
            other = int(rng.integers(0, pairs))
            if alive[other] and bump:
                counts[i, other] += bump
                change[other + 1] = bump
            counts[i, m] = 0
            deltas[i].append(change)
    return [_pair_counts(initial[i], deltas[i], merge_counts[i]) for i in range(n)], np.array(merges, dtype=np.int64)


def test_lp_recovers_a_planted_mixture_exactly():
    # Pairs built to tie under alpha* in opposite directions pin alpha* as the only zero-slack mixture.
    alpha = np.array([0.5, 0.3, 0.2])
    directions = [(3, -5, 0), (-3, 5, 0), (2, 0, -5), (-2, 0, 5)]
    base = np.array([10, 10, 10])
    per_cat = [dict() for _ in range(3)]
    deltas: list[list[dict[int, int]]] = [[] for _ in range(3)]
    mcounts: list[list[int]] = [[] for _ in range(3)]
    for t, d in enumerate(directions):
        u = base + np.array(d)                      # the merge of step t: u @ alpha* == 10
        for i in range(3):
            per_cat[i][t + 1] = int(u[i])          # merge pair of step t
            per_cat[i][100 + t] = int(base[i])     # its tied competitor, never merged
            per_cat[i][200 + t] = 3                # a rare pair
    for t in range(len(directions)):
        for i in range(3):
            mcounts[i].append(per_cat[i][t + 1])
            deltas[i].append({t + 1: -per_cat[i][t + 1]})
    counts = [_pair_counts(per_cat[i], deltas[i], mcounts[i]) for i in range(3)]
    sol = solve_mixture(counts, np.arange(1, len(directions) + 1, dtype=np.int64))
    assert sol.converged
    assert sol.total_slack == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(sol.proportions, alpha, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_lp_finds_a_zero_slack_mixture_and_every_constraint_holds(seed):
    alpha = np.random.default_rng(seed + 10).dirichlet(np.ones(4))
    counts, merges = _planted(alpha, steps=150, pairs=400, seed=seed)
    sol = solve_mixture(counts, merges)
    assert sol.converged and sol.total_slack == pytest.approx(0.0, abs=1e-3)
    # brute force: under the returned mixture, every merge is the most frequent pair of its step
    state = [c.at_step(0) for c in counts]
    for t, m in enumerate(merges.tolist()):
        state = [c.at_step(t) for c in counts]
        mixed: dict[int, float] = {}
        for a, s in zip(sol.proportions, state):
            for k, v in s.items():
                mixed[k] = mixed.get(k, 0.0) + a * v
        assert mixed.get(m, 0.0) >= max(mixed.values()) - 1e-4
    assert np.abs(sol.proportions - alpha).max() < 0.1


def test_range_argmin_and_dyadic_cover_match_brute_force():
    rng = np.random.default_rng(0)
    theta = rng.random(37)
    start = rng.integers(0, 36, 200)
    stop = start + 1 + rng.integers(0, 37 - start)
    got = range_argmin(theta, start, stop)
    assert [int(g) for g in got] == [int(s + np.argmin(theta[s:e])) for s, e in zip(start, stop)]
    owner, node = dyadic_cover(start, stop, 64)
    for j, (s, e) in enumerate(zip(start, stop)):
        covered = []
        for k in node[owner == j].tolist():
            lo, hi = k, k + 1
            while lo < 64:
                lo, hi = 2 * lo, 2 * hi
            covered += range(lo - 64, hi - 64)
        assert sorted(covered) == list(range(s, e))


def _tiny_byte_level(texts: list[str], merges: int = 200) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=257 + merges, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def _words(tok: Tokenizer, texts: list[str]):
    ml = merge_list(tok)
    words, weights = symbol_words(word_counts(texts, ml), ml.symbols)
    return ml, words, weights, 1 + tok.get_vocab_size()


@pytest.mark.parametrize("record_from", [0, 40])
def test_incremental_counts_equal_a_plain_recount(record_from):
    texts = corpus_docs(20, seed=3)
    ml, words, weights, base = _words(_tiny_byte_level(texts, 120), texts)
    fast = count_pairs(words, weights, ml.merges, ml.results, base, n_bytes=1, record_from=record_from)
    slow = recount_pairs(words, weights, ml.merges, ml.results, base)
    assert fast.num_steps == len(ml) - record_from
    for t in range(fast.num_steps):
        expect = {k: v for k, v in slow[record_from + t].items() if v}
        assert fast.at_step(t) == expect
        a, b = ml.merges[record_from + t]
        assert fast.merge_counts[t] == expect.get(a * base + b, 0)


def test_counts_on_the_training_text_reproduce_the_trainer():
    # HF's trainer chose each merge as the most frequent pair of pre-tokens: our counts,
    # with the tokenizer's own pre-tokenizer, must agree at every step.
    texts = corpus_docs(40, seed=5)
    ml, words, weights, base = _words(_tiny_byte_level(texts, 150), texts)
    counts = count_pairs(words, weights, ml.merges, ml.results, base, n_bytes=1)
    for t in range(counts.num_steps):
        assert counts.merge_counts[t] == max(counts.at_step(t).values())
    sol = solve_mixture([counts, counts], np.array([a * base + b for a, b in ml.merges]))
    assert sol.total_slack == pytest.approx(0.0, abs=1e-6)


def test_the_pre_tokenizer_is_respected():
    byte_level = merge_list(_tiny_byte_level(corpus_docs(5), 30))
    assert word_counts(["hello world, 2024!"], byte_level) == {"hello": 1, "Ġworld": 1, ",": 1, "Ġ2024": 1, "!": 1}
    spm = merge_list(sentencepiece_base())
    assert spm.kind == "sentencepiece"
    # ▁ starts a word, punctuation runs stand apart, newlines never merge
    assert word_counts(["ab ab, ab\nab"], spm) == {"ab": 2, "▁ab": 2, ",": 1}
    # so no counted pair crosses a word: "▁" only ever starts one
    words, _ = symbol_words(word_counts(["ab ab,ab ab"], spm), spm.symbols)
    assert words and not any(spm.symbols["▁"] in w[1:] for w in words)


def test_sentencepiece_merge_lists_keep_one_merge_per_piece_and_drop_whitespace_runs():
    assert dedupe_merges([("▁", "t"), ("▁t", "h"), ("▁", "th"), ("t", "h")]) == [("▁", "t"), ("▁t", "h"), ("t", "h")]
    data = json.loads(sentencepiece_base().backend_tokenizer.to_str())
    vocab = data["model"]["vocab"]
    for piece in ("▁▁", "▁b"):
        vocab[piece] = len(vocab)
    data["model"]["merges"] += [["▁", "▁"], ["▁", "b"]]
    ml = merge_list(Tokenizer.from_str(json.dumps(data)))
    results = [next(s for s, i in vocab.items() if i == r) for r in ml.results]
    assert results == ["▁a", "ab", "▁b"]  # "▁▁" is whitespace only


def test_sample_documents_is_seeded_and_exact():
    docs = ["é" * 50, "abc" * 40, "x" * 300]
    sample, n = sample_documents(docs, 151, seed=1)
    assert n == sum(len(d.encode()) for d in sample) and 148 <= n <= 151
    assert sample_documents(docs, 151, seed=1) == (sample, n)
    assert sample_documents(docs, None, seed=0)[1] == 100 + 120 + 300


def test_known_mixture_of_two_languages_is_recovered():
    rng = random.Random(0)
    fr = corpus_docs(200, seed=7)
    en = [" ".join(rng.choice(["the", "dialog", "box", "of", "this", "macro", "inserts", "text", "cell", "opens"])
                   for _ in range(40)) for _ in range(200)]
    train = fr[:100] * 3 + en[:100]  # 3:1 documents; shares measured in bytes below
    share_fr = sum(len(t.encode()) for t in fr[:100] * 3) / sum(len(t.encode()) for t in train)
    tok = _tiny_byte_level(train, 150)
    result = infer_mixture(tok, {"fr": fr[100:], "en": en[100:]}, MixtureOptions(merges=150, show_progress=False))
    assert result.proportions["fr"] == pytest.approx(share_fr, abs=0.1)
    assert sum(result.proportions.values()) == pytest.approx(1.0)


# --- bad input ---------------------------------------------------------------------------

def test_unigram_and_wordpiece_are_refused():
    uni = Tokenizer(models.Unigram([("a", -1.0), ("b", -2.0), ("<unk>", -5.0)], 2))
    with pytest.raises(TokengraftError, match="Unigram model.*not a list of merges"):
        merge_list(uni)
    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    with pytest.raises(TokengraftError, match="WordPiece model"):
        merge_list(wp)


def test_a_tokenizer_without_merges_is_refused():
    tok = Tokenizer(models.BPE({"a": 0, "b": 1}, []))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    with pytest.raises(TokengraftError, match="has no merges"):
        infer_mixture(tok, {"x": ["ab ab"]}, MixtureOptions(show_progress=False))


def test_an_empty_category_is_refused():
    tok = _tiny_byte_level(corpus_docs(5), 30)
    with pytest.raises(TokengraftError, match="category 'de' is empty"):
        infer_mixture(tok, {"fr": corpus_docs(3), "de": ["", "  \n"]}, MixtureOptions(show_progress=False))
    with pytest.raises(TokengraftError, match="no categories"):
        infer_mixture(tok, {}, MixtureOptions(show_progress=False))
    with pytest.raises(TokengraftError, match="merges must be at least 1"):
        infer_mixture(tok, {"fr": corpus_docs(3)}, MixtureOptions(merges=0))


def _cli(*argv: str) -> int:
    from tokengraft.cli.main import main

    return main(list(argv))


def test_cli_reports_a_missing_corpus_and_bad_categories(tmp_path, capsys):
    assert _cli("tokenizer", "mixture", "--tokenizer", "gpt2", "--category", f"x={tmp_path}/nope.txt") == 2
    assert "does not exist" in capsys.readouterr().err
    assert _cli("tokenizer", "mixture", "--tokenizer", "gpt2", "--category", "x=", "--merges", "5") == 2
    assert "NAME=CORPUS" in capsys.readouterr().err
    assert _cli("tokenizer", "mixture", "--tokenizer", "gpt2", "--category", "a=x", "--category", "a=y") == 2
    assert "given twice" in capsys.readouterr().err


def test_cli_writes_table_json_and_plot(tmp_path, capsys):
    folder = tmp_path / "tok"
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=_tiny_byte_level(corpus_docs(30), 80)).save_pretrained(str(folder))
    for name, seed in (("a", 1), ("b", 2)):
        (tmp_path / f"{name}.txt").write_text("\n".join(corpus_docs(10, seed=seed)))
    code = _cli("tokenizer", "mixture", "--tokenizer", str(folder), "--category", f"a={tmp_path}/a.txt",
                "--category", f"b={tmp_path}/b.txt", "--merges", "80", "--json", str(tmp_path / "m.json"),
                "--plot", str(tmp_path / "m.png"), "--no-progress")
    assert code == 0
    out = capsys.readouterr().out
    assert "share" in out and "merges constrained" in out
    shares = json.loads((tmp_path / "m.json").read_text())
    assert set(shares) == {"a", "b"} and sum(shares.values()) == pytest.approx(1.0)
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_real_gpt2_reads_mostly_english_not_code():
    # real-model smoke test: GPT-2 was trained on English web text
    from tokengraft.assets import load_corpus

    cats = {"en": load_corpus("libreoffice:en:heldout").texts(), "code": load_corpus("python-stdlib:heldout").texts()}
    result = infer_mixture("gpt2", cats, MixtureOptions(merges=2000, sample_bytes=100_000, show_progress=False))
    assert result.merges == 2000 and result.sample_bytes == {"en": 100_000, "code": 100_000}
    assert result.proportions["en"] > 0.6
