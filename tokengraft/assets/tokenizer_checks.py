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


def verify_saved_tokenizer(folder: str | Path, expected: Any) -> str | None:
    """Load the tokenizer saved in ``folder`` with ``AutoTokenizer`` and check it against ``expected``:
    the same vocabulary, and the same ids and text for :data:`PROBE_TEXT`.

    Returns None, or a one-line warning when ``AutoTokenizer`` swaps in a class of its own that
    splits text differently while the folder's ``tokenizer.json`` itself is faithful: transformers 5
    builds ``Qwen2Tokenizer`` (its own regex and NFC) for any ``qwen2`` folder, ``phi3`` likewise,
    whatever ``tokenizer.json`` says. We cannot change how it picks the class, so the writer records
    the warning and says how to load the folder's own tokenizer. Raises when the files themselves
    do not give back ``expected``.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = Path(folder)
    what = f"the tokenizer written to {folder}"
    try:
        loaded = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # tokenizers raises plain Exceptions
        raise TokengraftError(f"{what} does not load back ({first_line(err)}); nothing was kept: "
                              "check the new tokenizer's tokenizer.json") from None
    problem = _differs(loaded, expected, what)
    if problem is None:
        return None
    if (folder / "tokenizer.json").is_file() and type(loaded) is not type(expected):
        own = PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
        if _differs(own, expected, what) is None:
            return (f"transformers' AutoTokenizer loads this folder's tokenizer as {type(loaded).__name__}, which "
                    "splits text differently from the tokenizer it was transplanted to; load it with "
                    "PreTrainedTokenizerFast.from_pretrained(folder) instead")
    raise TokengraftError(problem)


def _differs(loaded: Any, expected: Any, what: str) -> str | None:
    """Why ``loaded`` is not ``expected`` (one line), or None when it gives the same ids and text."""
    space = id_space(loaded)
    if space.duplicates or space.shadowed:
        idx, (first, second) = next(iter(space.shadowed.items())) if space.shadowed else \
            next((i, tuple(t[:2])) for i, t in space.duplicates.items())
        return (f"{what} gives {first!r} and {second!r} the same id {idx}, so one of them could never be "
                "decoded; nothing was kept: renumber the new tokenizer's ids without gaps")
    want, got = expected.get_vocab(), loaded.get_vocab()
    if want != got:
        differ = sum(1 for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        return (f"{what} loads back with another vocabulary ({differ} tokens differ); nothing was kept: "
                "check the new tokenizer's tokenizer.json")
    for special in (False, True):  # True: the start token a tokenizer prepends (Gemma's <bos>) survives too
        ids = expected(PROBE_TEXT, add_special_tokens=special)["input_ids"]
        if loaded(PROBE_TEXT, add_special_tokens=special)["input_ids"] != ids or loaded.decode(ids) != expected.decode(ids):
            return (f"{what} loads back but encodes text differently; nothing was kept: "
                    "check the new tokenizer's tokenizer.json")
    return None
