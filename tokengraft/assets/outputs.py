"""Output paths: checked before any work, written whole or not at all, a failed write explained.

Every command that writes calls :func:`check_output_dir` (folders) or
:func:`check_output_file` (a ``--json`` report) before it loads anything, so that a bad
``--out`` fails in a second instead of after minutes of work. The write itself goes through
:func:`output_dir` (a temporary sibling renamed into place, :func:`atomic_dir`) or
:func:`write_text`, and an ``OSError`` on the way (a full disk, a read-only folder) becomes
one line that says what to free, and that the earlier output is untouched.
"""
from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from tokengraft.assets.cache import atomic_dir
from tokengraft.errors import TokengraftError

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def check_output_dir(out: str | os.PathLike[str], *, overwrite: bool, inputs: Mapping[str, object] | None = None,
                     flag: str = "--out") -> Path:
    """Refuse an output folder that cannot or must not be written, before any work.

    ``inputs``: what the command reads, by name (``{"input model": spec}``); the output may
    neither be one of them nor, with ``overwrite``, a folder that holds one of them.
    """
    target = Path(os.path.expanduser(os.fspath(out)))
    if target.exists() and not target.is_dir():
        raise TokengraftError(f"{flag} {target} is a file, not a folder; choose another {flag}")
    for name, spec in (inputs or {}).items():
        source = _local_path(spec)
        if source is None:
            continue
        if source == target.resolve():
            raise TokengraftError(f"{flag} {target} is the {name} ({spec}); write the output to another folder")
        if overwrite and target.exists() and target.resolve() in source.parents:
            raise TokengraftError(f"{flag} {target} holds the {name} ({spec}), which --overwrite would delete; "
                                  f"choose another {flag}")
    if target.exists() and not overwrite:
        raise TokengraftError(f"output folder {target} already exists; choose another {flag} or pass --overwrite")
    _check_parent(target, flag)
    return target


def check_output_file(path: str | os.PathLike[str], *, flag: str, example: str = "result.json") -> Path:
    """Refuse an output file path that is a folder or whose folder cannot be made, before any work."""
    target = Path(os.path.expanduser(os.fspath(path)))
    if target.is_dir():
        raise TokengraftError(f"{flag} {target} is a folder; give a file path such as {target / example}")
    if target.exists() and not os.access(target, os.W_OK):
        raise TokengraftError(f"{flag} {target} is not writable (permission denied); choose another {flag}")
    _check_parent(target, flag)
    return target


def _check_parent(target: Path, flag: str) -> None:
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise TokengraftError(f"{flag} {target} cannot be created: {parent} is a file, not a folder; choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TokengraftError(f"{flag} {target} cannot be created: no permission to write in {parent}; "
                              f"choose another {flag}")


def _local_path(spec: object) -> Path | None:
    if spec is None:
        return None
    path = Path(os.path.expanduser(os.fspath(spec)))  # type: ignore[arg-type]
    return path.resolve() if path.exists() else None


def write_error(exc: OSError, target: Path, *, need_bytes: int | None = None, kept: str = "nothing was kept",
                fix: str = "or choose another --out") -> TokengraftError:
    """One line for a failed write: what failed, what to free (or fix), and what is intact.

    >>> str(write_error(OSError(28, "No space left on device"), Path("/tmp/x"), kept="nothing was kept"))[:40]
    'disk full while writing /tmp/x: free at '
    """
    target = Path(target)
    where = _existing(target.parent)
    if exc.errno in _FULL:
        free = _free_bytes(where)
        amount = f"at least {_size(need_bytes)}" if need_bytes else "space"
        now = f" ({_size(free)} free now)" if free is not None else ""
        return TokengraftError(f"disk full while writing {target}: free {amount} on the disk that holds {where}{now} "
                               f"{fix}; {kept}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        return TokengraftError(f"cannot write {target} ({why} in {where}) {fix}; {kept}")
    reason = exc.strerror or str(exc) or type(exc).__name__
    return TokengraftError(f"could not write {target} ({reason}) {fix}; {kept}")


@contextmanager
def output_dir(out: str | os.PathLike[str], *, overwrite: bool, need_bytes: int | None = None,
               fix: str = "or choose another --out") -> Iterator[Path]:
    """:func:`atomic_dir` whose ``OSError`` (disk full, permission) is one line naming what to free.

    With ``overwrite``, the earlier folder stays as it was until the new one is complete.
    """
    target = Path(out)
    kept = (f"{target} is as it was before" if overwrite and target.exists() else "nothing was kept")
    try:
        with atomic_dir(target, overwrite=overwrite) as tmp:
            yield tmp
    except OSError as exc:
        raise write_error(exc, target, need_bytes=need_bytes, kept=kept, fix=fix) from exc


def write_text(path: str | os.PathLike[str], text: str, *, flag: str = "--json") -> Path:
    """Write a text file whole or not at all (temporary sibling, then ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, target, fix=f"or choose another {flag}",
                          kept="the results above were printed but not saved") from exc
    return target


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder`` (0 when it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
