"""The ``tokengraft`` command: one entry point, one subcommand per pipeline stage.

Each stage lives in its own module under ``tokengraft.cli`` exposing
``register(subparsers)``; the module's parser sets ``func`` to a callable taking the
parsed arguments. User errors (:class:`TokengraftError`) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from tokengraft.errors import TokengraftError
from tokengraft.lm.allocator import keep_freed_memory

# Stage modules, in pipeline order. A module that is missing (work in progress) is skipped.
STAGES = ["tokenizer", "transplant", "eval", "compare", "heal", "hypernet", "export", "report", "quickstart", "generate"]
# Stages whose steps allocate and free large blocks: glibc keeps them for reuse there (13-16% more
# tokens/s on a CPU, README session 16); a graft transplant showed no gain, so the others keep the defaults.
KEEP_FREED_MEMORY = {"eval", "heal", "quickstart"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokengraft",
        description="Swap the tokenizer of a pretrained language model and keep what it knows.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for stage in STAGES:
        try:
            module = importlib.import_module(f"tokengraft.cli.{stage}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tokengraft.cli.{stage}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(message)s" if not args.debug else "%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if args.command in KEEP_FREED_MEMORY:
        keep_freed_memory()
    try:
        result = args.func(args)
    except TokengraftError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
