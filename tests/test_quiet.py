"""Quiet output: our own calls into transformers and torch raise no deprecation warnings
(``past_key_values`` was the one every quickstart and Gemma transplant printed)."""
from __future__ import annotations

import warnings

import pytest
import torch
from test_heal_helpers import heal_world, one_thread  # noqa: F401  (fixtures)

from arch_fixtures import FAMILIES, base_model
from transplant_fixtures import NEW_TEXT, wordpiece_tokenizer

DEPRECATIONS = (DeprecationWarning, FutureWarning, PendingDeprecationWarning)


def tiny_embedder(folder):
    """A random BERT sentence embedder folder: graft's semantic estimate needs one (--aux)."""
    from transformers import BertConfig, BertModel

    tok = wordpiece_tokenizer()
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def deprecations(record) -> list[str]:
    return [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in record
            if issubclass(w.category, DEPRECATIONS)]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["llama", "gemma3"])
def test_graft_transplant_eval_and_generate_are_quiet(name, tmp_path):
    from tokengraft.measure import EvalOptions, bits_per_byte
    from tokengraft.assets.corpus import Corpus, Document
    from tokengraft.transplant import TransplantOptions, transplant

    family = FAMILIES[name]
    model, tok = base_model(family)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    family.new_tokenizer().save_pretrained(tmp_path / "new")
    (tmp_path / "fr.txt").write_text(NEW_TEXT * 3)
    embedder = tiny_embedder(tmp_path / "aux")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = transplant(TransplantOptions(model=str(tmp_path / "base"), tokenizer=str(tmp_path / "new"),
                                              method="graft", aux=str(embedder), corpus=str(tmp_path / "fr.txt"),
                                              out=str(tmp_path / "out")))
        corpus = Corpus("fr", [Document("0", NEW_TEXT)])
        bpb = bits_per_byte(result.model, result.tokenizer, corpus, EvalOptions())
        ids = result.tokenizer("Ouvrez le menu", return_tensors="pt").input_ids
        result.model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=result.tokenizer.pad_token_id)
    assert bpb.bpb > 0 and result.diagnostics.summary.method == "graft"
    assert deprecations(record) == []


@pytest.mark.usefixtures("one_thread")
def test_heal_with_eval_is_quiet(heal_world, tmp_path):  # noqa: F811
    from tokengraft.heal import HealOptions, heal

    options = HealOptions(model=str(heal_world["student"]), corpus=[str(heal_world["corpus"])], mode="alm", steps=2,
                          seq_len=32, batch_size=2, save_every=0, eval=[str(heal_world["heldout"])], eval_every=1,
                          eval_max_bytes=2000, out=str(tmp_path / "healed"), progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        heal(options)
    assert deprecations(record) == []
