"""The broken and awkward inputs the bad-input suite feeds every command, made in a second.

:func:`build_world` writes into one folder: a tiny good model (``base``: random Llama,
hidden 32, 2 layers, with its byte-level BPE), a good new tokenizer (``tok``), and damaged
copies of each (truncated weights, a pickle that would run code, tokenizers whose ids
collide or leave gaps), plus small text files. :data:`PATHS` maps the names the case table
uses (``{base}``, ``{dup}``) onto those files. A new command adds its own bad inputs here.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from transplant_fixtures import base_tokenizer, new_tokenizer, tiny_llama

# Name -> path under the world folder; {name} in a case's command line becomes the absolute path.
PATHS = {
    "base": "base",                   # good tiny causal LM + its tokenizer
    "tok": "tok",                     # good new tokenizer folder
    "weights": "base/model.safetensors",
    "trunc": "trunc",                 # model folder whose model.safetensors is cut in half
    "pickle": "pickle",               # model folder with only a pytorch_model.bin that holds code
    "payload": "payload-ran",         # the file the pickle's code would create
    "truncbin": "truncbin",           # model folder with only a pytorch_model.bin cut in half
    "dup": "dup.json",                # tokenizer.json: 100 vocabulary entries moved onto one id
    "dupdir": "dupdir",               # the same as a tokenizer folder
    "gap": "gap.json",                # tokenizer.json: its last 10 ids moved to 2000-2009
    "gapmodel": "gapmodel",           # the base model with a gap tokenizer whose largest id is beyond its rows
    "small": "small",                 # a model with 64 rows, fewer than any tokenizer here has ids
    "noconfig": "noconfig",           # folder with weights but no config.json
    "badconfig": "badconfig",         # model folder whose config.json is cut short
    "corrupt": "corrupt.json",        # a tokenizer.json that is not JSON
    "a": "a.txt",                     # a short paragraph
    "empty": "empty.txt",
    "ws": "ws.txt",                   # spaces, tabs and newlines only
    "latin1": "latin1.txt",           # not UTF-8
    "corpus": "corpus",               # a folder of a few KB of text (healing, tokenizer training)
    "existing": "existing",           # an output folder that already exists
    "file": "a.txt",                  # a file where a folder is expected
    "jsondir": "jsondir",             # a folder where a file is expected
}

TEXT = ("The quick brown fox jumps over the lazy dog. Le renard brun rapide saute par-dessus le chien. "
        "Open the file menu, choose Save As and type a name for the document. 12345 fichiers.\n")


class Payload:
    """Pickled into pytorch_model.bin: unpickling it would call ``open(marker, "w")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _vocab_edit(source: Path, target: Path, edit) -> None:
    data = json.loads(source.read_text(encoding="utf-8"))
    items = sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1])
    edit(data["model"]["vocab"], items)
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _duplicate(vocab: dict, items: list) -> None:
    for token, _ in items[-100:]:
        vocab[token] = items[-101][1]


def _gaps(vocab: dict, items: list) -> None:
    for k, (token, _) in enumerate(items[-10:]):
        vocab[token] = 2000 + k


def build_world(root: Path) -> dict[str, str]:
    """Write every input into ``root``; return {name: absolute path} for the case table."""
    import torch
    from safetensors.torch import load_file

    old = base_tokenizer()
    model = tiny_llama(len(old), tied=False)
    model.save_pretrained(root / "base")
    old.save_pretrained(root / "base")
    new_tokenizer().save_pretrained(root / "tok")

    shutil.copytree(root / "base", root / "trunc")
    weights = root / "trunc" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    shutil.copytree(root / "base", root / "pickle")
    state = load_file(str(root / "pickle" / "model.safetensors"))
    (root / "pickle" / "model.safetensors").unlink()
    state["payload"] = Payload(root / PATHS["payload"])
    torch.save(state, root / "pickle" / "pytorch_model.bin")

    shutil.copytree(root / "pickle", root / "truncbin")
    state.pop("payload")
    torch.save(state, root / "truncbin" / "pytorch_model.bin")
    binary = root / "truncbin" / "pytorch_model.bin"
    binary.write_bytes(binary.read_bytes()[: binary.stat().st_size // 2])

    tok_json = root / "tok" / "tokenizer.json"
    _vocab_edit(tok_json, root / PATHS["dup"], _duplicate)
    (root / "dupdir").mkdir()
    shutil.copy(root / PATHS["dup"], root / "dupdir" / "tokenizer.json")
    shutil.copy(root / "tok" / "tokenizer_config.json", root / "dupdir")
    _vocab_edit(tok_json, root / PATHS["gap"], _gaps)
    shutil.copytree(root / "base", root / "gapmodel")
    _vocab_edit(root / "base" / "tokenizer.json", root / "gapmodel" / "tokenizer.json", _gaps)

    tiny_llama(64).save_pretrained(root / "small")
    (root / "noconfig").mkdir()
    shutil.copy(root / "base" / "model.safetensors", root / "noconfig")
    shutil.copytree(root / "base", root / "badconfig")
    (root / "badconfig" / "config.json").write_text('{"model_type": "llama", "hidden_', encoding="utf-8")
    (root / PATHS["corrupt"]).write_text('{"model": {"type": "BPE", "vocab": ', encoding="utf-8")

    (root / PATHS["a"]).write_text(TEXT, encoding="utf-8")
    (root / PATHS["empty"]).write_text("", encoding="utf-8")
    (root / PATHS["ws"]).write_text("   \n\t  \n\n", encoding="utf-8")
    (root / PATHS["latin1"]).write_bytes("Der Fuchs springt über den Hund.".encode("latin-1"))
    (root / "corpus").mkdir()
    for i in range(8):
        (root / "corpus" / f"doc{i}.txt").write_text(TEXT * (3 + i), encoding="utf-8")
    (root / "existing").mkdir()
    (root / "existing" / "keep.txt").write_text("an earlier output\n", encoding="utf-8")
    (root / "jsondir").mkdir()
    return {name: str(root / rel) for name, rel in PATHS.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """The world of one test module: {name: path}, and "root"."""
    root = tmp_path_factory.mktemp("world")
    paths = build_world(root)
    paths["root"] = str(root)
    return paths


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(threads)
