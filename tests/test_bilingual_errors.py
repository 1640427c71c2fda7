"""WECHSEL's dictionary: a language without one, and an empty one, are clear errors."""
from __future__ import annotations

import gzip

import pytest

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary import bilingual


def test_language_without_a_dictionary_is_an_error(monkeypatch):
    monkeypatch.setattr(bilingual, "find_dictionary", lambda s, t: None)
    with pytest.raises(TokengraftError, match="no bilingual dictionary en->sv: install Debian's dict-freedict-eng-swe"):
        bilingual.load_dictionary("en", "sv")
    with pytest.raises(TokengraftError, match="target language"):
        bilingual.load_dictionary("en", None)


def test_empty_dictionary_is_an_error(monkeypatch, tmp_path):
    index, data = tmp_path / "freedict-eng-xxx.index", tmp_path / "freedict-eng-xxx.dict.dz"
    index.write_text("", encoding="utf-8")
    data.write_bytes(gzip.compress(b""))
    monkeypatch.setattr(bilingual, "find_dictionary", lambda s, t: (index, data))
    with pytest.raises(TokengraftError, match="no single-word entries"):
        bilingual.load_dictionary("en", "xx")


def test_real_dictionaries_load():
    """setup.sh unpacks FreeDict eng-deu and eng-fra; both give thousands of word pairs."""
    for lang in ("de", "fr"):
        pairs = bilingual.load_dictionary("en", lang)
        assert len(pairs) > 5000 and all(" " not in a and " " not in b for a, b in pairs[:100])
