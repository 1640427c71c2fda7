"""``tokengraft eval`` end to end on a tiny saved model: table, JSON, and one-line errors."""
from __future__ import annotations

import json

import pytest
import torch

from test_bpb import TRAIN_TEXT, make_llama, make_tokenizer, one_thread  # noqa: F401  (autouse fixture)
from tokengraft.cli.main import main
from tokengraft.errors import TokengraftError
from tokengraft.measure import EvalOptions, bits_per_byte

DOC_A = TRAIN_TEXT[:230]
DOC_B = TRAIN_TEXT[100:180]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    tokenizer = make_tokenizer(eos_token="<|endoftext|>")
    model = make_llama(len(tokenizer))
    model.save_pretrained(root / "tiny")
    tokenizer.save_pretrained(root / "tiny")
    make_llama(64).save_pretrained(root / "small-vocab")
    (root / "a.txt").write_text(DOC_A, encoding="utf-8")
    (root / "b.txt").write_text(DOC_B, encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    (root / "latin1.txt").write_bytes("Der Fuchs springt über den Hund.".encode("latin-1"))
    _write_vocab_only_gguf(root / "vocab-only.gguf")
    return {"root": root, "model": model, "tokenizer": tokenizer}


def _write_vocab_only_gguf(path):
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _cells(line: str) -> list[str]:
    return line.split()


def test_eval_prints_table_and_writes_json(files, capsys):
    root = files["root"]
    out = root / "out" / "bpb.json"
    rc = main(["eval", "--model", str(root / "tiny"), "--text", str(root / "a.txt"), str(root / "b.txt"),
               "--json", str(out), "--context", "32", "--batch-tokens", "128"])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert _cells(lines[0]) == ["corpus", "bytes", "tokens", "tokens/byte", "BPB", "seconds", "tokens/s"]
    assert len(lines) == 4 and _cells(lines[3])[0] == "total"
    direct = bits_per_byte(files["model"], files["tokenizer"], [DOC_A], EvalOptions(context=32))
    row_a = _cells(lines[1])
    assert row_a[1] == f"{len(DOC_A.encode()):,}" and row_a[2] == f"{direct.tokens:,}"
    assert float(row_a[4]) == pytest.approx(direct.bpb, abs=1e-4)
    data = json.loads(out.read_text())
    assert data["model"] == str(root / "tiny") and data["options"]["context"] == 32
    assert [c["bytes"] for c in data["corpora"]] == [len(DOC_A.encode()), len(DOC_B.encode())]
    assert data["corpora"][0]["bpb"] == pytest.approx(direct.bpb, abs=1e-6)
    assert data["total"]["bytes"] == len(DOC_A.encode()) + len(DOC_B.encode())
    assert data["total"]["start_token"] == "<|endoftext|>"


def test_max_bytes_cuts_each_corpus(files, capsys):
    root = files["root"]
    assert main(["eval", "--model", str(root / "tiny"), "--text", str(root / "a.txt"), "--max-bytes", "50"]) == 0
    row = _cells(capsys.readouterr().out.strip().splitlines()[1])
    assert row[1] == "50"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error")]  # transformers may draw progress bars
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("args,needle", [
    (["--model", "no-such-model-xyz", "--text", "{root}/a.txt"], "no-such-model-xyz"),
    (["--model", "{root}/tiny", "--text", "{root}/missing.txt"], "missing.txt"),
    (["--model", "{root}/small-vocab", "--tokenizer", "{root}/tiny", "--text", "{root}/a.txt"], "has 300 token ids"),
    (["--model", "{root}/tiny", "--text", "{root}/empty.txt"], "empty"),
    (["--model", "{root}/tiny", "--text", "{root}/latin1.txt"], "UTF-8"),
    (["--model", "{root}/vocab-only.gguf", "--tokenizer", "{root}/tiny", "--text", "{root}/a.txt"], "no model weights"),
    (["--model", "{root}/tiny", "--text", "{root}/a.txt", "--start", "<nope>"], "'<nope>' is not in the tokenizer"),
    (["--model", "{root}/tiny", "--text", "{root}/a.txt", "--context", "100000"], "max_position_embeddings"),
])
def test_bad_input_is_one_line_and_exit_2(files, capsys, args, needle):
    args = [a.format(root=files["root"]) for a in args]
    assert main(["eval", *args]) == 2
    line = _one_line_error(capsys)
    assert needle in line


def test_tokenizer_too_big_names_both_sizes(files, capsys):
    root = files["root"]
    assert main(["eval", "--model", str(root / "small-vocab"), "--tokenizer", str(root / "tiny"),
                 "--text", str(root / "a.txt")]) == 2
    line = _one_line_error(capsys)
    assert "300" in line and "only 64 rows" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when no GPU is present")
def test_cuda_without_gpu_is_one_line_error(files, capsys):
    root = files["root"]
    assert main(["eval", "--model", str(root / "tiny"), "--text", str(root / "a.txt"), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in _one_line_error(capsys)


def test_debug_shows_the_exception(files):
    with pytest.raises(TokengraftError):
        main(["--debug", "eval", "--model", "no-such-model-xyz", "--text", str(files["root"] / "a.txt")])
