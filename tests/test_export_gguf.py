"""``tokengraft export --gguf``: transplanted tiny models of every exportable family, written as
GGUF and read back through transformers' own GGUF loader (``from_pretrained(..., gguf_file=...)``):
the same token ids on random text, logits within 1e-3 at f32."""
from __future__ import annotations

import random

import pytest
import torch

from arch_fixtures import FAMILIES, transplant_family
from test_heal_helpers import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

EXPORTABLE = ["gemma2", "gemma3", "gpt2", "llama", "mistral", "phi3", "qwen2", "qwen3"]
ALPHABET = ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()-_/\\@#%&*+=<>[]{} "
            "éèàçôûüöäßñ ЖжЩщ 日本語 🦊 \n\t  ")


def random_texts(n: int = 20, seed: int = 0) -> list[str]:
    """Random strings of words from the probe texts and random characters, spaces and newlines."""
    from transplant_fixtures import BASE_TEXT, NEW_TEXT

    rng = random.Random(seed)
    words = (BASE_TEXT + NEW_TEXT).split()
    out = []
    for _ in range(n):
        parts = [rng.choice(words) if rng.random() < 0.6 else
                 "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(3, 25))]
        out.append(rng.choice(["", " ", "\n"]) + rng.choice([" ", "  ", "\n", ""]).join(parts))
    return out


def export(folder, path, dtype="f32"):
    from tokengraft.cli.main import main

    assert main(["export", "--model", str(folder), "--gguf", str(path), "--dtype", dtype]) == 0
    return path


def read_back(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_round_trip_through_transformers(name, tmp_path):
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    _, _, folder = transplant_family(FAMILIES[name], tmp_path)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    # the folder's own tokenizer.json (AutoTokenizer forces Qwen2Tokenizer's own pipeline on a qwen2 folder)
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    gguf_model, gguf_tok = read_back(export(folder, tmp_path / "gguf" / "model.gguf"))
    for text in random_texts():
        assert gguf_tok(text)["input_ids"] == tok(text)["input_ids"], repr(text)
    assert gguf_tok.chat_template == tok.chat_template
    ids = torch.tensor([tok(" ".join(random_texts(3, seed=1)))["input_ids"][:100]])
    with torch.no_grad():
        torch.testing.assert_close(gguf_model(ids).logits, model(ids).logits, rtol=0, atol=1e-3)


@pytest.mark.parametrize("dtype,atol", [("f16", 2e-2), ("q8_0", 5e-2)])
def test_smaller_dtypes_stay_close(dtype, atol, tmp_path):
    from transformers import AutoModelForCausalLM

    _, _, folder = transplant_family(FAMILIES["llama"], tmp_path)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    full = export(folder, tmp_path / "f32.gguf")
    small = export(folder, tmp_path / f"{dtype}.gguf", dtype)
    assert small.stat().st_size < 0.7 * full.stat().st_size
    gguf_model, gguf_tok = read_back(small)
    ids = torch.tensor([gguf_tok(random_texts(1, seed=2)[0])["input_ids"][:60]])
    with torch.no_grad():
        got, want = gguf_model(ids).logits, model(ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=atol)
    assert (got.argmax(-1) == want.argmax(-1)).float().mean() > 0.9


def test_errors_are_one_line(tmp_path, capsys):
    from tokengraft.cli.main import main

    _, _, folder = transplant_family(FAMILIES["olmo2"], tmp_path)
    assert main(["export", "--model", str(folder), "--gguf", str(tmp_path / "x.gguf")]) == 2
    err = capsys.readouterr().err
    assert "does not support 'olmo2'" in err and "llama" in err and not (tmp_path / "x.gguf").exists()
    (tmp_path / "y.gguf").write_bytes(b"")
    assert main(["export", "--model", str(folder), "--gguf", str(tmp_path / "y.gguf")]) == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not one of f32, f16, q8_0
        main(["export", "--model", str(folder), "--gguf", str(tmp_path / "z.gguf"), "--dtype", "q4"])
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_untied_gemma2_is_refused_with_the_reason(tmp_path):
    from tokengraft.errors import TokengraftError
    from tokengraft.export import write_gguf

    from arch_fixtures import base_model

    model, tok = base_model(FAMILIES["gemma2"])
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untie
    with pytest.raises(TokengraftError, match="no separate output matrix"):
        write_gguf(model, tok, tmp_path / "g.gguf")
    assert not (tmp_path / "g.gguf").exists()


@pytest.mark.slow
@pytest.mark.parametrize("spec,dtype,atol", [("smollm2-135m", "f32", 1e-3), ("gemma3-270m", "f32", 1e-3)])
def test_real_models_round_trip(spec, dtype, atol, tmp_path):
    """The offline base models themselves (byte-level BPE in a Llama; SentencePiece-style BPE in a Gemma-3)."""
    from tokengraft.assets import load_corpus, load_model, load_tokenizer
    from tokengraft.export import ExportOptions, export_gguf

    path = export_gguf(ExportOptions(model=spec, gguf=str(tmp_path / "m.gguf"), dtype=dtype))
    model, tok = load_model(spec), load_tokenizer(spec)
    gguf_model, gguf_tok = read_back(path)
    texts = load_corpus("libreoffice:fr:heldout").truncate(20_000).texts() + random_texts(50)
    mismatched = [t for t in texts if gguf_tok(t)["input_ids"] != tok(t)["input_ids"]]
    assert mismatched == []
    ids = torch.tensor([tok(texts[0])["input_ids"][:128]])
    with torch.no_grad():
        torch.testing.assert_close(gguf_model(ids).logits, model(ids).logits, rtol=0, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTABLE)
def test_llama_cpp_runs_the_export_like_transformers(name, tmp_path):
    """llama.cpp itself (llama-cpp-python, built by scripts/setup.sh): the same token ids, and its
    logits within 1e-3 of transformers' on the transplanted folder (measured: 1e-5 to 2.3e-4)."""
    import numpy as np
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    _, _, folder = transplant_family(FAMILIES[name], tmp_path)
    path = export(folder, tmp_path / "model.gguf")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    llm = Llama(model_path=str(path), n_ctx=128, logits_all=True, verbose=False, n_threads=1)
    try:
        for text in random_texts(10, seed=3):
            assert llm.tokenize(text.encode(), add_bos=tok.bos_token_id in tok("a")["input_ids"],
                                special=False) == tok(text)["input_ids"], repr(text)
        ids = tok("Ouvrez le menu Fichier, choisissez Enregistrer sous. En 2024, 12345 fichiers!")["input_ids"]
        llm.reset()
        llm.eval(ids)
        got = np.array(llm.scores[: len(ids)])
    finally:
        llm.close()
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].numpy()
    assert float(np.abs(got - want).max()) < 1e-3
