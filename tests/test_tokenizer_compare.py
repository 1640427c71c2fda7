"""tokengraft tokenizer compare: every number checked on hand-made tokenizers where the
right answer can be counted by hand."""
from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
from transformers import PreTrainedTokenizerFast

from tokenizer_fixtures import sentencepiece_base
from tokengraft.assets.corpus import Corpus, Document
from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.compare import compare_tokenizers, short_labels
from tokengraft.vocab.alphabet import bytes_to_unicode
from tokengraft.tokenizer.report import format_table, plot_report, write_json

B2U = bytes_to_unicode()


def byte_level(extra: dict[str, tuple[str, str]] | None = None) -> PreTrainedTokenizerFast:
    """256 byte symbols + ``<|endoftext|>`` + ``extra`` tokens made by the given merges."""
    vocab = {"<|endoftext|>": 0} | {B2U[b]: b + 1 for b in range(256)}
    merges = []
    for token, pair in (extra or {}).items():
        vocab[token] = len(vocab)
        merges.append(pair)
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def corpus(name: str, *texts: str) -> Corpus:
    return Corpus(name, [Document(f"d{i}", t) for i, t in enumerate(texts)])


def test_bytes_chars_fertility_split_on_single_bytes():
    report = compare_tokenizers({"bytes": byte_level()}, [corpus("c", "ab cd e", "x 12345")])
    s = report.get("bytes", "c")
    assert (s.n_bytes, s.n_chars, s.n_words, s.n_tokens) == (14, 14, 5, 14)
    assert s.bytes_per_token == 1.0 and s.fertility == 14 / 5
    assert s.split_words == 3  # ab, cd, 12345; e and x are single characters
    assert s.digits_per_token == {1: 5}
    assert s.vocab_used == 12 and s.vocab_size == 257  # a b c d e x 1-5 and the space
    assert s.fallback_tokens == 0 and s.unk_tokens == 0


def test_superword_token_leaves_its_words_unsplit():
    tok = byte_level({"de": ("d", "e"), "la": ("l", "a"), "Ġla": ("Ġ", "la"), "deĠla": ("de", "Ġla"),
                      "12": ("1", "2"), "123": ("12", "3")})
    s = compare_tokenizers({"t": tok}, [corpus("c", "de la de 1234")]).get("t", "c")
    # deĠla | Ġ | de | Ġ | 123 | 4
    assert s.n_tokens == 6 and s.n_words == 4
    assert s.split_words == 1  # only 1234
    assert s.digits_per_token == {3: 1, 1: 1} and s.mean_digits == 2.0
    assert s.chars_per_token == 13 / 6


def test_byte_fallback_and_multibyte_rates():
    sp = sentencepiece_base()
    s = compare_tokenizers({"sp": sp}, [corpus("c", "ab 🐶")]).get("sp", "c")
    assert s.n_tokens == 6  # ab, ▁, 4 byte pieces (no <bos>: specials are not counted)
    assert s.fallback_tokens == 4 and s.fallback_rate == 4 / 6
    bl = compare_tokenizers({"b": byte_level()}, [corpus("c", "é")]).get("b", "c")
    assert bl.fallback_tokens == 2 and bl.bytes_per_token == 1.0 and bl.chars_per_token == 0.5


def test_vocabulary_overlap_in_bytes():
    a = byte_level({"Ġt": ("Ġ", "t"), "Ġth": ("Ġt", "h")})
    report = compare_tokenizers({"a": a, "sp": sentencepiece_base()}, [corpus("c", "a")])
    (o,) = report.overlaps
    # sp holds 256 byte pieces, "▁"=b" ", "a", "b", "▁a"=b" a", "ab": b" ", a, b are single bytes in both
    assert (o.a, o.b, o.size_a, o.size_b) == ("a", "sp", 258, 256 + 5 - 3)
    assert o.shared == 256
    assert o.to_dict()["share_of_a"] == pytest.approx(256 / 258)


def test_parallel_premium_aligns_by_id():
    en = Corpus("libreoffice:en:heldout", [Document("p1", "one two"), Document("p2", "three"), Document("only-en", "x" * 50)])
    de = Corpus("libreoffice:de:heldout", [Document("p2", "dreiii"), Document("p1", "eins zwei drei")])
    report = compare_tokenizers({"bytes": byte_level()}, [de, en], parallel=True)
    assert report.reference == "libreoffice:en:heldout" and report.aligned_documents == 2
    assert report.get("bytes", en.name).n_tokens == 12 and report.get("bytes", en.name).premium == 1.0
    assert report.get("bytes", de.name).premium == pytest.approx(20 / 12)
    assert short_labels(report.corpora) == ["de", "en"]


def test_parallel_without_shared_ids_is_refused():
    with pytest.raises(TokengraftError, match="no document id shared"):
        compare_tokenizers({"b": byte_level()}, [corpus("a", "x"), Corpus("b", [Document("other", "y")])], parallel=True)


def test_empty_corpus_is_refused():
    with pytest.raises(TokengraftError, match="corpus e is empty"):
        compare_tokenizers({"b": byte_level()}, [corpus("e", "", " ")])


def test_outputs_table_json_plot(tmp_path):
    en = corpus("bible:web", "In the beginning 12", "God created")
    es = corpus("bible:rv1909", "En el principio 12", "Dios creó")
    tok = byte_level({"Ġt": ("Ġ", "t"), "Ġth": ("Ġt", "h"), "Ġthe": ("Ġth", "e")})
    report = compare_tokenizers({"bytes": byte_level(), "the": tok}, [en, es], parallel=True)
    table = format_table(report)
    assert "token premium vs bible:web" in table and "rv1909" in table
    assert report.get("the", "bible:web").n_tokens == report.get("bytes", "bible:web").n_tokens - 3
    data = json.loads(write_json(report, tmp_path / "r.json").read_text())
    assert data["stats"][0]["premium"] == 1.0 and data["overlaps"][0]["shared"] == 256
    png = plot_report(report, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_cli_compare(tmp_path, capsys):
    from tokengraft.cli.main import main

    folder = tmp_path / "bytes"
    byte_level().save_pretrained(str(folder))
    text = tmp_path / "t.txt"
    text.write_text("hello world 2024\n")
    assert main(["tokenizer", "compare", "--tokenizer", f"b={folder}", "--corpus", str(text),
                 "--json", str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    assert "b " in out and "1.000" in out
    assert json.loads((tmp_path / "o.json").read_text())["stats"][0]["n_tokens"] == 17
