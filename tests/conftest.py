"""Shared tiny fixtures: made in the test session, no network, no large files."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Der schnelle braune Fuchs springt über den faulen Hund. "
    "Le renard brun rapide saute par-dessus le chien paresseux. 1234 + 5678 = 6912. "
    "Съешь же ещё этих мягких французских булок. 日本語のテキスト。 emoji: 🦊🐶 café naïve\n"
)


@pytest.fixture(scope="session")
def sample_text() -> str:
    return SAMPLE_TEXT
