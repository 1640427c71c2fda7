"""tokengraft tokenizer train: conventions copied from a base, lossless round trips, the
saved folder, and one-line errors for every bad input."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from tokenizer_fixtures import CHAT_TEMPLATE, byte_level_base, corpus_docs, digit_splitting_base, sentencepiece_base
from tokengraft.errors import TokengraftError
from tokengraft.tokenizer import TrainOptions, save_tokenizer, train_to_folder, train_tokenizer
from tokengraft.tokenizer.train import sample_texts

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "60"))
SAMPLE = "Le renard brun rapide.  Über 1234 café!\n\n\tНовая строка 🦊 日本語\r\n"


def opts(**kw) -> TrainOptions:
    kw.setdefault("vocab_size", 500)
    return TrainOptions(show_progress=False, **kw)


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return corpus_docs()


@pytest.fixture(scope="module")
def trained(docs):
    """One tokenizer per (kind, base) pair, trained once for the module."""
    bases = {"none": None, "bytelevel": byte_level_base(), "sentencepiece": sentencepiece_base()}
    return {(kind, name): train_tokenizer(docs, opts(kind=kind, vocab_size=450), base_tokenizer=base)
            for kind in ("bpe", "unigram", "superbpe") for name, base in bases.items()}


def test_default_is_gpt2_style_byte_level(trained):
    tok = trained[("bpe", "none")]
    data = json.loads(tok.backend_tokenizer.to_str())
    assert len(tok) == 450
    assert tok.convert_ids_to_tokens(0) == "<|endoftext|>"
    assert (tok.bos_token, tok.eos_token, tok.unk_token) == ("<|endoftext|>",) * 3
    assert data["pre_tokenizer"]["type"] == "ByteLevel" and data["pre_tokenizer"]["use_regex"] is True
    assert data["decoder"]["type"] == "ByteLevel"
    assert tok("la boîte")["input_ids"] == tok("la boîte", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("kind", ["bpe", "unigram", "superbpe"])
def test_byte_level_base_specials_roles_and_template(trained, kind):
    tok = trained[(kind, "bytelevel")]
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (
        "<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>")
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.model_max_length == 2048
    ids = tok("la boîte")["input_ids"]
    assert ids[0] != tok.bos_token_id  # SmolLM2 adds no BOS, neither does the copy
    chat = tok.apply_chat_template([{"role": "user", "content": "de la"}], tokenize=False)
    assert chat == "<|im_start|>user\nde la<|im_end|>\n"
    assert tok("<|im_start|>user")["input_ids"][0] == 1


@pytest.mark.parametrize("kind", ["bpe", "unigram", "superbpe"])
def test_sentencepiece_base_conventions(trained, kind):
    tok = trained[(kind, "sentencepiece")]
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    assert tok.convert_ids_to_tokens(list(range(7))) == specials  # <unused0> is not copied
    assert tok.convert_ids_to_tokens([7, 7 + 0x41, 7 + 255]) == ["<0x00>", "<0x41>", "<0xFF>"]
    assert len(tok) == 450
    ids = tok("de la 🐶")["input_ids"]
    assert ids[0] == tok.bos_token_id == 2  # the base adds <bos>, so does the copy
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[-4:] == ["<0xF0>", "<0x9F>", "<0x90>", "<0xB6>"]  # an unseen character: byte fallback
    assert any(p.startswith("▁") for p in pieces)
    assert tok.decode(ids, skip_special_tokens=True) == "de la 🐶"


def test_digit_by_digit_base_stays_digit_by_digit(docs):
    def digit_pairs(tok) -> int:
        return sum(any(a.isdigit() and b.isdigit() for a, b in zip(t, t[1:])) for t in tok.get_vocab())

    assert digit_pairs(train_tokenizer(docs, opts())) > 10  # numbers get merged without the convention
    tok = train_tokenizer(docs, opts(kind="superbpe"), base_tokenizer=digit_splitting_base())
    assert digit_pairs(tok) == 0
    assert tok.convert_ids_to_tokens(tok("x 2024")["input_ids"])[-4:] == ["2", "0", "2", "4"]


def _byte_view_roundtrip(tok, text: str) -> None:
    from tokengraft.vocab import byte_vocab

    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    view = byte_vocab(tok)
    # Special strings typed in the text are recognised as specials (as every HF tokenizer
    # does); they stand for their own content.
    pieces = [view.tokens[i] if view.tokens[i] is not None else tok.convert_ids_to_tokens(i).encode() for i in ids]
    assert b"".join(pieces) == text.encode("utf-8")


@pytest.mark.parametrize("key", [("bpe", "none"), ("unigram", "none"), ("superbpe", "none"),
                                 ("bpe", "bytelevel"), ("superbpe", "bytelevel"), ("unigram", "bytelevel")])
def test_lossless_on_sample(trained, key):
    _byte_view_roundtrip(trained[key], SAMPLE)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=0, max_size=60))
def test_property_lossless_any_utf8(trained, text):
    for kind in ("bpe", "unigram", "superbpe"):
        _byte_view_roundtrip(trained[(kind, "none")], text)
        _byte_view_roundtrip(trained[(kind, "bytelevel")], text)
        # A SentencePiece convention spells spaces as U+2581, so that one character cannot
        # survive (the base has the same limit); every other text must.
        sp = trained[(kind, "sentencepiece")]
        clean = text.replace("\u2581", "")
        assert sp.decode(sp(clean, add_special_tokens=False)["input_ids"]) == clean


def test_save_folder_loads_everywhere(trained, tmp_path):
    tok = trained[("superbpe", "bytelevel")]
    out = save_tokenizer(tok, tmp_path / "tok")
    names = {p.name for p in out.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"} <= names
    loaded = AutoTokenizer.from_pretrained(str(out))
    plain = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert loaded(SAMPLE)["input_ids"] == tok(SAMPLE)["input_ids"] == plain.encode(SAMPLE).ids
    assert loaded.chat_template == CHAT_TEMPLATE
    smap = json.loads((out / "special_tokens_map.json").read_text())
    assert smap["bos_token"] == "<|im_start|>" and smap["unk_token"] == "<|endoftext|>"


def test_training_is_deterministic(docs):
    a = train_tokenizer(docs, opts(kind="superbpe"))
    b = train_tokenizer(list(docs), opts(kind="superbpe"))
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_max_bytes_sample_is_seeded(docs):
    one = sample_texts(docs, 3000, seed=1)
    assert one == sample_texts(docs, 3000, seed=1)
    assert one != sample_texts(docs, 3000, seed=2)
    assert 3000 <= sum(len(t.encode()) for t in one) < 3000 + max(len(t.encode()) for t in docs)


@pytest.mark.parametrize("texts", [[], ["", "  \n"]])
def test_empty_corpus_is_refused(texts):
    with pytest.raises(TokengraftError, match="corpus is empty"):
        train_tokenizer(texts, opts())


def test_vocab_smaller_than_alphabet_plus_specials(docs):
    with pytest.raises(TokengraftError, match=r"vocab size 258 .* 3 special tokens \(259\)"):
        train_tokenizer(docs, opts(vocab_size=258), base_tokenizer=byte_level_base())
    with pytest.raises(TokengraftError, match=r"\(263\); pass --vocab-size 263"):
        train_tokenizer(docs, opts(vocab_size=262), base_tokenizer=sentencepiece_base())


def test_bad_transition_and_kind(docs):
    with pytest.raises(TokengraftError, match="transition 600 must be"):
        train_tokenizer(docs, opts(kind="superbpe", transition=600))
    with pytest.raises(TokengraftError, match="unknown tokenizer kind 'wordpiece'"):
        train_tokenizer(docs, opts(kind="wordpiece"))


def test_unreadable_base(docs, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokengraftError, match=f"tokenizer folder {broken} is unreadable"):
        train_tokenizer(docs, opts(base=str(broken)))
    with pytest.raises(TokengraftError, match="unknown tokenizer 'no-such-base'"):
        train_tokenizer(docs, opts(base="no-such-base"))


def test_existing_output_needs_overwrite(docs, tmp_path):
    out = tmp_path / "tok"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(TokengraftError, match="already exists; choose another --out or pass --overwrite"):
        train_to_folder(docs, opts(), out)
    assert (out / "keep.txt").exists()
    train_to_folder(docs, opts(), out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "tokenizer.json").exists()
    assert json.loads((out / "tokengraft_train.json").read_text())["options"]["vocab_size"] == 500


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def test_interrupted_training_leaves_nothing(docs, tmp_path):
    calls = []

    def interrupt(stage: str, done: int, total: int) -> None:
        calls.append((stage, done))
        if stage == "superword merges":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_to_folder(docs, opts(kind="superbpe", vocab_size=700), tmp_path / "tok", progress=interrupt)
    assert calls[-1] == ("superword merges", 64)  # it stopped after some stage-2 progress
    assert _leftovers(tmp_path) == []


def test_interrupted_save_leaves_nothing(docs, tmp_path, monkeypatch):
    import tokengraft.tokenizer.train as train_mod

    def half_write(self, path, *args, **kwargs):
        Path(path, "tokenizer.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod.PreTrainedTokenizerFast, "save_pretrained", half_write)
    with pytest.raises(KeyboardInterrupt):
        train_to_folder(docs, opts(), tmp_path / "tok")
    assert _leftovers(tmp_path) == []


def test_cli_train_writes_folder_and_reports_errors(tmp_path, capsys):
    from tokengraft.cli.main import main

    corpus = tmp_path / "fr.txt"
    corpus.write_text("\n\n".join(corpus_docs()))
    out = tmp_path / "tok"
    argv = ["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", "400", "--kind", "superbpe",
            "--transition", "330", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert len(AutoTokenizer.from_pretrained(str(out))) == 400
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err


def _real(spec: str):
    """A built-in tokenizer or corpus; missing (scripts/setup.sh not run) is a MissingAssetError: a failure."""
    from tokengraft.assets import load_corpus, load_tokenizer

    return load_tokenizer(spec) if ":" not in spec else load_corpus(spec)


def test_real_smollm2_base_smoke():
    """The real path in the default run: SmolLM2's tokenizer as base, LibreOffice French text."""
    base = _real("smollm2-135m")
    texts = _real("libreoffice:fr:train").truncate(150_000).texts()
    tok = train_tokenizer(texts, opts(kind="superbpe", vocab_size=1500), base_tokenizer=base)
    k = 17  # SmolLM2's specials: <|endoftext|>, <|im_start|>, <|im_end|>, 14 code markers
    assert tok.convert_ids_to_tokens(list(range(k))) == base.convert_ids_to_tokens(list(range(k)))
    assert tok.chat_template == base.chat_template and tok.eos_token == base.eos_token == "<|im_end|>"
    held = _real("libreoffice:fr:heldout").documents[0].text
    _byte_view_roundtrip(tok, held)
    assert tok.convert_ids_to_tokens(tok("en 2024")["input_ids"])[-4:] == ["2", "0", "2", "4"]


def test_wordpiece_base_is_refused(docs):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "la": 1, "##s": 2}, unk_token="[UNK]"))
    base = PreTrainedTokenizerFast(tokenizer_object=wp, unk_token="[UNK]")
    with pytest.raises(TokengraftError, match="neither byte-level nor byte-fallback \\(model WordPiece\\)"):
        train_tokenizer(docs, opts(), base_tokenizer=base)


@pytest.mark.parametrize("kind,reason", [("bpe", "no pair left seen 1+ times"),
                                         ("unigram", "Unigram trainer keeps no more pieces than its seed")])
def test_a_short_vocabulary_is_explained_in_the_trainers_own_terms(kind, reason, caplog):
    with caplog.at_level("WARNING", logger="tokengraft.tokenizer.train"):
        tok = train_tokenizer(["ab cd ab"] * 3, TrainOptions(kind=kind, vocab_size=2000, show_progress=False))
    assert len(tok) < 2000
    assert f"supports only {len(tok)} of the 2000 tokens asked for" in caplog.text
    assert reason in caplog.text
