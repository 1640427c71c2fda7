"""A tiny real transplant for the fit tests (imported by tests/test_fit*.py; no tests here).

The heal fixtures' tiny Llama (280-token BPE), trained on longer so that it knows the text
well (as a real base model knows its language), is the base model; it is transplanted with
FVT onto the heal fixtures' other 320-token BPE, in memory, and untied.
"""
from __future__ import annotations

import pytest
import torch
from test_heal_helpers import heal_world, make_texts, pretrain  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def fit_world(heal_world):  # noqa: F811
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tokengraft.fit.rows import untie
    from tokengraft.transplant.core import transplant_model
    from tokengraft.transplant.correspondence import build_correspondence

    teacher_dir, student_dir = heal_world["teacher"], heal_world["student"]
    old_tok, new_tok = AutoTokenizer.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(student_dir)
    texts = [p.read_text() for p in sorted(heal_world["corpus"].iterdir())]
    teacher = pretrain(AutoModelForCausalLM.from_pretrained(teacher_dir), old_tok, texts, steps=300, lr=5e-3).eval()
    student = clone(teacher)
    student, new_tok, _ = transplant_model(student, old_tok, new_tok, "fvt")
    untie(student)
    student.eval()
    corr = build_correspondence(old_tok, new_tok)
    heldout = [p.read_text() for p in sorted(heal_world["heldout"].iterdir())]
    return {"teacher": teacher, "student": student, "old_tok": old_tok, "new_tok": new_tok, "corr": corr,
            "texts": texts, "heldout": heldout}


def clone(model):
    import copy

    out = copy.deepcopy(model)
    out.eval()
    return out


def pieces_of(corr) -> list[tuple[int, list[int], bytes]]:
    """(new id, old pieces, bytes) of every new token that has bytes."""
    out = []
    for t, data in enumerate(corr.new_bytes):
        if data:
            pieces = [int(corr.copied[t])] if int(corr.copied[t]) >= 0 else list(corr.pieces[t])
            if pieces:
                out.append((t, pieces, data))
    return out
