"""Man pages as text: roff markup stripped (a hand-written page) and the real manpages:de corpus."""
from __future__ import annotations

import gzip
import re

import pytest

from tokengraft.assets.manpages import read_pages, roff_to_text

PAGE = r""".\" -*- coding: UTF-8 -*-
.TH LS 1 "September 2022" "GNU coreutils 9.1" "Dienstprogramme für Benutzer"
.de XX
.  this macro body is never text
..
.SH BEZEICHNUNG
ls \- Verzeichnisinhalte auflisten
.SH "ÜBERSICHT"
\fBls\fP [\fI\,OPTION\/\fP]… \" a trailing comment
.PP
Einträge, die mit \(Bq.\(lq beginnen; Gr\(:oße \[u00E4]\e\&.
.TP
\fB\-a\fP, \fB\-\-all\fP
.BR ls (1),
.IR dir (1)
.if n \{\
.ds never text
.\}
.TS
tab(;);
l l.
Spalte;Wert
.TE
.UR https://example.org
Webseite
.UE .
"""


def test_roff_to_text_keeps_what_a_reader_sees() -> None:
    text = roff_to_text(PAGE)
    assert text.splitlines() == [
        "BEZEICHNUNG", "ls - Verzeichnisinhalte auflisten", "", "ÜBERSICHT", "ls [OPTION]…", "",
        "Einträge, die mit „.“ beginnen; Größe ä\\.", "", "-a, --all", "ls(1),", "dir(1)",
        "Spalte Wert", "Webseite", "."]


def test_read_pages_skips_aliases_and_names_pages_by_path(tmp_path) -> None:
    (tmp_path / "man1").mkdir()
    with gzip.open(tmp_path / "man1" / "ls.1.gz", "wt", encoding="utf-8") as fh:
        fh.write(PAGE)
    with gzip.open(tmp_path / "man1" / "dir.1.gz", "wt", encoding="utf-8") as fh:
        fh.write(".so man1/ls.1\n")
    docs = read_pages(tmp_path)
    assert [d.id for d in docs] == ["man1/ls.1"]
    assert docs[0].text.startswith("BEZEICHNUNG\nls - Verzeichnisinhalte")


def test_manpages_de_is_german_text_without_markup() -> None:
    from tokengraft.assets import load_corpus

    held, dev, whole = (load_corpus(f"manpages:de{s}") for s in (":heldout", ":dev", ""))
    assert 1_000_000 < held.num_bytes < whole.num_bytes and dev.num_bytes > 300_000
    assert not {d.id for d in held.documents} & {d.id for d in dev.documents}
    text = "\n".join(held.texts())
    assert len(re.findall(r"(?m)^\.(?:SH|TP|PP|RS|RE|IP|B|I)\b", text)) == 0  # no requests left
    assert text.count("\\f") < 5 and text.count("\\-") < 5  # no font changes, no escaped hyphens
    assert text.count(" und ") > 1000 and "Befehl" in text
