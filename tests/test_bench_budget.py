"""benchmarks/bench_budget.py: a folder already scored on the same bytes is not scored again; the table's intervals."""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

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


def fake_score(folder, evals, max_bytes, threads=0, device="cpu"):
    with open(os.environ["BENCH_BUDGET_SCORED"], "a") as log:  # the scoring runs in a worker process
        log.write(folder + ("" if device == "cpu" else f" on {device}") + "\n")
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


def test_device_and_seed_reach_every_heal_command_and_the_device_every_score(tmp_path, monkeypatch):
    commands = []

    class FakeRun:
        def __init__(self, cmd, **kwargs):
            commands.append(cmd)
            self.returncode = 0

        def wait(self):
            return 0

    monkeypatch.setattr(bb.subprocess, "Popen", FakeRun)
    bb.stage_train(bb.PAIRS["fr"], tmp_path, ["default", "fair"], [0, 60], False, "cuda", seed=3)
    assert [c[c.index("--model") + 1] for c in commands] == [str(tmp_path / "transplant-graft"), "smollm2-135m"]
    assert [c[c.index("--device") + 1] for c in commands] == ["cuda", "cuda"]  # the 0-s budget trains nothing
    assert [c[c.index("--seed") + 1] for c in commands] == ["3", "3"]
    log = tmp_path / "scored.txt"
    monkeypatch.setenv("BENCH_BUDGET_SCORED", str(log))
    monkeypatch.setattr(bb, "score_folder", fake_score)
    bb.stage_score(bb.PAIRS["fr"], tmp_path, ["fair"], [0], 1000, 1, device="cuda")
    assert log.read_text().splitlines() == ["smollm2-135m on cuda"]
    assert json.loads((tmp_path / "scores.json").read_text())["original"]["device"] == "cuda"


def _doc_scores(bits: list[float], tokens_per_byte: float = 0.3) -> dict:
    return {e: {"bpb": sum(bits) / 1000, "tokens_per_byte": tokens_per_byte, "bytes": 1000,
                "document_ids": [f"d{i}" for i in range(len(bits))], "document_bits": bits} for e in bb.PAIRS["fr"].evals}


def test_table_gives_each_ratio_its_interval_over_documents_and_divides_by_any_key(tmp_path, capsys):
    from tokengraft.measure.compare import paired_ratio

    original, healed, fair = [100.0, 200.0, 300.0, 400.0], [90.0, 150.0, 280.0, 330.0], [80.0, 160.0, 250.0, 320.0]
    scores = {"original": {"scores": _doc_scores(original)},
              "default-540": {"scores": _doc_scores(healed, 0.2), "steps": 129},
              "fair-540": {"scores": _doc_scores(fair), "steps": 121},
              "emb-540": {"scores": {e: {"bpb": 0.9, "tokens_per_byte": 0.2} for e in bb.PAIRS["fr"].evals}}}
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    bb.stage_table(bb.PAIRS["fr"], tmp_path, ["default", "emb"], [540], None)
    out = capsys.readouterr().out
    ratio, low, high = paired_ratio(original, healed)
    assert low < ratio < high
    assert f"| default | 540 | {ratio:.3f} ({low:.3f}-{high:.3f}) | 0.2000 | 129 |" in out
    assert f"| emb | 540 | {0.9 / 1.0:.3f} | 0.2000 | 0 |" in out  # an older record without per-document bits: no interval
    bb.stage_table(bb.PAIRS["fr"], tmp_path, ["default"], [540], None, against="fair-540")
    ratio, low, high = paired_ratio(fair, healed)
    assert f"| default | 540 | {ratio:.3f} ({low:.3f}-{high:.3f}) |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--against fair-60: no such key"):
        bb.stage_table(bb.PAIRS["fr"], tmp_path, ["default"], [540], None, against="fair-60")
