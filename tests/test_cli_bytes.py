"""``tokengraft eval --bytes`` and ``tokengraft generate`` end to end on tiny saved models."""
from __future__ import annotations

import json
import math

import pytest
import torch

from test_bpb import TRAIN_TEXT, make_llama, make_tokenizer, one_thread  # noqa: F401  (autouse fixture)
from tokengraft.cli.main import main

DOC = TRAIN_TEXT[:200]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bytes")
    tokenizer = make_tokenizer(eos_token="<|endoftext|>")
    make_llama(len(tokenizer), seed=0).save_pretrained(root / "one")
    tokenizer.save_pretrained(root / "one")
    make_llama(len(tokenizer), seed=1).save_pretrained(root / "two")
    tokenizer.save_pretrained(root / "two")
    (root / "a.txt").write_text(DOC, encoding="utf-8")
    return root


def test_eval_bytes_one_model_shows_byte_and_token_bpb(files, capsys):
    out = files / "one.json"
    assert main(["eval", "--bytes", "--model", str(files / "one"), "--text", str(files / "a.txt"),
                 "--context", "32", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:6] == ["model", "corpus", "bytes", "token", "BPB", "byte"]
    data = json.loads(out.read_text())
    total = data["total"]
    assert total["bytes"] == len(DOC.encode()) and total["bpb"] <= total["token_bpb"]
    member = data["members"][0]
    assert member["total"]["bpb"] == pytest.approx(total["bpb"]) and member["weight"] == 1.0
    # the canonical figure is the plain token-level meter's
    assert main(["eval", "--model", str(files / "one"), "--text", str(files / "a.txt"), "--context", "32",
                 "--json", str(files / "plain.json")]) == 0
    plain = json.loads((files / "plain.json").read_text())["total"]["bpb"]
    assert total["token_bpb"] == pytest.approx(plain, rel=1e-5)


def test_eval_bytes_mixture_of_two_models(files, capsys):
    out = files / "mix.json"
    assert main(["eval", "--bytes", "--model", str(files / "one"), "--model", str(files / "two"),
                 "--weights", "1", "3", "--text", str(files / "a.txt"), "--context", "32", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["weights"] == [0.25, 0.75]
    bpbs = [m["total"]["bpb"] for m in data["members"]]
    assert len(bpbs) == 2 and data["total"]["bpb"] < 0.25 * bpbs[0] + 0.75 * bpbs[1]  # log-sum is concave
    assert "mixture 0.25/0.75" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--model", "X", "--model", "Y"], "add --bytes"),
    (["--bytes", "--model", "X", "--weights", "1", "2"], "2 weights for 1 models"),
    (["--bytes", "--dynamic", "--model", "X"], "--bytes and --dynamic exclude each other"),
])
def test_eval_bytes_user_errors(files, capsys, argv, message):
    argv = [str(files / "one") if a == "X" else str(files / "two") if a == "Y" else a for a in argv]
    assert main(["eval", *argv, "--text", str(files / "a.txt")]) == 2
    assert message in capsys.readouterr().err


def test_generate_bytes_and_tokens(files, capsys):
    common = ["generate", "--model", str(files / "one"), "--prompt", "Bits per by", "--max-bytes", "12"]
    assert main([*common, "--bytes"]) == 0
    byte_level = capsys.readouterr().out
    assert byte_level.startswith("Bits per by")
    assert main([*common, "--bytes", "--model", str(files / "one")]) == 0  # a model mixed with itself
    assert capsys.readouterr().out == byte_level
    assert main(common) == 0
    assert capsys.readouterr().out.startswith("Bits per by")
    assert main(["generate", "--model", str(files / "one"), "--model", str(files / "two"), "--prompt", "a"]) == 2


def test_generate_python_api_matches_cli(files, capsys):
    from tokengraft import generate
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.bytelevel import GenerateOptions

    model, tok = load_model(str(files / "one")), load_tokenizer(str(files / "one"))
    with torch.inference_mode():
        out = generate([model], [tok], "Bits per by", GenerateOptions(max_bytes=12))
    assert main(["generate", "--bytes", "--model", str(files / "one"), "--prompt", "Bits per by", "--max-bytes", "12"]) == 0
    assert capsys.readouterr().out == ("Bits per by" + out.decode("utf-8", "replace") + "\n")
    assert len(out) == 12 and not math.isnan(len(out))
