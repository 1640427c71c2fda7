"""Corpus specs: local files, tables, errors, and the built-in Debian/stdlib corpora."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokengraft.assets import corpora, load_corpora, load_corpus
from tokengraft.assets.bible import BIBLES, chapter_key, clean_osis, module_installed, sword_root
from tokengraft.assets.cache import debian_root
from tokengraft.assets.corpus import Document
from tokengraft.assets.libreoffice import help_root, installed_languages, visible_text
from tokengraft.assets.splits import DEV_PER_MILLE, HELDOUT_PER_MILLE, is_heldout, select_split, split_of
from tokengraft.errors import MissingAssetError, TokengraftError


def test_setup_unpacked_the_text_packages():
    """The real-text tests below need these; missing ones are a failure here, never a skip."""
    assert {"de", "en", "fr"} <= set(installed_languages(help_root(debian_root()))), \
        "libreoffice-help-de/en/fr not unpacked; run bash scripts/setup.sh"
    assert all(module_installed(sword_root(debian_root()), b.module) for b in BIBLES.values()), \
        "sword-text-web/sparv not unpacked; run bash scripts/setup.sh"


# --- local files -------------------------------------------------------------------------

def test_text_file_is_one_document(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("héllo\nwörld\n", encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.name == str(path)
    assert corpus.documents == [Document("notes.md", "héllo\nwörld\n")]
    assert corpus.num_bytes == len("héllo\nwörld\n".encode())


def test_byte_order_mark_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfabc")
    assert load_corpus(tmp_path / "bom.txt").texts() == ["abc"]


def test_folder_sorted_relative_ids_skips_binary_hidden_and_empty(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("zed")
    (tmp_path / "a.txt").write_text("aye")
    (tmp_path / "b" / "empty.txt").write_text("")
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: x")
    corpus = load_corpus(str(tmp_path))
    assert [d.id for d in corpus.documents] == ["a.txt", "b/z.txt"]
    assert corpus.texts() == ["aye", "zed"]


def test_glob_ids_relative_to_fixed_part(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "one.md").write_text("1")
    (tmp_path / "d" / "e" / "two.md").write_text("2")
    (tmp_path / "d" / "e" / "skip.txt").write_text("x")
    corpus = load_corpus(f"{tmp_path}/d/**/*.md")
    assert [(d.id, d.text) for d in corpus.documents] == [("e/two.md", "2"), ("one.md", "1")]


def test_jsonl_default_and_chosen_column(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"text": "first", "body": "B0"}, {"text": None, "body": "B1"}, {"text": "third", "body": "B2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [(d.id, d.text) for d in load_corpus(path).documents] == [("0", "first"), ("2", "third")]
    assert load_corpus(f"{path}#body").texts() == ["B0", "B1", "B2"]


def test_json_csv_and_parquet_tables(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text(json.dumps([{"text": "a"}, {"text": "b"}]))
    (tmp_path / "cols.json").write_text(json.dumps({"text": ["x", "y"], "n": [1, 2]}))
    (tmp_path / "t.csv").write_text("id,text\n1,\"hello, world\"\n2,line\n", encoding="utf-8")
    assert load_corpus(tmp_path / "t.json").texts() == ["a", "b"]
    assert load_corpus(tmp_path / "cols.json").texts() == ["x", "y"]
    assert load_corpus(tmp_path / "t.csv").texts() == ["hello, world", "line"]
    import pyarrow as pa  # tokengraft[data], installed by scripts/setup.sh
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["p0", "p1"], "text": ["t0", "t1"]}), tmp_path / "t.parquet")
    assert load_corpus(f"{tmp_path / 't.parquet'}#content").texts() == ["p0", "p1"]


def test_load_corpora_truncates_each(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("ü" * 10)  # 20 bytes
    (tmp_path / "b.txt").write_text("abc")
    out = load_corpora([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], max_bytes=5)
    assert [c.num_bytes for c in out] == [4, 3]  # cut at a character boundary, never inside "ü"
    assert [c.num_bytes for c in load_corpora([str(tmp_path / "b.txt")])] == [3]


# --- errors ------------------------------------------------------------------------------

def test_non_utf8_names_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("abc café".encode("latin-1"))
    with pytest.raises(TokengraftError, match=r"latin1\.txt is not UTF-8 text \(byte 0xe9 at offset 7\)"):
        load_corpus(path)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "bad.txt").write_bytes(b"ok\xff")
    with pytest.raises(TokengraftError, match=r"bad\.txt is not UTF-8 .*offset 2"):
        load_corpus(tmp_path / "dir")


@pytest.mark.parametrize("content, spec_suffix, message", [
    (None, "", r"does not exist"),
    ("", "", r"is empty"),
    ("{\"a\": 1}\n", "#text", r"has no column 'text' \(columns: a\)"),
    ("{\"text\": 5}\n", "", r"holds int values in row 0"),
    ("{\"text\": \"x\"}\nnot json\n", "", r"line 2 is not valid JSON"),
    ("[1, 2]\n", "", r"line 1 is a JSON list"),
])
def test_bad_files(tmp_path: Path, content: str | None, spec_suffix: str, message: str) -> None:
    path = tmp_path / ("x.jsonl" if content and content.strip() else "x.txt")
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokengraftError, match=message):
        load_corpus(f"{path}{spec_suffix}")


def test_binary_file_glob_without_match_and_unknown_spec(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2")
    with pytest.raises(TokengraftError, match="binary file"):
        load_corpus(tmp_path / "blob.bin")
    with pytest.raises(TokengraftError, match="matches no files"):
        load_corpus(f"{tmp_path}/*.nothing")
    with pytest.raises(TokengraftError, match=r"unknown corpus 'wikipedia:en'.*libreoffice:<lang>"):
        load_corpus("wikipedia:en")
    with pytest.raises(TokengraftError, match="empty"):
        (tmp_path / "empty").mkdir()
        load_corpus(tmp_path / "empty")


@pytest.mark.parametrize("spec, message", [
    ("libreoffice", r"use libreoffice:<lang>\[:train\|:heldout\|:dev\|:fit\]"),
    ("libreoffice:de:fr", r"bad corpus spec"),
    ("bible:kjv", r"unknown bible 'kjv'; use one of: bible:web, bible:rv1909"),
    ("python-stdlib:extra", r"use python-stdlib\[:train\|:heldout\|:dev\|:fit\]"),
])
def test_bad_builtin_specs(spec: str, message: str) -> None:
    with pytest.raises(TokengraftError, match=message):
        load_corpus(spec)


def test_missing_debian_data_names_package_and_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpora, "debian_root", lambda: tmp_path)
    with pytest.raises(MissingAssetError, match=r"libreoffice-help-de \(Debian\).*run: bash scripts/setup.sh"):
        load_corpus("libreoffice:de")
    with pytest.raises(MissingAssetError, match=r"sword-text-web \(Debian\).*bash scripts/setup.sh"):
        load_corpus("bible:web")


def test_unknown_language_lists_installed() -> None:
    with pytest.raises(TokengraftError, match=r"language 'xx' is not installed \(installed: .*de.*en"):
        load_corpus("libreoffice:xx")


# --- splits ------------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_about_ten_percent() -> None:
    docs = [Document(f"page{i}.html", "t") for i in range(4000)]
    train, held = select_split(docs, "train"), select_split(docs, "heldout")
    assert len(train) + len(held) == 4000
    assert not {d.id for d in train} & {d.id for d in held}
    assert abs(len(held) / 4000 - HELDOUT_PER_MILLE / 1000) < 0.02
    assert is_heldout("page7.html") == is_heldout("page7.html")
    with pytest.raises(TokengraftError, match="unknown split"):
        select_split(docs, "test")


def test_dev_and_fit_partition_train_and_dev_is_about_five_percent() -> None:
    docs = [Document(f"page{i}.html", "t") for i in range(4000)]
    train, dev, fit = (select_split(docs, s) for s in ("train", "dev", "fit"))
    held = {d.id for d in select_split(docs, "heldout")}
    assert {d.id for d in dev} | {d.id for d in fit} == {d.id for d in train}
    assert not {d.id for d in dev} & {d.id for d in fit}
    assert not held & {d.id for d in dev}
    assert abs(len(dev) / 4000 - DEV_PER_MILLE / 1000) < 0.015
    assert [split_of(d.id) for d in dev] == ["dev"] * len(dev)


# --- built-ins ---------------------------------------------------------------------------

def test_visible_text_drops_chrome_and_keeps_one_variant() -> None:
    html = ("<html><head><title>T</title><script>x()</script></head><body><header>Help 7.4</header>"
            "<aside>Contents</aside><div id='DisplayArea'><h1>Title</h1><p>Choose <span class='switchinline'>"
            "<span hidden='true' id='MACx'>Prefs</span><span hidden='true' id='defaultx'>Tools - Options</span>"
            "</span>.</p><pre><code>\n    Sub A\n        B\n    End Sub\n</code></pre><p>a &amp; b</p></div>"
            "<footer>This page is: x.xhp</footer></body></html>")
    assert visible_text(html) == "Title\nChoose Tools - Options.\nSub A\n    B\nEnd Sub\na & b"


def test_libreoffice_splits_disjoint_and_aligned_across_languages() -> None:
    de_all, de_train, de_held = (load_corpus(f"libreoffice:de{s}") for s in ("", ":train", ":heldout"))
    en_held = load_corpus("libreoffice:en:heldout")
    train_ids, held_ids = set(de_train.by_id()), set(de_held.by_id())
    assert not train_ids & held_ids
    assert train_ids | held_ids == set(de_all.by_id())
    assert 0.07 < len(held_ids) / len(de_all.documents) < 0.13
    assert len(de_all.documents) > 2000 and de_all.num_bytes > 3_000_000
    # The same pages are held out in both languages; only pages one language dropped as
    # duplicates or empty may differ.
    shared = held_ids & set(en_held.by_id())
    assert len(shared) >= 0.95 * min(len(held_ids), len(en_held.documents))
    page = "text/swriter/main0215.html"
    assert page in de_all.by_id() and "Symbolleiste Rahmen" in de_all.by_id()[page]
    assert not any("Help content debug info" in d.text or "LibreOffice 7.4" in d.text[:40] for d in de_all.documents[:200])
    assert len(set(de_all.texts())) == len(de_all.documents)  # duplicates dropped


def test_clean_osis_restores_spaces_and_drops_notes() -> None:
    raw = ('<div type="x-milestone" sID="pv1"/><w lemma="s:1">God</w><note placement="foot">'
           '<reference>1:1 </reference>Elohim.</note><w>created</w>, “<w>Behold</w>,<note>n</note> '
           '<title type="x-section">Heading</title><title canonical="true" type="psalm">A Psalm.</title> it &amp; me. '
           '<chapter eID="Rev.22"/><div canonical="true" eID="g1" osisID="Rev" type="book"/> Glossary text')
    assert clean_osis(raw) == "God created, “Behold, A Psalm. it & me."
    assert chapter_key(Document("1John.3.16", "x")) == "1John.3"


def test_bibles_align_by_verse_and_split_by_chapter() -> None:
    web, rv = load_corpus("bible:web"), load_corpus("bible:rv1909")
    web_ids, rv_ids = web.by_id(), rv.by_id()
    assert web_ids["Gen.1.1"] == "In the beginning, God created the heavens and the earth."
    assert rv_ids["Gen.1.1"] == "EN el principio crió Dios los cielos y la tierra."
    assert "Porque de tal manera amó Dios al mundo" in rv_ids["John.3.16"]
    assert len(set(web_ids) & set(rv_ids)) > 31_000  # the shared Protestant canon, verse by verse
    assert "Glossary" not in web_ids["Rev.22.21"]
    held = load_corpus("bible:rv1909:heldout")
    train = load_corpus("bible:rv1909:train")
    chapters_held = {chapter_key(d) for d in held.documents}
    assert not chapters_held & {chapter_key(d) for d in train.documents}
    assert len(held.documents) + len(train.documents) == len(rv.documents)
    web_chapters = {chapter_key(d) for d in web.documents}
    assert chapters_held & web_chapters <= {chapter_key(d) for d in load_corpus("bible:web:heldout").documents}


def test_python_stdlib_sources_without_tests() -> None:
    corpus = load_corpus("python-stdlib")
    ids = set(corpus.by_id())
    assert "os.py" in ids and "json/decoder.py" in ids
    assert not any(part in ("test", "tests", "site-packages") for i in ids for part in i.split("/")[:-1])
    held = load_corpus("python-stdlib:heldout")
    assert 0 < len(held.documents) < 0.2 * len(corpus.documents)
