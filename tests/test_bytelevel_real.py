"""Byte-level probabilities on the real offline models (SmolLM2: byte-level BPE; Gemma-3: SentencePiece with
byte fallback and sliding-window layers). These fail, not skip, when the models are missing."""
from __future__ import annotations

import pytest
import torch

from tokengraft.assets import load_corpora, load_model, load_tokenizer
from tokengraft.bytelevel import ByteModel, ByteOptions


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m").eval(), load_tokenizer("smollm2-135m")


def test_smollm2_next_byte_after_a_prompt_cut_mid_word(smollm2):
    model, tok = smollm2
    with torch.inference_mode():
        state = ByteModel(model, tok).start(b"The quick brown fo")
        p = state.distribution()
        assert p.sum().item() == pytest.approx(1.0, abs=1e-9)
        assert chr(int(p[:256].argmax())) == "x"
        state.append(b"x jumps over the la")
        assert chr(int(state.distribution()[:256].argmax())) == "z"
        # mid-character: "é" is C3 A9; after C3 the next byte is a UTF-8 continuation byte
        q = ByteModel(model, tok).next_byte("Il a été un caf".encode() + b"\xc3")
        assert q[0x80:0xC0].sum().item() > 0.99


@pytest.mark.slow
def test_smollm2_byte_bpb_is_below_the_canonical_token_bpb(smollm2):
    from tokengraft.bytelevel import score_corpora
    from tokengraft.measure import EvalOptions, bits_per_byte

    model, tok = smollm2
    corpora = load_corpora(["libreoffice:en:heldout"], max_bytes=2000)
    (score,) = score_corpora(model, tok, corpora, EvalOptions(), ByteOptions())
    token = bits_per_byte(model, tok, corpora, EvalOptions())
    assert score.token_bpb == pytest.approx(token.bpb, rel=1e-5)
    assert score.bpb < score.token_bpb


@pytest.mark.slow
def test_gemma3_tree_attention_past_the_sliding_window():
    from tokengraft.bytelevel.tree import Query, TreeEvaluator

    model, tok = load_model("gemma3-270m").eval(), load_tokenizer("gemma3-270m")
    text = " ".join(d.text for d in load_corpora(["libreoffice:de:heldout"], max_bytes=8000)[0].documents)
    ids = [2, *tok(text, add_special_tokens=False)["input_ids"][:700]]  # 700 > the 512-token window
    with torch.inference_mode():
        ev = TreeEvaluator(model, torch.device("cpu"))
        ev.feed([Query(t, j, j + 1) for j, t in enumerate(ids)])
        assert not ev.plain
        got = ev.logprobs(ev.feed([Query(1234, 651, 651)]))
        want = ev.logprobs(ev._plain_ids(ids[:651] + [1234]))
        assert (got - want).abs().max().item() < 2e-3
        got = ev.logprobs(ev.feed([Query(99, 652, 651, (ev.slots - 1,))]))  # a second branch token on top
        want = ev.logprobs(ev._plain_ids(ids[:651] + [1234, 99]))
        assert (got - want).abs().max().item() < 2e-3
