"""``tokengraft hypernet train`` and ``tokengraft eval --dynamic`` on tiny self-made models;
dynamic tokenization's batch-level BPE and its scoring."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from hypernet_fixtures import hn_world  # noqa: F401  (fixture)
from test_heal_helpers import one_thread  # noqa: F401  (fixture)

from tokengraft.cli.main import main
from tokengraft.hypernet.dynamic import batch_bpe, unit_pieces

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--hidden", "32", "--heads", "2", "--ffn", "64", "--recon-tokens", "64", "--recon-k-min", "0",
        "--head-tokens", "512", "--head-chunk-len", "64", "--head-chunks", "4", "--negatives", "32",
        "--min-vocab", "300", "--max-vocab", "600", "--save-every", "0", "--no-progress"]


def test_batch_bpe_merges_the_most_frequent_pairs_first():
    words = {(5, 6, 7, 8): 4, (5, 6): 3, (9, 5, 6, 7): 1, (7, 8): 1}
    merges, seg = batch_bpe(words, budget=10, min_count=2, first_new=100)
    # (5, 6): 8; then (5 6, 7) and (7, 8) both 5, the tie to the lower ids; then (5 6, 7 8): 4
    assert merges == [(5, 6), (7, 8), (100, 101)]
    assert seg[(5, 6, 7, 8)] == [102] and seg[(9, 5, 6, 7)] == [9, 100, 7] and seg[(7, 8)] == [101]
    assert unit_pieces(merges, 100) == [(5, 6), (7, 8), (5, 6, 7, 8)]
    assert batch_bpe(words, budget=1, first_new=100)[0] == [(5, 6)]
    assert batch_bpe(words, budget=0, first_new=100) == ([], {w: list(w) for w in words})


def test_hypernet_train_cli_and_dynamic_eval(hn_world, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "hn"
    code = main(["hypernet", "train", "--model", str(hn_world["base"]), "--corpus", str(hn_world["corpus"]),
                 "--objectives", "recon", "head", "--steps", "3", "--out", str(out), *TINY])
    assert code == 0 and "3 steps" in capsys.readouterr().out
    record = json.loads((out / "hypernet.json").read_text())
    assert record["options"]["objectives"] == ["recon", "head"] and record["options"]["hidden"] == 32
    assert main(["hypernet", "train", "--model", str(hn_world["base"]), "--objectives", "lm", "--out",
                 str(tmp_path / "x")]) == 2  # lm reads text: no --corpus is a one-line error
    capsys.readouterr()
    transplant = ["transplant", "--model", str(hn_world["base"]), "--tokenizer", str(hn_world["newtok"]),
                  "--method", "hypernet"]
    assert main([*transplant, "--hypernet", str(out), "--out", str(tmp_path / "t")]) == 0
    saved = json.loads((tmp_path / "t" / "transplant.json").read_text())
    assert saved["options"]["hypernet"] == str(out) and saved["options"]["method"] == "hypernet"
    assert main([*transplant, "--out", str(tmp_path / "t2")]) == 2  # no --hypernet: a one-line error
    assert "needs a trained hypernetwork" in capsys.readouterr().err and not (tmp_path / "t2").exists()
    report = tmp_path / "dyn.json"
    code = main(["eval", "--model", str(hn_world["base"]), "--text", str(hn_world["corpus"]), "--max-bytes", "4000",
                 "--dynamic", "--hypernet", str(out), "--merges", "0", "5", "40", "--segment-bytes", "400",
                 "--json", str(report)])
    assert code == 0 and "length reduction" in capsys.readouterr().out
    rows = next(iter(json.loads(report.read_text())["results"].values()))
    assert [r["merges"] for r in rows] == [0, 5, 40]
    assert rows[0]["reduction"] == 0 and 0 < rows[1]["reduction"] < rows[2]["reduction"] < 1
    assert len({r["bytes"] for r in rows}) == 1  # every budget scores exactly the same bytes
    assert main(["eval", "--model", str(hn_world["other"]), "--text", str(hn_world["corpus"]), "--max-bytes", "500",
                 "--dynamic", "--hypernet", str(out)]) == 2  # another base model: refused


def test_apply_timing_script_reports_each_repeat_and_a_load_only_run(hn_world, tmp_path):  # noqa: F811
    from test_hypernet import untrained_folder

    folder = untrained_folder(hn_world, tmp_path / "hn")
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "time_hypernet.py")
    common = [sys.executable, script, "--model", str(hn_world["base"]), "--tokenizer", str(hn_world["newtok"]),
              "--hypernet", str(folder)]
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), ".."), "OMP_NUM_THREADS": "1"}
    subprocess.run([*common, "--repeat", "2", "--json", str(tmp_path / "t.json")], check=True, env=env,
                   capture_output=True)
    timed = json.loads((tmp_path / "t.json").read_text())
    assert timed["new_vocab"] == 360 and len(timed["apply_seconds"]) == 2 and timed["apply_median"] > 0
    loaded = json.loads(subprocess.run([*common, "--load-only"], check=True, env=env, capture_output=True,
                                       text=True).stdout.splitlines()[-1])
    assert loaded["apply_seconds"] == [] and loaded["apply_median"] is None and loaded["load_seconds"] > 0


def test_dynamic_eval_without_merges_equals_the_bpb_meter(hn_world):  # noqa: F811
    from tokengraft.assets import load_corpus, load_model, load_tokenizer
    from tokengraft.hypernet.base import Base
    from tokengraft.hypernet.dynamic_eval import DynamicOptions, evaluate_dynamic, segments
    from tokengraft.measure import EvalOptions, bits_per_byte

    model, tok = load_model(hn_world["base"]), load_tokenizer(hn_world["base"])
    texts = load_corpus(str(hn_world["corpus"])).texts()[:6]
    rows = evaluate_dynamic(Base.from_model("b", model, tok), None, texts,
                            DynamicOptions(merges=[0, 30], segment_bytes=300, batch_segments=4))
    meter = bits_per_byte(model, tok, segments(texts, 300), EvalOptions())
    assert rows[0].bytes == meter.bytes and rows[0].tokens == meter.tokens
    assert rows[0].bpb == pytest.approx(meter.bpb, abs=1e-6)
    assert rows[1].tokens < rows[0].tokens and rows[1].bytes == rows[0].bytes


@pytest.mark.slow
def test_two_cpu_processes_match_one(hn_world, tmp_path):  # noqa: F811
    """Reconstruction only (equal slices): two processes average to the same gradient as one."""
    accelerate = shutil.which("accelerate")
    assert accelerate, "accelerate's launcher is not installed"
    from test_heal_ddp import free_port

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    common = ["-m", "tokengraft.cli.main", "hypernet", "train", "--model", str(hn_world["base"]), "--objectives",
              "recon", "--steps", "3", "--device", "cpu", *TINY]
    launchers = {"one": [sys.executable], "two": [accelerate, "launch", "--multi_gpu", "--num_processes", "2",
                                                  "--num_machines", "1", "--mixed_precision", "no",
                                                  "--dynamo_backend", "no", "--main_process_port", str(free_port())]}
    for name, launcher in launchers.items():
        proc = subprocess.run([*launcher, *common, "--out", str(tmp_path / name)], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    one, two = load_file(str(tmp_path / "one" / "hypernet.safetensors")), load_file(str(tmp_path / "two" / "hypernet.safetensors"))
    assert json.loads((tmp_path / "two" / "hypernet.json").read_text())["processes"] == 2
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)


def test_hypernet_train_flags_are_the_options_fields_with_their_defaults():
    import dataclasses

    from tokengraft.cli.hypernet import options_from_args
    from tokengraft.cli.main import build_parser
    from tokengraft.hypernet.dynamic_eval import DynamicOptions
    from tokengraft.hypernet.options import HypernetTrainOptions

    args = build_parser().parse_args(["hypernet", "train", "--model", "m", "--out", "o"])
    assert {f.name for f in dataclasses.fields(HypernetTrainOptions)} <= set(vars(args))
    assert options_from_args(args) == HypernetTrainOptions(model="m", out="o")
    args = build_parser().parse_args(["hypernet", "train", "--model", "m", "--out", "o", "--objectives", "recon",
                                      "lm", "--max-seconds", "900", "--no-progress", "--corpus", "a", "b"])
    assert options_from_args(args) == HypernetTrainOptions(model="m", out="o", objectives=["recon", "lm"],
                                                           max_seconds=900.0, progress=False, corpus=["a", "b"])
    args = build_parser().parse_args(["eval", "--model", "m", "--text", "x", "--dynamic", "--merges", "0", "9"])
    from tokengraft.cli.flags import options_from_args as build

    assert build(args, DynamicOptions) == DynamicOptions(merges=[0, 9])
