"""`tokengraft transplant` end to end on folders made in the test, and the options mapping."""
from __future__ import annotations

import json
import os

import pytest
import torch

from tokengraft.cli.main import build_parser, main
from tokengraft.cli.transplant import options_from_args, parse_method_options
from tokengraft.errors import TokengraftError
from tokengraft.transplant.options import TransplantOptions
from transplant_fixtures import TEST_METHOD, base_tokenizer, new_tokenizer, register_test_method, tiny_llama

register_test_method()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    old = base_tokenizer()
    model = tiny_llama(len(old), tied=False)
    model.save_pretrained(root / "base")
    old.save_pretrained(root / "base")
    new_tokenizer().save_pretrained(root / "tok")
    return root


def test_flags_map_one_to_one():
    args = build_parser().parse_args([
        "transplant", "--model", "m", "--tokenizer", "t", "--method", "omp", "--donor", "d", "--aux", "a",
        "--corpus", "c", "--out", "o", "--device", "cuda", "--seed", "7", "--pad-to-multiple-of", "64",
        "--overwrite", "--method-option", "k=8", "--method-option", "name=x", "--dtype", "bfloat16",
        "--kind", "encoder",
    ])
    assert options_from_args(args) == TransplantOptions(
        model="m", tokenizer="t", method="omp", donor="d", aux="a", corpus="c", out="o", device="cuda", seed=7,
        pad_to_multiple_of=64, overwrite=True, method_options={"k": 8, "name": "x"}, dtype="bfloat16", kind="encoder")


def test_parse_method_options():
    assert parse_method_options(["k=3", "t=0.5", "flag=true", "s=abc"]) == {"k": 3, "t": 0.5, "flag": True, "s": "abc"}
    with pytest.raises(TokengraftError, match="expects KEY=VALUE"):
        parse_method_options(["k"])


def test_list_methods(capsys):
    assert main(["transplant", "--list-methods"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "needs", "summary"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert "fvt" in rows and TEST_METHOD in rows and "test only: mean of the pieces" in rows[TEST_METHOD]
    assert "graft*" in rows and out[-1].startswith("* the default;")  # the default method is marked
    assert rows["omp"].split()[1] == "donor|strings" and rows["graft*"].split()[1] == "vocab-strings+continuation"


def test_missing_model_is_a_one_line_error(capsys):
    assert main(["transplant", "--tokenizer", "t"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: tokengraft transplant needs --model SPEC and --tokenizer SPEC (or --list-methods)")


def test_unknown_method_fails_before_loading(capsys):
    assert main(["transplant", "--model", "/nonexistent", "--tokenizer", "t", "--method", "nope"]) == 2
    assert "unknown method 'nope'; choose one of:" in capsys.readouterr().err


def test_cli_writes_a_loadable_folder(folders, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = folders / "out"
    argv = ["transplant", "--model", str(folders / "base"), "--tokenizer", str(folders / "tok"),
            "--method", "wvt", "--out", str(out), "--pad-to-multiple-of", "16", "--seed", "3"]
    assert main(argv) == 0  # a real method, end to end
    printed = capsys.readouterr().out
    assert "transplant with wvt: 372 -> 332 tokens (336 rows, padded)" in printed
    record = json.loads((out / "transplant.json").read_text())
    assert record["options"]["seed"] == 3 and record["base_model"] == str(folders / "base")
    assert record["summary"]["counts"]["wvt"] > 20 and record["summary"]["counts"]["copied"] > 200
    assert record["summary"]["new_vocab"] == 332 and record["summary"]["added_markers"] == ["<|im_start|>", "<|im_end|>"]
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == 336 and not model.config.tie_word_embeddings and len(tok) == 332
    ids = torch.tensor([tok("Ouvrez le menu", add_special_tokens=False)["input_ids"]])
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, ids.shape[1] + 3)

    assert main(argv) == 2  # the folder now exists
    assert "already exists; choose another --out or pass --overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--dtype", "bfloat16"]) == 0
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded.get_input_embeddings().weight.dtype == torch.bfloat16
    assert sorted(os.listdir(folders)) == ["base", "out", "tok"]  # no temporary siblings left


def test_missing_donor_or_corpus_fails_before_loading(capsys):
    assert main(["transplant", "--model", "/nonexistent", "--tokenizer", "t", "--method", "omp"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: method omp needs --donor SPEC (a model that already uses the new tokenizer)"
        " or --aux SPEC (an embedder, e.g. minilm-l6)")
    assert main(["transplant", "--model", "/nonexistent", "--tokenizer", "t", "--method", "focus"]) == 2
    assert "method focus needs --corpus CORPUS" in capsys.readouterr().err
