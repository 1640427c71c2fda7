"""The architecture matrix: every common family as a transplant base, through the public API.

For each family (tests/arch_fixtures.py: tiny random models, hidden 32, 2 layers), the base is
saved as a folder, transplanted to a throwaway tokenizer with ``tokengraft.transplant``, written,
and reloaded with plain transformers. Then:

* ids made only of copied tokens (after the document start token) give exactly the base
  model's logits (causal) or hidden states (encoders);
* special tokens keep their roles: config ids are the new tokenizer's, and each role's row is
  the base's row of the same role (the document start token carries the base's start row);
* generation works (causal); a padded batch equals its rows run alone (encoders).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from arch_fixtures import FAMILIES, Family, transplant_family
from test_heal_helpers import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
from transplant_fixtures import BASE_TEXT, NEW_TEXT

ENCODER_ROLES = ("cls", "sep", "mask", "pad", "unk")
CAUSAL_ROLES = ("bos", "eos", "pad", "unk")


def transplanted(family: Family, tmp_path: Path, method: str = "fvt", **extra):
    """(base model, base tokenizer, reloaded model, reloaded tokenizer, token lines) of one family."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    model, base_tok, out = transplant_family(family, tmp_path, method, **extra)
    auto = AutoModelForCausalLM if family.kind == "causal" else AutoModel
    loaded = auto.from_pretrained(out, dtype=torch.float32).eval()
    lines = [json.loads(x) for x in (out / "transplant_tokens.jsonl").read_text().splitlines()]
    return model, base_tok, loaded, AutoTokenizer.from_pretrained(out), lines


def copied_pairs(tok, lines, rows, old_rows, text: str) -> tuple[list[int], list[int]]:
    """New ids of ``text`` whose rows were copied, and the base ids they were copied from (found
    by their rows, which random initialisation makes unique: WordPiece's byte view cannot tell
    "d" from "##d")."""
    new_ids = [t for t in tok(text, add_special_tokens=False)["input_ids"] if lines[t]["src"] == "copied"][:24]
    assert len(new_ids) >= 10, f"only {len(new_ids)} copied tokens in the probe text"
    old_ids = []
    for t in new_ids:
        same = (old_rows == rows[t]).all(dim=1).nonzero().flatten().tolist()
        assert same, f"new token {tok.convert_ids_to_tokens(t)!r} is marked copied but is no base row"
        old_ids.append(same[0])
    return new_ids, old_ids


def expected_old_id(base_tok, tok, new_id: int, role: str) -> int | None:
    """The base id whose row a special token should carry: same content first, else same role."""
    content = tok.convert_ids_to_tokens(new_id)
    same = base_tok.convert_tokens_to_ids(content)
    if isinstance(same, int) and same >= 0 and base_tok.convert_ids_to_tokens(same) == content:
        return same
    return role_id(base_tok, role)


