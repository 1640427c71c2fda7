"""Tiny self-made fixtures for the hypernetwork tests (no files beyond tmp, no network).

A "base model": a tiny Llama (hidden 32, 2 layers) with a 300-token byte-level BPE trained
on pseudo-sentences, briefly pretrained on them so its rows carry some structure; a second
tiny base with another seed (the "other model"); a corpus folder; a new tokenizer trained
on other text (the transplant target).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from test_heal_helpers import make_texts, pretrain, tiny_llama, train_bpe, write_corpus

_WORLD: dict[str, Path] = {}


def build_world(root: Path) -> dict[str, Path]:
    texts = make_texts(32, words=80, seed=3)
    base_dir, other_dir = root / "base", root / "other"
    base_tok = train_bpe(texts, 300, base_dir)
    pretrain(tiny_llama(len(base_tok), seed=1), base_tok, texts, steps=40).save_pretrained(base_dir)
    other_tok = train_bpe(texts, 300, other_dir)
    tiny_llama(len(other_tok), seed=5).save_pretrained(other_dir)
    new_texts = [t.upper() + " " + t[::-1] for t in make_texts(16, seed=9)]
    train_bpe(new_texts + texts[:8], 360, root / "newtok")
    corpus = write_corpus(root / "corpus", texts)
    return {"base": base_dir, "other": other_dir, "corpus": corpus, "newtok": root / "newtok", "root": root}


@pytest.fixture(scope="session")
def hn_world(tmp_path_factory) -> dict[str, Path]:
    if not _WORLD:
        _WORLD.update(build_world(tmp_path_factory.mktemp("hn_world")))
    return _WORLD
