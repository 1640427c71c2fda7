"""BPB ratios with a paired bootstrap interval over documents: the function, its reference, the command."""
from __future__ import annotations

import json
import random

import pytest

from test_bpb import TRAIN_TEXT, make_llama, make_tokenizer, one_thread  # noqa: F401  (autouse fixture)
from tokengraft.cli.main import main
from tokengraft.errors import TokengraftError
from tokengraft.measure.compare import CompareOptions, compare_results, paired_ratio, paired_ratio_reference


def _bits(n: int, seed: int = 0, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """Base bits per document and a second model's, ``scale`` times the base's with per-document noise."""
    rng = random.Random(seed)
    base = [rng.uniform(50, 500) for _ in range(n)]
    return base, [b * scale * rng.uniform(0.8, 1.2) for b in base]


def test_ratio_is_the_ratio_of_sums_and_exact_ratios_have_no_spread():
    base, _ = _bits(30)
    assert paired_ratio(base, base) == pytest.approx((1.0, 1.0, 1.0))
    assert paired_ratio(base, [2 * b for b in base]) == pytest.approx((2.0, 2.0, 2.0))
    _, other = _bits(30)
    ratio, low, high = paired_ratio(base, other)
    assert ratio == pytest.approx(sum(other) / sum(base), rel=1e-12)
    assert low < ratio < high


def test_vectorised_bootstrap_agrees_with_the_plain_loop():
    base, other = _bits(40, scale=0.9)
    options = CompareOptions(samples=4000)
    fast, ref = paired_ratio(base, other, options), paired_ratio_reference(base, other, options)
    assert fast[0] == pytest.approx(ref[0], rel=1e-12)
    assert fast[1:] == pytest.approx(ref[1:], abs=0.004)  # different draws, the same distribution
    assert ref[2] - ref[1] > 0.02  # the noise is large enough for the check to mean something


def test_more_documents_narrow_the_interval_and_the_seed_fixes_it():
    few, many = _bits(10, seed=1), _bits(400, seed=1)
    width = [h - lo for _, lo, h in (paired_ratio(*few), paired_ratio(*many))]
    assert width[1] < width[0] / 3
    assert paired_ratio(*few, CompareOptions(seed=3)) == paired_ratio(*few, CompareOptions(seed=3))
    assert paired_ratio(*few, CompareOptions(seed=3)) != paired_ratio(*few, CompareOptions(seed=4))
    narrow = paired_ratio(*few, CompareOptions(level=0.5))
    wide = paired_ratio(*few, CompareOptions(level=0.99))
    assert wide[1] < narrow[1] < narrow[2] < wide[2]


def test_strata_keep_each_groups_share_of_every_draw():
    # group A: the other model equals the base; group B: twice the base. Every document alike within its group,
    # so only the mix of groups in a draw can move the ratio: resampled within groups, it never moves.
    base, other, strata = [1.0] * 10, [1.0] * 5 + [2.0] * 5, [5, 5]
    assert paired_ratio(base, other, strata=strata) == pytest.approx((1.5, 1.5, 1.5))
    assert paired_ratio_reference(base, other, strata=strata) == pytest.approx((1.5, 1.5, 1.5))
    _, low, high = paired_ratio(base, other)
    assert low < 1.4 and high > 1.6
    noisy_base, noisy = _bits(40, seed=5, scale=0.9)
    options = CompareOptions(samples=4000)
    fast = paired_ratio(noisy_base, noisy, options, strata=[10, 30])
    ref = paired_ratio_reference(noisy_base, noisy, options, strata=[10, 30])
    assert fast[1:] == pytest.approx(ref[1:], abs=0.004)
    with pytest.raises(TokengraftError, match="strata"):
        paired_ratio(base, other, strata=[5, 4])


def _result(name: str, docs: dict[str, tuple[list[str], list[int], list[float]]]) -> dict:
    return {"model": name, "corpora": [{"name": c, "document_ids": ids, "document_bytes": sizes, "document_bits": bits}
                                       for c, (ids, sizes, bits) in docs.items()]}


def test_compare_results_per_corpus_and_pooled():
    a_base, a_other = _bits(20, seed=2, scale=0.8)
    b_base, b_other = _bits(10, seed=3, scale=1.1)
    ids_a, ids_b = [f"a{i}" for i in range(20)], [f"b{i}" for i in range(10)]
    base = _result("base", {"A": (ids_a, [100] * 20, a_base), "B": (ids_b, [200] * 10, b_base)})
    other = _result("other", {"A": (ids_a, [100] * 20, a_other), "B": (ids_b, [200] * 10, b_other)})
    rows = compare_results(base, [other])
    assert [(r.corpus, r.documents, r.bytes) for r in rows] == [("A", 20, 2000), ("B", 10, 2000), ("all", 30, 4000)]
    assert rows[0].ratio == pytest.approx(sum(a_other) / sum(a_base))
    assert rows[0].bpb == pytest.approx(sum(a_other) / 2000) and rows[0].base_bpb == pytest.approx(sum(a_base) / 2000)
    assert rows[2].ratio == pytest.approx((sum(a_other) + sum(b_other)) / (sum(a_base) + sum(b_base)))
    assert rows[0].ratio < 1 < rows[1].ratio and rows[0].model == "other" and rows[0].base == "base"
    assert (rows[2].low, rows[2].high) == pytest.approx(
        paired_ratio(a_base + b_base, a_other + b_other, strata=[20, 10])[1:])  # each corpus resampled within itself


@pytest.mark.parametrize("change,needle", [
    (lambda d: d.update(A=(["x", "y"], [100, 100], [1.0, 2.0])), "different documents of A"),
    (lambda d: d.update(B=d.pop("A")), "no scores for corpus A"),
])
def test_results_on_other_documents_are_refused(change, needle):
    docs = {"A": (["a", "b"], [100, 100], [10.0, 20.0])}
    other = dict(docs)
    change(other)
    with pytest.raises(TokengraftError, match=needle):
        compare_results(_result("base", docs), [_result("other", other)])


@pytest.mark.parametrize("options,needle", [(CompareOptions(samples=0), "--samples"), (CompareOptions(level=1.0), "--level")])
def test_bad_options_are_refused(options, needle):
    docs = {"A": (["a"], [1], [1.0])}
    with pytest.raises(TokengraftError, match=needle):
        compare_results(_result("a", docs), [_result("b", docs)], options)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Two tiny models of one tokenizer, scored by ``tokengraft eval --json`` on the same two files."""
    root = tmp_path_factory.mktemp("compare")
    tokenizer = make_tokenizer(eos_token="<|endoftext|>")
    for seed in (0, 1):
        make_llama(len(tokenizer), seed=seed).save_pretrained(root / f"m{seed}")
        tokenizer.save_pretrained(root / f"m{seed}")
    for i, doc in enumerate([TRAIN_TEXT[:200], TRAIN_TEXT[200:330], TRAIN_TEXT[400:520]]):
        (root / "text").mkdir(exist_ok=True)
        (root / "text" / f"{i}.txt").write_text(doc, encoding="utf-8")
    for seed in (0, 1):
        assert main(["eval", "--model", str(root / f"m{seed}"), "--text", str(root / "text"),
                     "--context", "32", "--json", str(root / f"m{seed}.json")]) == 0
        assert main(["eval", "--model", str(root / f"m{seed}"), "--text", str(root / "text"), "--max-bytes", "250",
                     "--context", "32", "--json", str(root / f"m{seed}-short.json")]) == 0
    return root


def test_compare_command_prints_and_writes_the_ratio(scored, capsys):
    capsys.readouterr()
    out = scored / "ratios.json"
    assert main(["compare", str(scored / "m0.json"), str(scored / "m1.json"), "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:7] == ["corpus", "documents", "bytes", "model", "BPB", "base", "BPB"]
    a, b = (json.loads((scored / f"m{s}.json").read_text())["corpora"][0] for s in (0, 1))
    assert a["document_ids"] == b["document_ids"] and len(a["document_ids"]) == 3
    ratio = json.loads(out.read_text())["ratios"][0]
    assert ratio["documents"] == 3 and ratio["ratio"] == pytest.approx(b["bpb"] / a["bpb"], rel=1e-9)
    assert ratio["low"] <= ratio["ratio"] <= ratio["high"]
    assert f"{ratio['ratio']:.4f}" in lines[1]


@pytest.mark.parametrize("files,needle", [
    (["m0.json", "m1-short.json"], "different documents"),
    (["m0.json"], "at least two"),
    (["m0.json", "missing.json"], "does not exist"),
    (["m0.json", "old.json"], "no per-document bits"),
])
def test_compare_command_errors_are_one_line(scored, capsys, files, needle):
    old = json.loads((scored / "m1.json").read_text())
    for corpus in old["corpora"]:
        del corpus["document_bits"]
    (scored / "old.json").write_text(json.dumps(old))
    capsys.readouterr()
    assert main(["compare", *[str(scored / f) for f in files]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0]
