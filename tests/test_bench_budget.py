"""benchmarks/bench_budget.py: a zero-shot transplant several methods start from is scored once."""
import importlib.util
import json
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("bench_budget", Path(__file__).parent.parent / "benchmarks" / "bench_budget.py")
bb = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bb  # its dataclasses look their module up
spec.loader.exec_module(bb)


def test_score_reuses_the_record_of_the_same_folder_on_the_same_bytes(tmp_path):
    record = {"folder": str(tmp_path / "transplant-graft"), "max_bytes": 1000, "scores": {"x": {"bpb": 1.5}}}
    (tmp_path / "scores.json").write_text(json.dumps({"default-0": record}))
    bb.stage_score(bb.PAIRS["de"], tmp_path, ["emb", "alm", "emb-fvt"], [0], 1000, 1, only={"emb-0", "alm-0"})
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["emb-0"] == record and scores["alm-0"] == record  # graft's transplant, scored once
    assert set(scores) == {"default-0", "emb-0", "alm-0"}  # FVT's transplant is another folder: nothing to reuse
