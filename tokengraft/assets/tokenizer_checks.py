"""Tokenizers that load but cannot be saved faithfully, and saved tokenizers checked by loading them back.

Every folder tokengraft writes (transplant, tokenizer train, heal) holds a tokenizer that
plain ``transformers`` must load and that must encode as the one in memory did; the writers
call :func:`verify_saved_tokenizer` inside the temporary folder, before it is renamed into
place, so a tokenizer that does not survive the round trip never becomes an output.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError, first_line
from tokengraft.vocab.ids import id_space

# Text every written tokenizer must encode exactly as the tokenizer in memory did: several
# scripts, digits, runs of spaces, a tab and a newline, an emoji (4-byte UTF-8).
PROBE_TEXT = ("Hello, world! Grüße aus Köln; le cœur à 12 345 €.  Tabs\tand\nlines. "
              "Съешь ещё 日本語のテキスト 🦊🐶 x=[1,2,3]")


def check_unique_ids(backend: Any, spec: str) -> None:
    """Refuse a tokenizer whose vocabulary gives two entries one id (it cannot be saved and loaded back)."""
    space = id_space(backend)
    if space.duplicates:
        raise TokengraftError(f"tokenizer {spec}: {space.describe_duplicates()}, so it cannot be saved and loaded "
                              "back; give every token its own id in its tokenizer.json")


def verify_saved_tokenizer(folder: str | Path, expected: Any) -> None:
    """Load the tokenizer saved in ``folder`` with ``AutoTokenizer`` and check it against ``expected``:
    the same vocabulary, and the same ids and text for :data:`PROBE_TEXT`."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    what = f"the tokenizer written to {folder}"
    try:
        loaded = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # tokenizers raises plain Exceptions
        raise TokengraftError(f"{what} does not load back ({first_line(err)}); nothing was kept: "
                              "check the new tokenizer's tokenizer.json") from None
    space = id_space(loaded)
    if space.duplicates or space.shadowed:
        idx, (first, second) = next(iter(space.shadowed.items())) if space.shadowed else \
            next((i, tuple(t[:2])) for i, t in space.duplicates.items())
        raise TokengraftError(f"{what} gives {first!r} and {second!r} the same id {idx}, so one of them could never be "
                              "decoded; nothing was kept: renumber the new tokenizer's ids without gaps")
    want, got = expected.get_vocab(), loaded.get_vocab()
    if want != got:
        differ = sum(1 for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        raise TokengraftError(f"{what} loads back with another vocabulary ({differ} tokens differ); nothing was kept: "
                              "check the new tokenizer's tokenizer.json")
    ids = expected(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    if loaded(PROBE_TEXT, add_special_tokens=False)["input_ids"] != ids or loaded.decode(ids) != expected.decode(ids):
        raise TokengraftError(f"{what} loads back but encodes text differently; nothing was kept: "
                              "check the new tokenizer's tokenizer.json")
