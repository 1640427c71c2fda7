"""Corpus specs -> :class:`Corpus`, offline.

A spec is one of::

    notes.txt                  one document (any text file)
    docs/                      every text file below, sorted, id = relative path
    'data/**/*.md'             a glob, id = path relative to the part before the wildcard
    rows.jsonl[#column]        one document per row (.jsonl/.json/.csv/.parquet), id = row index
    libreoffice:<lang>[:split]            LibreOffice help pages (en, de, fr, es, ru, ...)
    manpages:<lang>[:split]               Debian's translated manual pages (de), roff stripped to text
    bible:web|bible:rv1909[:split]        verse-aligned English / Spanish bibles
    python-stdlib[:split]                 the Python standard library's own source

where ``:split`` is ``:train`` (= ``:dev`` + ``:fit``) or ``:heldout``; ``:dev`` is the slice of
train on which every weight and hyperparameter is chosen, ``:fit`` the rest of train.

Built-in corpora come from Debian packages that ``scripts/setup.sh`` unpacks into the cache;
the extracted text is cached as ``cache_dir("corpora")/<name>.jsonl`` so that the second load
is a plain file read. Splits are deterministic (:mod:`tokengraft.assets.splits`).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tokengraft.assets import bible, libreoffice, manpages
from tokengraft.assets.cache import cache_dir, debian_root
from tokengraft.assets.corpus import Corpus, Document
from tokengraft.assets.splits import SPLITS, select_split
from tokengraft.assets.textfiles import (TABLE_SUFFIXES, docs_from_file, docs_from_folder, docs_from_glob,
                                         docs_from_paths, docs_from_table, split_column)
from tokengraft.errors import TokengraftError, missing_package

logger = logging.getLogger(__name__)

# Bump when extraction changes, so stale caches are rebuilt instead of silently reused.
EXTRACTOR_VERSION = 1
_STDLIB_SKIP = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})


@dataclass(frozen=True)
class BuiltinCorpus:
    spec: str
    description: str
    source: str  # what provides it (a Debian package or the interpreter)


BUILTIN_CORPORA: dict[str, BuiltinCorpus] = {
    "libreoffice:<lang>": BuiltinCorpus(
        "libreoffice:<lang>", "LibreOffice help pages, ~5 MB per language, aligned by page id",
        "Debian libreoffice-help-<lang>"),
    "manpages:<lang>": BuiltinCorpus(
        "manpages:<lang>", "Debian's translated manual pages as text, ~9 MB in German (out-of-domain technical text)",
        "Debian manpages-<lang>"),
    "bible:web": BuiltinCorpus("bible:web", "World English Bible, one document per verse (id Gen.1.1)", "Debian sword-text-web"),
    "bible:rv1909": BuiltinCorpus("bible:rv1909", "Reina-Valera 1909 (Spanish), verse-aligned with bible:web", "Debian sword-text-sparv"),
    "python-stdlib": BuiltinCorpus("python-stdlib", "the Python standard library's .py files (no tests)", "the running Python"),
}
_PREFIXES = ("libreoffice", "manpages", "bible", "python-stdlib")


def load_corpus(spec: str | os.PathLike[str]) -> Corpus:
    """Resolve ``spec`` to a non-empty :class:`Corpus` named after the spec.

    >>> load_corpus("libreoffice:de:heldout").documents[0].id  # doctest: +SKIP
    'text/sbasic/guide/...html'
    """
    name = os.fspath(spec)
    start = time.perf_counter()
    builtin = _builtin_parts(name)
    docs = _load_builtin(builtin) if builtin else _load_local(name)
    corpus = Corpus(name, docs, _language(builtin) if builtin else None)
    if not docs or corpus.num_bytes == 0:
        raise TokengraftError(f"corpus {name!r} is empty (no documents with text); check the path or split")
    logger.info("corpus %s: %d documents, %d bytes in %.2fs", name, len(docs), corpus.num_bytes, time.perf_counter() - start)
    return corpus


def load_corpora(specs: list[str] | tuple[str, ...], max_bytes: int | None = None) -> list[Corpus]:
    """Each spec loaded and cut to its first ``max_bytes`` UTF-8 bytes (None: whole)."""
    if max_bytes is not None and max_bytes <= 0:
        raise TokengraftError(f"max_bytes must be positive, got {max_bytes}; leave it unset to keep whole corpora")
    return [load_corpus(spec).truncate(max_bytes) for spec in specs]


# --- local files -----------------------------------------------------------------------

def _load_local(spec: str) -> list[Document]:
    path_part, column = split_column(spec)
    path = Path(os.path.expanduser(path_part))
    if path.is_dir():
        return docs_from_folder(path)
    if path.is_file():
        if path.suffix.lower() in TABLE_SUFFIXES:
            return docs_from_table(path, column)
        return docs_from_file(path)
    if any(c in spec for c in "*?["):
        return docs_from_glob(spec)
    if ":" in spec and os.sep not in spec.split(":", 1)[0]:
        known = ", ".join(BUILTIN_CORPORA)
        raise TokengraftError(f"unknown corpus {spec!r}; use a file, folder, glob, table or a built-in: {known}")
    raise TokengraftError(f"corpus file or folder {spec!r} does not exist; check the path (built-ins: {', '.join(BUILTIN_CORPORA)})")


# --- built-ins -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Builtin:
    kind: str          # libreoffice | bible | python-stdlib
    name: str | None   # language or bible name
    split: str | None  # train | heldout | None (all)


def _builtin_parts(spec: str) -> _Builtin | None:
    head, _, rest = spec.partition(":")
    if head not in _PREFIXES or Path(spec).exists():
        return None
    parts = rest.split(":") if rest else []
    split = parts.pop() if parts and parts[-1] in SPLITS else None
    if head == "python-stdlib":
        if parts:
            raise TokengraftError(f"bad corpus spec {spec!r}; use python-stdlib[:train|:heldout|:dev|:fit]")
        return _Builtin(head, None, split)
    if len(parts) != 1 or not parts[0]:
        shape = {"libreoffice": "libreoffice:<lang>", "manpages": "manpages:<lang>"}.get(head, "bible:web|bible:rv1909")
        raise TokengraftError(f"bad corpus spec {spec!r}; use {shape}[:train|:heldout|:dev|:fit]")
    return _Builtin(head, parts[0], split)


def corpus_language(spec: str | os.PathLike[str] | None) -> str | None:
    """The language of a built-in corpus spec without loading it (``libreoffice:fr:heldout`` -> ``fr``)."""
    builtin = _builtin_parts(str(spec)) if spec else None
    return _language(builtin) if builtin else None


def _language(spec: _Builtin) -> str | None:
    """``libreoffice:pt-br`` -> ``pt``; a bible's own language; code has none."""
    if spec.kind == "libreoffice":
        return (spec.name or "").split("-")[0].lower() or None
    if spec.kind == "bible":
        source = bible.BIBLES.get((spec.name or "").lower())
        return source.language if source else None
    return None


