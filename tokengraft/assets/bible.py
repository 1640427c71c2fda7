"""Verse-aligned bibles from SWORD modules (Debian ``sword-text-*``), read with ``pysword``.

One document per verse, id = the OSIS reference ``Gen.1.1``. Verses, not chapters, are
the unit because a verse is the finest unit both translations share: token premium and
other parallel-text measures compare verse by verse, and chapters are recovered by
grouping ids (``Gen.1.*``). The id is built from the book's OSIS name and the module's
versification, so ``bible:web`` (NRSVA versification, with deuterocanon) and
``bible:rv1909`` (KJV versification) align on every verse both number the same way.
Verses that are empty in a module (WEB leaves out e.g. Matt.17.21, keeping a footnote)
are dropped.
"""
from __future__ import annotations

import functools
import html
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tokengraft.assets.corpus import Document

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BibleSource:
    module: str          # SWORD module name in mods.d
    debian_package: str  # package that ships it
    language: str
    description: str


BIBLES: dict[str, BibleSource] = {
    "web": BibleSource("engWEB2015eb", "sword-text-web", "en", "World English Bible (2020), public domain"),
    "rv1909": BibleSource("spaRV1909eb", "sword-text-sparv", "es", "Reina-Valera 1909, public domain"),
}

# Footnotes, alternative readings, catch words and editorial headings (non-canonical
# titles, speaker labels) are not the verse's running text; WEB has them, RV1909 does not.
_DROP_WITH_CONTENT = re.compile(
    r"<(note|rdg|catchWord|speaker)\b[^>]*?(?<!/)>.*?</\1>"
    r"|<title\b(?![^>]*canonical=\"true\")[^>]*?(?<!/)>.*?</title>",
    re.DOTALL,
)
# Tags that sit inside running text and never separate words.
_INLINE = r"w|q|transChange|name|seg|reference|divineName|hi|foreign|abbr|added|inscription|mentioned"
_INLINE_TAG = re.compile(rf"</?(?:{_INLINE})\b[^>]*>")
_ANY_TAG = re.compile(r"<[^>]*>")
# The end of a book's div: what follows (WEB's glossary after Rev.22.21) is not scripture.
_BOOK_END = re.compile(r'<div\b(?=[^>]*\beID=)(?=[^>]*type="book")[^>]*>')
_GAP = "\x00"
_GAPS = re.compile(r"[\x00\s]*\x00[\x00\s]*")
_OPENERS = "“‘\"'([¡¿«"


def _join_gap(match: re.Match[str]) -> str:
    """A removed note or line tag between two words becomes a space, otherwise nothing.

    WEB writes ``God<note>...</note><w>created</w>`` with no space of its own, so dropping
    the note must put one back; before punctuation (``Behold<note/>,``) it must not.
    """
    if any(c.isspace() for c in match.group()):
        return " "
    text, start, end = match.string, match.start(), match.end()
    left = text[start - 1] if start > 0 else ""
    right = text[end] if end < len(text) else ""
    if left and not left.isspace() and left not in _OPENERS and (right.isalnum() or (right and right in _OPENERS)):
        return " "
    return ""


def clean_osis(raw: str) -> str:
    """Plain verse text from OSIS markup.

    >>> clean_osis('<w lemma="strong:H430">God</w><note placement="foot">Elohim</note><w>created</w> it. ')
    'God created it.'
    """
    end = _BOOK_END.search(raw)
    text = _DROP_WITH_CONTENT.sub(_GAP, raw[: end.start()] if end else raw)
    text = _INLINE_TAG.sub("", text)
    text = _ANY_TAG.sub(_GAP, text)
    text = _GAPS.sub(_join_gap, text)
    return " ".join(html.unescape(text).split())


def sword_root(debian_root: Path) -> Path:
    return debian_root / "usr" / "share" / "sword"


def module_installed(root: Path, module: str) -> bool:
    return (root / "mods.d" / f"{module.lower()}.conf").is_file() or (root / "mods.d" / f"{module}.conf").is_file()


def read_verses(root: Path, module: str) -> list[Document]:
    """Every non-empty verse of ``module`` in canonical order, id ``Book.chapter.verse``."""
    from pysword.modules import SwordModules

    modules = SwordModules(str(root))
    modules.parse_modules()
    bible = modules.get_bible_from_module(module)
    _memoize_blocks(bible)
    docs = []
    for books in bible.get_structure().get_books().values():
        for book in books:
            for chapter, count in enumerate(book.chapter_lengths, 1):
                for verse in range(1, count + 1):
                    raw = "".join(bible.get_iter(books=[book.name], chapters=[chapter], verses=[verse], clean=False))
                    text = clean_osis(raw)
                    if text:
                        docs.append(Document(f"{book.osis_name}.{chapter}.{verse}", text))
    logger.info("bible %s: %d verses", module, len(docs))
    return docs


def chapter_key(doc: Document) -> str:
    """Split key: the chapter (``Gen.1``), so a held-out chapter is held out whole."""
    return doc.id.rsplit(".", 1)[0]


def _memoize_blocks(bible: object) -> None:
    """Cache decompressed blocks: these modules compress a whole book per block, and
    pysword decompresses the block again for every verse (two minutes instead of two seconds)."""
    method = getattr(bible, "_decompressed_text", None)
    if method is not None:
        bible._decompressed_text = functools.lru_cache(maxsize=4)(method)  # type: ignore[attr-defined]
