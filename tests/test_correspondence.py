"""Byte-level correspondence, chat markers, config ids and per-token diagnostics."""
from __future__ import annotations

import pytest
import torch

from tokengraft.transplant import specials
from tokengraft.transplant.correspondence import build_correspondence, match_tokens, vocabulary_difference
from tokengraft.transplant.diagnostics import digit_counts, digit_regrouped, number_example
from transplant_fixtures import base_tokenizer, new_tokenizer, tiny_llama


@pytest.fixture(scope="module")
def toks():
    return base_tokenizer(), new_tokenizer()


def test_match_tokens_copies_bytes_roles_and_content():
    old = [b"a", b"b", None, None, b"ab"]
    new = [None, b"ab", b"ba", None, b"a", b"zz"]
    pieces = [[], [4], [1, 0], [], [0], []]
    c = match_tokens(old, new, pieces, old_specials={"<s>": 2, "</s>": 3}, new_specials={0: "<s>", 3: "<eos>"},
                     old_roles={"bos": 2, "eos": 3, "unk": 2}, new_roles={"eos": 3})
    assert c.copied.tolist() == [2, 4, -1, 3, 0, -1]
    assert c.how == ["special:content", "copied", "pieces", "special:eos", "copied", "no-pieces"]
    assert c.missing_roles == ["bos", "unk"]
    assert c.old_to_new_specials() == {2: 0, 3: 3}
    assert c.num_copied == 4


def test_match_prefers_the_id_the_old_tokenizer_produces():
    # two old ids with the same bytes (e.g. a byte-fallback token and a piece): the encoder's choice wins
    c = match_tokens([b"x", b"x"], [b"x"], [[1]])
    assert c.copied.tolist() == [1]
    c = match_tokens([b"x", b"x"], [b"x"], [[]])
    assert c.copied.tolist() == [0]


def test_build_correspondence_on_trained_tokenizers(toks):
    old, new = toks
    c = build_correspondence(old, new)
    assert len(c.new_bytes) == len(new) and len(c.old_bytes) == len(old)
    old_index = {b: i for i, b in enumerate(c.old_bytes) if b is not None}
    for t, b in enumerate(c.new_bytes):
        if b is None:
            continue
        assert b"".join(c.old_bytes[i] for i in c.pieces[t]) == b  # pieces spell the token exactly
        if b in old_index:
            assert c.copied[t] >= 0 and c.old_bytes[c.copied[t]] == b
        else:
            assert c.copied[t] == -1 and len(c.pieces[t]) >= 2
    eot = new.convert_tokens_to_ids("<|endoftext|>")
    assert c.how[eot] == "special:content" and c.copied[eot] == old.convert_tokens_to_ids("<|endoftext|>")
    assert c.how[new.convert_tokens_to_ids("<pad>")] == "special:unmatched"
    assert 0.3 < c.num_copied / len(new) < 1.0


def test_word_start_pieces_keep_the_leading_space(toks):
    old, new = toks
    c = build_correspondence(old, new)
    spaced = [t for t, b in enumerate(c.new_bytes) if b and b.startswith(b" ") and c.copied[t] < 0]
    assert spaced, "the fixture must have non-overlapping word-start tokens"
    for t in spaced:
        assert c.old_bytes[c.pieces[t][0]].startswith(b" ")


def test_chat_markers_are_found_and_added(toks):
    old, new = toks
    assert specials.chat_markers(old) == ["<|im_start|>", "<|im_end|>"]
    assert specials.chat_markers(new) == []
    new = new_tokenizer()
    n = len(new)
    assert specials.add_chat_markers(new, ["<|im_start|>", "<|im_end|>", "<pad>"]) == ["<|im_start|>", "<|im_end|>"]
    assert len(new) == n + 2
    assert new.encode("<|im_start|>user", add_special_tokens=False)[0] == n


def test_update_special_ids_maps_roles_and_lists():
    model = tiny_llama(10)
    model.generation_config.eos_token_id = [2, 7, 9]
    new = new_tokenizer()
    written = specials.update_special_ids(model, new, {2: 5, 7: 6})
    eot, pad = new.convert_tokens_to_ids("<|endoftext|>"), new.convert_tokens_to_ids("<pad>")
    assert model.config.bos_token_id == eot and model.config.eos_token_id == [eot, 5] and model.config.pad_token_id == pad
    assert model.generation_config.eos_token_id == [eot, 5, 6]
    model.config.eos_token_id = 4  # an old eos that maps to nothing: the new eos alone, as a scalar
    specials.update_special_ids(model, new, {})
    assert model.config.eos_token_id == eot
    assert written["pad_token_id"] == pad


def test_vocabulary_difference(toks):
    old, new = toks
    assert vocabulary_difference(new, new_tokenizer()) is None
    assert "ids" in vocabulary_difference(old, new)
    other = new_tokenizer()
    other.add_tokens(["zzzz"])
    assert vocabulary_difference(new, other) == f"{len(new)} vs {len(new) + 1} ids"


def test_digit_regrouping():
    assert digit_regrouped(b"2024", [b"2", b"0", b"2", b"4"])
    assert digit_regrouped(b" 123", [b" 1", b"23"])
    assert not digit_regrouped(b" 123", [b" ", b"123"])
    assert not digit_regrouped(b"a1b2", [b"a", b"1", b"b", b"2"])
    old = [b"1", b"2", b"12", b"x"]
    assert digit_counts([b"12", b"x1", None, b"x"], old, [[0, 1], [3, 0], [], [3]]) == (2, 1)


def test_number_example_shows_different_grouping(toks):
    old, _ = toks
    assert number_example(old, old) == ""
    digits = train_digit_tokenizer()
    example = number_example(old, digits)
    assert example.startswith("2024: base ") and "new 2|0|2|4;" in example and "12345: base" in example


def train_digit_tokenizer():
    from transplant_fixtures import train_tokenizer

    return train_tokenizer("abc 0 1 2 3 4 5 6 7 8 9 ,.+=", 270, ["<|endoftext|>"])


def test_residual_and_sources_shapes():
    c = match_tokens([b"a"], [b"a", b"b"], [[0], []])
    assert c.copied.dtype == torch.long and c.how == ["copied", "no-pieces"]
