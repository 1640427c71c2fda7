"""Documents from the user's own files: text files, folders, globs and tables.

Text is decoded as strict UTF-8: a byte that is not UTF-8 is an error naming the file and
the offset, never a silent replacement character, because a replaced byte would change
the bytes that bits-per-byte is measured on.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
from pathlib import Path

from tokengraft.assets.corpus import Document
from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
DEFAULT_COLUMN = "text"
_SNIFF_BYTES = 8192


def decode_utf8(raw: bytes, where: str | Path) -> str:
    """``raw`` as text, or an error that names ``where`` and the first bad byte offset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TokengraftError(
            f"{where} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "convert it to UTF-8 first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark is metadata, not text


def is_binary(path: Path) -> bool:
    """A NUL byte in the first 8 KB marks a binary file (images, archives, .pyc)."""
    with path.open("rb") as handle:
        return b"\0" in handle.read(_SNIFF_BYTES)


def read_text_file(path: Path) -> str:
    if is_binary(path):
        raise TokengraftError(f"{path} is a binary file, not text; give a text file, a folder or a table (.jsonl/.csv/.parquet)")
    return decode_utf8(path.read_bytes(), path)


def docs_from_file(path: Path) -> list[Document]:
    """One document for the whole file, id = the file name."""
    return [Document(path.name, read_text_file(path))]


def _text_files_below(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .venv, caches
        found.extend(Path(root) / f for f in files if not f.startswith("."))
    return sorted(found)


def docs_from_paths(paths: list[Path], base: Path) -> list[Document]:
    """One document per text file (binary files skipped, empty ones dropped), id relative to ``base``."""
    docs = []
    skipped = 0
    for path in paths:
        if is_binary(path):
            skipped += 1
            continue
        text = decode_utf8(path.read_bytes(), path)
        if text:
            docs.append(Document(path.relative_to(base).as_posix(), text))
    if skipped:
        logger.info("skipped %d binary files under %s", skipped, base)
    return docs


def docs_from_folder(folder: Path) -> list[Document]:
    return docs_from_paths(_text_files_below(folder), folder)


def glob_base(pattern: str) -> Path:
    """The folder part of ``pattern`` before its first wildcard (ids are relative to it)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def docs_from_glob(pattern: str) -> list[Document]:
    paths = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True))
    files = [p for p in paths if p.is_file()]
    if not files:
        raise TokengraftError(f"the pattern {pattern!r} matches no files; check the path (use ** to search subfolders)")
    return docs_from_paths(files, glob_base(os.path.expanduser(pattern)))


def split_column(spec: str) -> tuple[str, str]:
    """``data.jsonl#body`` -> (``data.jsonl``, ``body``); no ``#`` -> the default column."""
    path, sep, column = spec.rpartition("#")
    if sep and path.lower().endswith(TABLE_SUFFIXES):
        return path, column or DEFAULT_COLUMN
    return spec, DEFAULT_COLUMN


def docs_from_table(path: Path, column: str = DEFAULT_COLUMN) -> list[Document]:
    """One document per row of a ``.jsonl/.json/.csv/.parquet`` file, id = row index.

    Rows whose cell is null or empty are skipped (their index is not reused, so ids stay
    the row numbers of the file).
    """
    values, columns = _read_column(path, column)
    if values is None:
        raise TokengraftError(f"{path} has no column {column!r} (columns: {', '.join(columns) or 'none'}); choose one with {path}#COLUMN")
    docs = []
    for row, value in enumerate(values):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise TokengraftError(f"column {column!r} of {path} holds {type(value).__name__} values in row {row}, "
                                  f"not text; choose a text column with {path}#COLUMN")
        docs.append(Document(str(row), value))
    return docs


def _read_column(path: Path, column: str) -> tuple[list | None, list[str]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_column(path, column)
    text = decode_utf8(path.read_bytes(), path)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    elif suffix == ".jsonl":
        rows = [_json_line(line, path, n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        columns = sorted({k for r in rows for k in r})
    else:
        rows, columns = _json_records(text, path)
    if column not in columns:
        return None, columns
    return [r.get(column) for r in rows], columns


def _json_line(line: str, path: Path, number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise TokengraftError(f"{path} line {number} is not valid JSON ({err.msg}); fix the line or remove it") from None
    if not isinstance(record, dict):
        raise TokengraftError(f"{path} line {number} is a JSON {type(record).__name__}, not an object with a text field")
    return record


def _json_records(text: str, path: Path) -> tuple[list[dict], list[str]]:
    """A ``.json`` file: a list of objects, or an object of equal-length columns."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TokengraftError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}); "
                              "use one object per line in a .jsonl file") from None
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return data, sorted({k for r in data for k in r})
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        length = max((len(v) for v in data.values()), default=0)
        rows = [{k: v[i] if i < len(v) else None for k, v in data.items()} for i in range(length)]
        return rows, sorted(data)
    raise TokengraftError(f"{path} is neither a list of objects nor an object of columns; "
                          "write it as .jsonl with one {\"text\": ...} per line")


def _parquet_column(path: Path, column: str) -> tuple[list | None, list[str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TokengraftError("reading .parquet needs pyarrow; run: pip install 'tokengraft[data]'") from None
    try:
        schema = pq.read_schema(path)
    except Exception as err:  # pyarrow raises its own ArrowInvalid for damaged files
        raise TokengraftError(f"{path} is not a readable parquet file ({type(err).__name__}); check the file") from None
    if column not in schema.names:
        return None, list(schema.names)
    return pq.read_table(path, columns=[column]).column(column).to_pylist(), list(schema.names)