def role_id(tok, role: str) -> int | None:
    value = getattr(tok, f"{role}_token_id", None)
    return value if isinstance(value, int) and value >= 0 else None


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_transplant(name, tmp_path):
    from tokengraft.lm.start import resolve_start_token

    family = FAMILIES[name]
    base, base_tok, loaded, tok, lines = transplanted(family, tmp_path)
    rows, old_rows = loaded.get_input_embeddings().weight, base.get_input_embeddings().weight
    assert rows.shape[0] == len(tok) == loaded.config.get_text_config().vocab_size

    # 1. copied-only ids give exactly the base model's outputs
    new_ids, old_ids = copied_pairs(tok, lines, rows, old_rows, NEW_TEXT + " " + BASE_TEXT)
    with torch.no_grad():
        if family.kind == "causal":
            new_start, old_start = resolve_start_token(tok)[1], resolve_start_token(base_tok)[1]
            got = loaded(torch.tensor([[new_start, *new_ids]])).logits[0]
            want = base(torch.tensor([[old_start, *old_ids]])).logits[0]
            torch.testing.assert_close(got[:, new_ids], want[:, old_ids], rtol=0, atol=1e-5)
        else:
            got = loaded(torch.tensor([new_ids])).last_hidden_state
            want = base(torch.tensor([old_ids])).last_hidden_state
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)

    # 2. specials keep their roles: config ids are the new tokenizer's, rows the base's of that role
    roles = CAUSAL_ROLES if family.kind == "causal" else ENCODER_ROLES
    config = loaded.config.get_text_config()
    for role in roles:
        new_id = role_id(tok, role)
        if new_id is None:
            continue
        old_id = expected_old_id(base_tok, tok, new_id, role)
        if hasattr(config, f"{role}_token_id"):
            value = getattr(config, f"{role}_token_id")
            assert new_id in (value if isinstance(value, list) else [value]), (role, value)
        if old_id is not None:
            torch.testing.assert_close(rows[new_id], old_rows[old_id], rtol=0, atol=0, msg=f"{role} row")
    if family.kind == "causal":  # the token a document starts with carries the base's start row
        torch.testing.assert_close(rows[new_start], old_rows[old_start], rtol=0, atol=0)

    # 3. it runs: generation (causal); a padded batch equals its rows alone (encoder)
    if family.kind == "causal":
        prompt = torch.tensor([[new_start, *new_ids[:4]]])
        out = loaded.generate(prompt, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                              pad_token_id=tok.pad_token_id)
        assert out.shape == (1, 10) and int(out.max()) < rows.shape[0]
        assert isinstance(tok.decode(out[0]), str)
    else:
        texts = ["Ouvrez le menu Fichier.", "Le renard brun rapide saute par-dessus le chien paresseux."]
        batch = tok(texts, padding=True, return_tensors="pt")
        assert batch["input_ids"][0, 0] == tok.cls_token_id and tok.sep_token_id in batch["input_ids"][0].tolist()
        with torch.no_grad():
            together = loaded(**batch).last_hidden_state
            alone = loaded(**tok(texts[0], return_tensors="pt")).last_hidden_state
        n = alone.shape[1]
        torch.testing.assert_close(together[0, :n], alone[0], rtol=0, atol=1e-5)


def test_new_start_token_takes_the_base_start_row():
    """SmolLM2-like base (documents start with <|endoftext|>, no BOS added) -> a Gemma-like tokenizer
    that prepends <bos>: <bos> takes <|endoftext|>'s row, not that of the declared bos <|im_start|>."""
    from arch_fixtures import gemma_tokenizer
    from tokengraft.transplant.core import transplant_model
    from transplant_fixtures import base_tokenizer, tiny_llama

    old, new = base_tokenizer(), gemma_tokenizer()
    model = tiny_llama(len(old))
    before = model.get_input_embeddings().weight.detach().clone()
    model, tok, diag = transplant_model(model, old, new, "fvt")
    bos = tok.convert_tokens_to_ids("<bos>")
    assert diag.tokens.source[bos] == "special:start"
    torch.testing.assert_close(model.get_input_embeddings().weight[bos],
                               before[old.convert_tokens_to_ids("<|endoftext|>")], rtol=0, atol=0)
    assert tok("a")["input_ids"][0] == bos  # the new tokenizer keeps its own BOS


def test_a_qwen2_folder_records_that_autotokenizer_swaps_the_class(tmp_path):
    """transformers 5 loads any qwen2 folder's tokenizer as Qwen2Tokenizer (its own regex): the folder
    is written all the same (its tokenizer.json is faithful), with a warning in transplant.json and
    the card that says how to load it; PreTrainedTokenizerFast gives the transplanted tokenizer back."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    family = FAMILIES["qwen2"]
    _, _, out = transplant_family(family, tmp_path, "fvt")
    warnings = json.loads((out / "transplant.json").read_text())["warnings"]
    swap = [w for w in warnings if "loads this folder's tokenizer as Qwen2Tokenizer" in w]
    assert len(swap) == 1 and "PreTrainedTokenizerFast.from_pretrained(folder)" in swap[0]
    assert swap[0] in (out / "README.md").read_text()
    assert type(AutoTokenizer.from_pretrained(out)).__name__ == "Qwen2Tokenizer"
    own, want = PreTrainedTokenizerFast.from_pretrained(out), family.new_tokenizer()
    text = "  two  spaces\n\nand lines\t\ttabs Größe: naïve café — 日本語 🦊 12345"
    assert own(text, add_special_tokens=False)["input_ids"] == want(text, add_special_tokens=False)["input_ids"]
