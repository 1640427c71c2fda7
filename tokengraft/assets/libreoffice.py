"""LibreOffice help pages as a document-aligned multilingual corpus.

Debian's ``libreoffice-help-<lang>`` packages ship the same 2,560 help pages in every
language under ``usr/share/libreoffice/help/<lang>/text/**/*.html``; the relative path of a
page is therefore a language-independent id, which is what makes ``libreoffice:de`` and
``libreoffice:en`` parallel text.

Every page wraps its content in the same frame: a ``<head>`` with eleven scripts, a
``<header>`` ("Help for LibreOffice 7.4", module menu), two ``<aside>`` panels (contents
tree, index search box) and a ``<footer>`` of debug info ("This page is: /text/...xhp").
Those repeat on every page, so they are skipped; only the help text in between is kept.
Passages that exist in variants (menu paths for macOS and for other systems, one paragraph
for Writer and another for Calc) are reduced to one variant, as a reader would see it.
"""
from __future__ import annotations

import hashlib
import logging
import textwrap
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from tokengraft.assets.corpus import Document

logger = logging.getLogger(__name__)

# Containers whose whole subtree is page chrome (same on every page) or invisible.
_SKIP = frozenset({"head", "script", "style", "header", "aside", "footer", "nav", "noscript",
                   "button", "label", "title", "template"})
# Elements that end a line of visible text (everything else is inline).
_BLOCK = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "tr",
                    "td", "th", "table", "thead", "tbody", "br", "pre", "section", "article",
                    "blockquote", "dt", "dd", "dl", "hr"})
_SWITCH_CLASSES = frozenset({"switch", "switchinline"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "base", "wbr", "source", "area", "col"})

# Languages are folders named like Debian's package suffix, except English.
_FOLDER_FOR_LANG = {"en": "en-US"}


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str | None]
    children: list["_Node | str"] = field(default_factory=list)


class _TreeBuilder(HTMLParser):
    """A forgiving element tree: an end tag closes the nearest open element of its name."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self._stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, dict(attrs))
        self._stack[-1].children.append(node)
        if tag not in _VOID:
            self._stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._stack[-1].children.append(_Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._stack) - 1, 0, -1):
            if self._stack[depth].tag == tag:
                del self._stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].children.append(data)


class _Lines:
    """Visible text as lines: one per block element, ``<pre>`` kept verbatim."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._buffer: list[str] = []

    def add(self, text: str) -> None:
        self._buffer.append(text)

    def flush(self, pre: bool = False) -> None:
        raw = "".join(self._buffer)
        self._buffer = []
        if pre:  # code keeps its own line breaks and relative indentation
            code = textwrap.dedent(raw.strip("\n")).rstrip()
            self.lines.extend(line.rstrip() for line in code.splitlines() if line.strip())
        elif text := " ".join(raw.split()):
            self.lines.append(text)


def _chosen_alternative(switch: _Node) -> _Node | None:
    """Help pages hold variants of one passage (macOS vs other systems, Writer vs Calc) as
    hidden children of a ``switch``/``switchinline`` span; a script shows one. Keep the
    ``default*`` variant, else the first, so variants are never run together."""
    options = [c for c in switch.children if isinstance(c, _Node) and "hidden" in c.attrs]
    for option in options:
        if (option.attrs.get("id") or "").startswith("default"):
            return option
    return options[0] if options else None


def _render(node: _Node, out: _Lines, pre: bool = False) -> None:
    if node.tag in _SKIP:
        return
    block = node.tag in _BLOCK
    outer_pre, pre = pre, pre or node.tag == "pre"
    if block:
        out.flush(outer_pre)
    chosen = _chosen_alternative(node) if node.attrs.get("class") in _SWITCH_CLASSES else None
    for child in node.children:
        if isinstance(child, str):
            out.add(child)
        elif "hidden" not in child.attrs or child is chosen:
            _render(child, out, pre)
    if block:
        out.flush(pre)


def visible_text(html: str) -> str:
    """The text a reader sees on a help page, one paragraph per line.

    >>> visible_text("<head><title>T</title></head><body><header>menu</header>"
    ...              "<h1>Title</h1><p>Choose <span class='switchinline'><span hidden id='MAC1'>Prefs</span>"
    ...              "<span hidden id='default1'>Tools  -\\n Options</span></span>.</p><footer>debug</footer></body>")
    'Title\\nChoose Tools - Options.'
    """
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    out = _Lines()
    _render(builder.root, out)
    out.flush()
    return "\n".join(out.lines)


def help_root(debian_root: Path) -> Path:
    return debian_root / "usr" / "share" / "libreoffice" / "help"


def installed_languages(root: Path) -> list[str]:
    """Language codes with unpacked help text, as users write them (``en``, not ``en-US``)."""
    if not root.is_dir():
        return []
    back = {folder: lang for lang, folder in _FOLDER_FOR_LANG.items()}
    found = [back.get(p.name, p.name) for p in root.iterdir() if (p / "text").is_dir()]
    return sorted(found)


def language_folder(root: Path, lang: str) -> Path | None:
    """The help folder for ``lang`` (``en`` -> ``en-US``; case-insensitive), or None."""
    wanted = _FOLDER_FOR_LANG.get(lang.lower(), lang)
    for folder in (root / wanted, root / lang):
        if (folder / "text").is_dir():
            return folder
    for folder in root.iterdir() if root.is_dir() else []:
        if folder.name.lower() == wanted.lower() and (folder / "text").is_dir():
            return folder
    return None


def extract_pages(lang_folder: Path) -> list[Document]:
    """Every help page of one language as a document, id ``text/<module>/.../<page>.html``.

    Pages are read in sorted path order; empty pages and pages whose text repeats an
    earlier page exactly (redirect stubs, shared snippets) are dropped.
    """
    seen: set[str] = set()
    docs: list[Document] = []
    paths = sorted((lang_folder / "text").rglob("*.html"))
    for path in paths:
        text = visible_text(path.read_text(encoding="utf-8"))
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
        if not text or digest in seen:
            continue
        seen.add(digest)
        docs.append(Document(path.relative_to(lang_folder).as_posix(), text))
    logger.info("libreoffice %s: %d of %d pages kept", lang_folder.name, len(docs), len(paths))
    return docs
