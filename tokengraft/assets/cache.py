"""Where tokengraft keeps converted assets: ``$TOKENGRAFT_CACHE`` or ``~/.cache/tokengraft``."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("TOKENGRAFT_CACHE", Path.home() / ".cache" / "tokengraft"))
    return root.joinpath(*parts)


def debian_root() -> Path:
    """Folder into which scripts/setup.sh unpacks the Debian text packages."""
    return cache_dir("debian", "root")


@contextmanager
def atomic_dir(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success rename it to ``target``.

    Output folders are written whole or not at all: an exception (or Ctrl-C) inside the
    block removes the temporary folder and leaves ``target`` as it was.
    """
    from tokengraft.errors import TokengraftError

    target = Path(target)
    if target.exists() and not overwrite:
        raise TokengraftError(f"output folder {target} already exists; choose another --out or pass --overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a finished output folder is an ordinary folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)