def _load_builtin(spec: _Builtin) -> list[Document]:
    if spec.kind == "libreoffice":
        return select_split(_libreoffice_docs(spec.name or ""), spec.split)
    if spec.kind == "manpages":
        return select_split(_manpage_docs(spec.name or ""), spec.split)
    if spec.kind == "bible":
        return select_split(_bible_docs(spec.name or ""), spec.split, key=bible.chapter_key)
    return select_split(_stdlib_docs(), spec.split)


def _libreoffice_docs(lang: str) -> list[Document]:
    root = libreoffice.help_root(debian_root())
    installed = libreoffice.installed_languages(root)
    if not installed:
        raise missing_package(f"corpus libreoffice:{lang}", f"libreoffice-help-{lang.lower()} (Debian)")
    folder = libreoffice.language_folder(root, lang)
    if folder is None:
        raise TokengraftError(
            f"libreoffice language {lang!r} is not installed (installed: {', '.join(installed)}); "
            f"add libreoffice-help-{lang.lower()} to DEBS in scripts/setup.sh and run it")
    cache = cache_dir("corpora", f"libreoffice-v{EXTRACTOR_VERSION}-{folder.name}.jsonl")
    return _cached(cache, lambda: libreoffice.extract_pages(folder))


def _manpage_docs(lang: str) -> list[Document]:
    folder = manpages.man_root(debian_root(), lang.lower())
    if not folder.is_dir():
        raise missing_package(f"corpus manpages:{lang}", f"manpages-{lang.lower()} (Debian)")
    cache = cache_dir("corpora", f"manpages-v{EXTRACTOR_VERSION}-{lang.lower()}.jsonl")
    return _cached(cache, lambda: manpages.read_pages(folder))


def _bible_docs(name: str) -> list[Document]:
    source = bible.BIBLES.get(name.lower())
    if source is None:
        raise TokengraftError(f"unknown bible {name!r}; use one of: {', '.join('bible:' + b for b in bible.BIBLES)}")
    root = bible.sword_root(debian_root())
    if not bible.module_installed(root, source.module):
        raise missing_package(f"corpus bible:{name}", f"{source.debian_package} (Debian)")
    if importlib.util.find_spec("pysword") is None:
        raise missing_package(f"corpus bible:{name}", "pysword")
    cache = cache_dir("corpora", f"bible-v{EXTRACTOR_VERSION}-{name.lower()}.jsonl")
    return _cached(cache, lambda: bible.read_verses(root, source.module))


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_docs() -> list[Document]:
    """The standard library's own modules; tests and installed packages are not its source."""
    root = stdlib_root()
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _STDLIB_SKIP and not d.startswith("."))
        paths.extend(Path(folder) / f for f in files if f.endswith(".py"))
    return docs_from_paths(sorted(paths), root)


# --- jsonl cache -----------------------------------------------------------------------

def _cached(path: Path, build: Callable[[], list[Document]]) -> list[Document]:
    if path.is_file():
        return read_jsonl(path)
    start = time.perf_counter()
    docs = build()
    write_jsonl(path, docs)
    logger.info("cached %d documents in %s (%.1fs)", len(docs), path, time.perf_counter() - start)
    return docs


def read_jsonl(path: Path) -> list[Document]:
    stat = path.stat()
    return list(_read_jsonl_memo(str(path), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_jsonl_memo(path: str, size: int, mtime_ns: int) -> tuple[Document, ...]:
    """Parsed once per process (size and mtime in the key notice a rewritten file)."""
    with open(path, encoding="utf-8") as handle:
        return tuple(Document(r["id"], r["text"]) for r in map(json.loads, handle))


def write_jsonl(path: Path, docs: list[Document]) -> None:
    """Write whole or not at all: a temporary sibling renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for doc in docs:
                handle.write(json.dumps({"id": doc.id, "text": doc.text}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
