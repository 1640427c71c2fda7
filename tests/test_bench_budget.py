"""benchmarks/bench_budget.py: a folder already scored on the same bytes is not scored again."""
import importlib.util
import json
import os
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("bench_budget", Path(__file__).parent.parent / "benchmarks" / "bench_budget.py")
bb = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bb  # its dataclasses look their module up
spec.loader.exec_module(bb)
DE = {e: {"bpb": 1.5} for e in bb.PAIRS["de"].evals}


def test_score_reuses_the_record_of_the_same_folder_on_the_same_bytes(tmp_path):
    record = {"folder": str(tmp_path / "transplant-graft"), "max_bytes": 1000, "scores": DE}
    (tmp_path / "scores.json").write_text(json.dumps({"default-0": record}))
    bb.stage_score(bb.PAIRS["de"], tmp_path, ["emb", "alm", "emb-fvt"], [0], 1000, 1, only={"emb-0", "alm-0"})
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["emb-0"] == record and scores["alm-0"] == record  # graft's transplant, scored once
    assert set(scores) == {"default-0", "emb-0", "alm-0"}  # FVT's transplant is another folder: nothing to reuse


def test_score_reuses_a_linked_run_of_another_pair_on_the_same_text_and_nothing_else(tmp_path):
    fr, sb = tmp_path / "fr", tmp_path / "sb"
    (fr / "fair-60").mkdir(parents=True)
    (fr / "fair-60" / "heal.json").write_text("{}")
    fair = {"folder": str(fr / "fair-60"), "max_bytes": 1000, "scores": {"libreoffice:fr:heldout": {"bpb": 0.9}},
            "steps": 14}
    original = {"folder": "smollm2-135m", "max_bytes": 1000, "scores": {"libreoffice:fr:heldout": {"bpb": 1.0}}}
    (fr / "scores.json").write_text(json.dumps({"fair-60": fair, "original": original}))
    sb.mkdir()
    (sb / "fair-60").symlink_to(fr / "fair-60")
    (sb / "scores.json").write_text(json.dumps({"original": original}))
    bb.stage_score(bb.PAIRS["superbpe"], sb, ["fair"], [60], 1000, 1)
    scores = json.loads((sb / "scores.json").read_text())
    assert scores["fair-60"] == {**fair, "folder": str(sb / "fair-60")}  # the French run's score, under its link
    (sb / "scores.json").write_text(json.dumps({"original": original}))
    # the German pair's texts are others: the French record does not serve it (only=set(): score nothing)
    bb.stage_score(bb.PAIRS["de"], sb, ["fair"], [60], 1000, 1, only=set())
    assert "fair-60" not in json.loads((sb / "scores.json").read_text())


def fake_score(folder, evals, max_bytes, threads=0):
    with open(os.environ["BENCH_BUDGET_SCORED"], "a") as log:  # the scoring runs in a worker process
        log.write(folder + "\n")
    return {e: {"bpb": 1.25, "tokens_per_byte": 0.3, "bytes": max_bytes} for e in evals}


def test_two_keys_of_one_folder_in_one_run_are_scored_once(tmp_path, monkeypatch):
    log = tmp_path / "scored.txt"
    monkeypatch.setenv("BENCH_BUDGET_SCORED", str(log))
    monkeypatch.setattr(bb, "score_folder", fake_score)
    bb.stage_score(bb.PAIRS["fr"], tmp_path, ["fair"], [0], 1000, 1)  # "fair-0" is the original itself
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert log.read_text().splitlines() == ["smollm2-135m"]
    assert set(scores) == {"original", "fair-0"}
    assert scores["fair-0"]["scores"] == scores["original"]["scores"] == {
        "libreoffice:fr:heldout": {"bpb": 1.25, "tokens_per_byte": 0.3, "bytes": 1000}}
