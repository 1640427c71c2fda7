"""Build a command's flags from its options dataclass, so that each default is written once.

One flag per field: ``--field-name``, its default the dataclass's, its type from the
annotation, its help the comment written beside the field (plus the default). A command
adds what is not an option (``--json``, ``--list-methods``) by hand::

    add_option_flags(parser, EvalOptions, choices={"dtype": DTYPES})
    options = options_from_args(args, EvalOptions)

A field no flag can carry (a dict) is listed in ``skip`` and given to ``options_from_args``
by the command. ``tests/test_cli_flags.py`` checks every command: each field has a flag
with the same default.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
import types
import typing
from typing import Any, Iterable, Mapping


def add_option_flags(parser: argparse.ArgumentParser | Any, cls: type, *, skip: Iterable[str] = (),
                     choices: Mapping[str, Iterable[str]] | None = None, metavars: Mapping[str, str] | None = None,
                     flags: Mapping[str, str] | None = None, help: Mapping[str, str] | None = None,
                     required: Iterable[str] = (), only: Iterable[str] | None = None) -> None:
    """Add one flag per field of ``cls`` (except ``skip``; only ``only`` when given) to ``parser``
    (a parser or an argument group: call it once more with ``only`` to put fields in a group).

    ``flags`` renames a flag (``{"show_progress": "--no-progress"}``: a True-by-default bool
    named ``--no-...`` turns it off); ``help`` replaces a field's comment; ``required`` fields
    must be given on the command line. A field without a default gets ``None``.
    """
    skip, choices, metavars = set(skip), dict(choices or {}), dict(metavars or {})
    only = None if only is None else set(only)
    flags, texts, required = dict(flags or {}), {**field_comments(cls), **dict(help or {})}, set(required)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        default = _default(f)
        kind, many = _flag_type(hints[f.name], f.name, cls)
        flag = flags.get(f.name, "--" + f.name.replace("_", "-"))
        text = texts.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        if kind is bool:
            off = flag.startswith("--no-") and text
            parser.add_argument(flag, dest=f.name, help=f"turn off: {text}" if off else text or None,
                                **_bool_action(flag, default, cls, f.name))
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "type": kind, "help": _with_default(text, default)}
        if f.name in required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        if f.name in choices:
            kwargs["choices"] = list(choices[f.name])
        else:
            kwargs["metavar"] = metavars.get(f.name, _metavar(kind))
        if many:
            kwargs["nargs"] = "+"
        parser.add_argument(flag, **kwargs)


def options_from_args(args: argparse.Namespace, cls: type, **given: Any) -> Any:
    """``cls`` built from the parsed flags; ``given`` fills the fields that have no flag."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if f.name not in given and hasattr(args, f.name)}
    return cls(**values, **given)


@functools.lru_cache(maxsize=None)
def field_comments(cls: type) -> dict[str, str]:
    """The comment beside each field of a dataclass, with the indented comment-only lines under it
    (a comment line at the fields' own indent starts a new block and belongs to no field).

    >>> @dataclasses.dataclass
    ... class Demo:
    ...     k: int = 4    # atoms per token
    ...                   # (the paper's default)
    >>> field_comments(Demo)  # doctest: +SKIP
    {'k': 'atoms per token (the paper\\'s default)'}
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, list[str]] = {}
    current, line_of_current = None, -1
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.string in names:
            current, line_of_current = tok.string, tok.start[0]
        elif tok.type == tokenize.NAME and tok.start[1] <= 4:
            current = None
        elif tok.type == tokenize.COMMENT and current is not None:
            own_line = not source.splitlines()[tok.start[0] - 1][: tok.start[1]].strip()
            if tok.start[0] == line_of_current or (own_line and tok.start[1] > 4):
                out.setdefault(current, []).append(tok.string.lstrip("#").strip())
                line_of_current = tok.start[0]
    return {name: " ".join(parts) for name, parts in out.items()}


def _bool_action(flag: str, default: Any, cls: type, name: str) -> dict[str, Any]:
    """False by default: ``--flag`` turns it on; True: ``--no-...`` turns it off (or --flag/--no-flag)."""
    if default is False and not flag.startswith("--no-"):
        return {"action": "store_true"}
    if default is True:
        return {"action": "store_false"} if flag.startswith("--no-") else {"action": argparse.BooleanOptionalAction,
                                                                            "default": True}
    raise TypeError(f"{cls.__name__}.{name}: flag {flag} cannot express the default {default!r}")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _flag_type(hint: Any, name: str, cls: type) -> tuple[type, bool]:
    """(the type one value is parsed with, whether the flag takes several values)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        scalar = [a for a in args if a in (bool, int, float, str)]
        if not scalar:  # e.g. str | Path: read as text
            return str, False
        return scalar[0], False
    if origin in (list, tuple):
        return (args[0] if args and args[0] in (int, float, str) else str), True
    if hint in (bool, int, float, str):
        return hint, False
    raise TypeError(f"{cls.__name__}.{name}: no flag for type {hint!r}; list it in skip and fill it by hand")


def _metavar(kind: type) -> str:
    return {int: "N", float: "X"}.get(kind, "VALUE")


def _with_default(text: str, default: Any) -> str:
    if default is None or default == []:
        return text or None  # type: ignore[return-value]
    return f"{text} (default: %(default)s)" if text else "default: %(default)s"
