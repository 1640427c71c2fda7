"""Property tests: transplant a tiny model to random tokenizers; the output must work.

hypothesis draws small byte-level BPE vocabularies (random merges, random special tokens,
and sometimes ids with gaps) and byte-fallback SentencePiece models (BPE or Unigram,
trained on random text). Each is transplanted into the tiny base model of
:mod:`bad_inputs_world` and written to a folder. Then:
- the folder's tokenizer loads with plain ``AutoTokenizer`` and encodes random Unicode text
  exactly as the input tokenizer does, and decodes it back to the same text;
- every row of the new embedding matrices is finite, and there is a row for every id.
A tokenizer with gaps may instead be refused in one line when the base model's chat markers
would land on used ids; then nothing is written.
``HYPOTHESIS_EXAMPLES`` sets the number of tokenizers of each kind (default 12).
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokengraft.errors import TokengraftError
from tokengraft.transplant.options import TransplantOptions
from tokengraft.transplant.run import transplant
from transplant_fixtures import base_tokenizer, tiny_llama

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "12"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
SPECIALS = ["<|endoftext|>", "<pad>", "<s>", "</s>", "[MASK]", "<|user|>"]
WORDS = ("the quick brown fox über café naïve 日本語 テキスト Съешь ещё 🦊 12345 le chien paresseux "
         "x=[1,2] tab\there").split(" ")
# Random text: any code point but surrogates and U+2581, which a SentencePiece tokenizer
# reads as a space by design (see tokengraft.vocab.byte_vocab).
TEXTS = st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2581"), max_size=40),
                 min_size=4, max_size=8)
MARKER_COLLISION = "would get id .* which the new tokenizer's token .* already has"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("random-tok") / "base"
    old = base_tokenizer()
    tiny_llama(len(old), tied=False).save_pretrained(folder)
    old.save_pretrained(folder)
    return folder


@st.composite
def bpe_json(draw) -> tuple[dict, bool]:
    """A byte-level BPE tokenizer.json: specials, 256 byte symbols, random merges, maybe id gaps."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = draw(st.lists(st.sampled_from(SPECIALS), unique=True, max_size=3))
    vocab = {s: i for i, s in enumerate(specials)}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab.update({ch: len(specials) + i for i, ch in enumerate(alphabet)})
    tokens, merges = list(alphabet), []
    for _ in range(draw(st.integers(0, 60))):
        a, b = draw(st.sampled_from(tokens)), draw(st.sampled_from(tokens))
        if a + b not in vocab:
            merges.append((a, b))
            vocab[a + b] = len(vocab)
            tokens.append(a + b)
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    data = json.loads(tok.to_str())
    gap = draw(st.none() | st.tuples(st.integers(1, len(vocab) - 1), st.integers(1, 300)))
    if gap is not None:  # ids from `start` on move up by `shift`
        start, shift = gap
        data["model"]["vocab"] = {t: i + shift if i >= start else i for t, i in data["model"]["vocab"].items()}
        for entry in data["added_tokens"]:
            entry["id"] += shift if entry["id"] >= start else 0
    return data, gap is not None


@st.composite
def sentencepiece_model(draw) -> bytes:
    """A byte-fallback SentencePiece model (BPE or Unigram) trained on random sentences."""
    import sentencepiece as spm

    rng = random.Random(draw(st.integers(0, 2**16)))
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(120)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=draw(st.integers(360, 480)),
        model_type=draw(st.sampled_from(["bpe", "unigram"])), byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False, hard_vocab_limit=False,
        add_dummy_prefix=draw(st.booleans()), split_digits=draw(st.booleans()),
        control_symbols=draw(st.lists(st.sampled_from(["<ctl1>", "<ctl2>"]), unique=True)), minloglevel=2)
    return model.getvalue()


def check_transplant(base: Path, spec: Path, out: Path, texts: list[str], method: str, gaps: bool) -> None:
    from transformers import AutoTokenizer

    from tokengraft.assets import load_tokenizer
    from tokengraft.vocab.ids import max_token_id

    shutil.rmtree(out, ignore_errors=True)
    options = TransplantOptions(model=str(base), tokenizer=str(spec), method=method, out=str(out), allow_id_gaps=gaps)
    try:
        result = transplant(options)
    except TokengraftError as err:  # the one refusal a tokenizer with gaps may get
        assert gaps and __import__("re").search(MARKER_COLLISION, str(err)) and "\n" not in str(err), err
        assert not out.exists()
        return
    given_tok, saved = load_tokenizer(spec), AutoTokenizer.from_pretrained(str(out))
    for text in texts:
        ids = saved(text, add_special_tokens=False)["input_ids"]
        assert ids == given_tok(text, add_special_tokens=False)["input_ids"]
        assert saved.decode(ids, clean_up_tokenization_spaces=False) == text
    rows = [result.model.get_input_embeddings().weight, result.model.get_output_embeddings().weight]
    assert all(bool(torch.isfinite(r).all()) for r in rows)
    assert all(r.shape[0] == max_token_id(saved) + 1 for r in rows)


@SETTINGS
@given(tokenizer=bpe_json(), texts=TEXTS, method=st.sampled_from(["fvt", "wvt"]))
def test_random_bpe_transplants_into_a_working_folder(base, tmp_path_factory, tokenizer, texts, method):
    data, gaps = tokenizer
    root = tmp_path_factory.mktemp("bpe")
    spec = root / "tokenizer.json"
    spec.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    check_transplant(base, spec, root / "out", texts, method, gaps)


@SETTINGS
@given(model=sentencepiece_model(), texts=TEXTS, method=st.sampled_from(["fvt", "wvt"]))
def test_random_sentencepiece_transplants_into_a_working_folder(base, tmp_path_factory, monkeypatch_env, model,
                                                                texts, method):
    root = tmp_path_factory.mktemp("spm")
    spec = root / "random.model"
    spec.write_bytes(model)
    check_transplant(base, spec, root / "out", texts, method, gaps=False)


@pytest.fixture(scope="module")
def monkeypatch_env(tmp_path_factory):
    """Converted SentencePiece models are cached: keep them out of the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOKENGRAFT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
