"""The bits-per-byte meter: batched == plain reference, windows, start token, bad input."""
from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tokengraft.assets.corpus import Corpus, Document
from tokengraft.errors import TokengraftError
from tokengraft.measure import EvalOptions, bits_per_byte, bits_per_byte_reference, resolve_start_token
from tokengraft.measure.scorer import Scorer
from tokengraft.measure.windows import plan_batches, sliding_windows

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "100"))
TRAIN_TEXT = (
    "Bits per byte compare language models across tokenizers. A tokenizer splits text into tokens; "
    "the model predicts each token from the ones before it. Der Fuchs springt über den Hund. "
    "Le renard saute par-dessus le chien. 0123456789 + 9876543210. (x) [y] {z} <a> 'b' \"c\"\n"
) * 8


def make_tokenizer(specials: tuple[str, ...] = ("<|endoftext|>",), template: str | None = None, **roles: str):
    """A throwaway byte-level BPE (300 ids) trained on a few KB; ``template`` = a BOS it adds itself."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TRAIN_TEXT], trainer)
    if template:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{template} $A", special_tokens=[(template, tok.token_to_id(template))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **roles)


def make_llama(vocab: int, max_positions: int = 64, seed: int = 0):
    """A tiny random Llama (hidden 32, 2 layers); a wide init makes predictions depend on context."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                         initializer_range=0.3, tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine two busy-waiting
    threads per process made the forward passes 5x slower than one (measured, SmolLM2 body)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_llama(len(tokenizer))


# Very different lengths: one token, short, about one context, several contexts long.
DOCS = [TRAIN_TEXT[:1], TRAIN_TEXT[:40], TRAIN_TEXT[50:190], TRAIN_TEXT[:360], TRAIN_TEXT[300:420]]


def manual_nll_bits(model, ids: list[int]) -> float:
    """NLL in bits of ids[1:] given ids[0], one full forward, no windows."""
    logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    return torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item() / math.log(2)


# --- windows and batches -------------------------------------------------------------------

@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(n=st.integers(0, 300), context=st.integers(1, 64), data=st.data())
def test_sliding_windows_score_every_token_exactly_once(n, context, data):
    stride = data.draw(st.integers(1, context))
    windows = sliding_windows(n, context, stride)
    scored = [j for w in windows for j in range(w.score_from, w.end)]
    assert scored == list(range(n))
    for w in windows:
        assert 0 <= w.begin <= w.score_from < w.end <= n
        assert w.end - w.begin <= context
        # every scored token past the first window keeps context - stride tokens of history
        assert w.score_from - w.begin >= min(w.score_from, context - stride)


def test_sliding_windows_rejects_bad_stride():
    with pytest.raises(ValueError):
        sliding_windows(10, context=4, stride=5)


@settings(max_examples=EXAMPLES, deadline=None)
@given(lengths=st.lists(st.integers(1, 50), max_size=40), budget=st.integers(1, 200))
def test_plan_batches_respects_budget_and_uses_each_row_once(lengths, budget):
    batches = plan_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        width = max(lengths[i] for i in b)
        assert len(b) == 1 or len(b) * width <= budget
        assert width == lengths[b[0]]  # longest first within a batch


# --- batched == reference ------------------------------------------------------------------

@pytest.mark.parametrize("context,stride,batch_tokens", [(None, None, 100), (16, 5, 64), (16, 16, 4096)])
def test_batched_equals_reference(model, tokenizer, context, stride, batch_tokens):
    options = EvalOptions(context=context, stride=stride, batch_tokens=batch_tokens)
    fast = bits_per_byte(model, tokenizer, DOCS, options)
    ref = bits_per_byte_reference(model, tokenizer, DOCS, options)
    assert fast.tokens == ref.tokens == sum(len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in DOCS)
    assert fast.bytes == ref.bytes == sum(len(d.encode()) for d in DOCS)
    assert fast.documents == ref.documents == len(DOCS)
    assert abs(fast.bpb - ref.bpb) < 1e-4
    assert 1.0 < fast.bpb < 20.0


def test_chunked_tokenizing_gives_the_same_result(model, tokenizer, monkeypatch):
    import tokengraft.measure.bpb as bpb

    whole = bits_per_byte(model, tokenizer, DOCS, EvalOptions(batch_tokens=100))
    monkeypatch.setattr(bpb, "CHUNK_BYTES", 100)  # every document or two its own chunk
    chunked = bits_per_byte(model, tokenizer, ["", *DOCS, ""], EvalOptions(batch_tokens=100))
    assert (chunked.tokens, chunked.bytes, chunked.documents) == (whole.tokens, whole.bytes, whole.documents)
    assert chunked.nll_bits == pytest.approx(whole.nll_bits, abs=1e-6)


def test_sliding_window_changes_only_long_documents(model, tokenizer):
    # Short documents fit one window: a smaller context must not change them; a long one must change.
    short, long = DOCS[1][:12], DOCS[3]
    assert len(tokenizer(short)["input_ids"]) <= 16 and len(tokenizer(long)["input_ids"]) > 64
    for doc, same in ((short, True), (long, False)):
        wide = bits_per_byte(model, tokenizer, [doc], EvalOptions(context=64))
        narrow = bits_per_byte(model, tokenizer, [doc], EvalOptions(context=16, stride=8))
        assert wide.tokens == narrow.tokens
        assert (abs(wide.bpb - narrow.bpb) < 1e-5) is same


def test_bpb_is_total_bits_over_bytes_with_first_token_scored(model, tokenizer):
    doc = DOCS[1]  # fits one window
    ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
    result = bits_per_byte(model, tokenizer, doc)
    assert result.tokens == len(ids)
    assert result.nll_bits == pytest.approx(manual_nll_bits(model, [0, *ids]), abs=1e-3)
    assert result.bpb == pytest.approx(result.nll_bits / len(doc.encode()), rel=1e-12)
    assert result.tokens_per_byte == pytest.approx(len(ids) / len(doc.encode()))


def test_documents_are_scored_independently(model, tokenizer):
    both = bits_per_byte(model, tokenizer, [DOCS[1], DOCS[2]])
    one, two = (bits_per_byte(model, tokenizer, [d]) for d in DOCS[1:3])
    assert both.nll_bits == pytest.approx(one.nll_bits + two.nll_bits, abs=1e-3)
    joined = bits_per_byte(model, tokenizer, DOCS[1] + DOCS[2])
    assert abs(joined.nll_bits - both.nll_bits) > 1e-2


def test_each_document_keeps_its_own_bits(model, tokenizer):
    # Windows of different documents share batches (context 16, 64 tokens a batch); each document's bits
    # must still be what scoring it alone gives, in document order, summing to the total.
    corpus = Corpus("c", [Document(f"d{i}", d) for i, d in enumerate(["", *DOCS[1:], ""])])
    options = EvalOptions(context=16, stride=5, batch_tokens=64)
    result = bits_per_byte(model, tokenizer, corpus, options).parts[0]
    assert result.document_ids == ["d1", "d2", "d3", "d4"]  # the empty documents score nothing and are left out
    assert result.document_bytes == [len(d.encode()) for d in DOCS[1:]]
    alone = [bits_per_byte(model, tokenizer, [d], options).nll_bits for d in DOCS[1:]]
    assert result.document_bits == pytest.approx(alone, abs=1e-4)
    assert sum(result.document_bits) == pytest.approx(result.nll_bits, rel=1e-12)
    assert sum(result.document_bytes) == result.bytes
    total = bits_per_byte(model, tokenizer, corpus, options)  # one corpus: the total keeps its documents too
    assert (total.document_ids, total.document_bits) == (result.document_ids, result.document_bits)
    two = bits_per_byte(model, tokenizer, [corpus, Corpus("e", [Document("e0", DOCS[1])])], options)
    assert two.document_ids == [] and [p.document_ids for p in two.parts] == [result.document_ids, ["e0"]]


def test_model_mode_is_restored(model, tokenizer):
    model.train()
    try:
        bits_per_byte(model, tokenizer, DOCS[1])
        assert model.training
    finally:
        model.eval()
    bits_per_byte(model, tokenizer, DOCS[1])
    assert not model.training


def test_per_corpus_breakdown_and_max_bytes(model, tokenizer):
    corpora = [Corpus("a", [Document("1", DOCS[3])]), Corpus("b", [Document("1", DOCS[2]), Document("2", DOCS[1])])]
    result = bits_per_byte(model, tokenizer, corpora, EvalOptions(max_bytes=100))
    assert [p.name for p in result.parts] == ["a", "b"] and result.name == "total"
    assert [p.bytes for p in result.parts] == [100, 100]
    assert [p.documents for p in result.parts] == [1, 1]
    assert bits_per_byte(model, tokenizer, ["", DOCS[1]]).documents == 1  # empty documents are skipped
    assert result.bytes == 200 and result.nll_bits == pytest.approx(sum(p.nll_bits for p in result.parts))
    assert result.bpb == pytest.approx(result.nll_bits / 200)


# --- start token ---------------------------------------------------------------------------

def test_start_token_policy():
    plain = make_tokenizer(eos_token="<|endoftext|>")
    adds_bos = make_tokenizer(("<s>", "</s>"), template="<s>", bos_token="<s>", eos_token="</s>")
    chat = make_tokenizer(("<|endoftext|>", "<|im_start|>", "<|im_end|>"), bos_token="<|im_start|>", eos_token="<|im_end|>")
    eos_only = make_tokenizer(("</s>",), eos_token="</s>")
    assert resolve_start_token(plain) == ("<|endoftext|>", 0)
    assert resolve_start_token(adds_bos) == ("<s>", 0)
    assert resolve_start_token(chat) == ("<|endoftext|>", 0)  # not the chat marker bos_token
    assert resolve_start_token(eos_only) == ("</s>", 0)
    assert resolve_start_token(chat, "bos") == ("<|im_start|>", 1)
    assert resolve_start_token(chat, "eos") == ("<|im_end|>", 2)
    assert resolve_start_token(chat, "<|im_end|>") == ("<|im_end|>", 2)
    with pytest.raises(TokengraftError, match="no bos token"):
        resolve_start_token(plain, "bos")
    with pytest.raises(TokengraftError, match="'<nope>' is not in the tokenizer"):
        resolve_start_token(plain, "<nope>")


def test_tokenizer_bos_is_not_doubled():
    tok = make_tokenizer(("<s>", "</s>"), template="<s>", bos_token="<s>", eos_token="</s>")
    model = make_llama(len(tok))
    doc = DOCS[1]
    ids = tok(doc, add_special_tokens=False)["input_ids"]
    assert tok(doc)["input_ids"] == [0, *ids]  # the tokenizer adds <s> itself
    result = bits_per_byte(model, tok, doc)
    assert result.start_token == "<s>" and result.tokens == len(ids)
    assert result.nll_bits == pytest.approx(manual_nll_bits(model, [0, *ids]), abs=1e-3)
    assert abs(result.nll_bits - manual_nll_bits(model, [0, 0, *ids])) > 1e-2


def test_start_option_changes_the_conditioning_token(model, tokenizer):
    doc = DOCS[1]
    ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
    other = tokenizer.convert_ids_to_tokens(ids[0])
    result = bits_per_byte(model, tokenizer, doc, EvalOptions(start=other))
    assert result.start_token == other
    assert result.nll_bits == pytest.approx(manual_nll_bits(model, [ids[0], *ids]), abs=1e-3)


# --- precision and architecture quirks -----------------------------------------------------

def test_bfloat16_autocast_is_close_and_weight_dtype_is_checked(model, tokenizer):
    fp32 = bits_per_byte(model, tokenizer, DOCS)
    bf16 = bits_per_byte(model, tokenizer, DOCS, EvalOptions(dtype="bfloat16"))
    assert bf16.tokens == fp32.tokens
    assert abs(bf16.bpb - fp32.bpb) < 0.05 * fp32.bpb
    half = make_llama(len(tokenizer)).to(torch.bfloat16)
    with pytest.raises(TokengraftError, match="weights are bfloat16 but dtype float32"):
        bits_per_byte(half, tokenizer, DOCS)
    assert bits_per_byte(half, tokenizer, DOCS, EvalOptions(dtype="bfloat16")).tokens == fp32.tokens


def test_gemma_softcapping_on_the_split_path(tokenizer):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                              final_logit_softcapping=2.0, initializer_range=0.3, sliding_window=8)
    gemma = Gemma3ForCausalLM(config).eval()
    options = EvalOptions(context=32, stride=16, batch_tokens=96)
    fast = bits_per_byte(gemma, tokenizer, DOCS, options)
    ref = bits_per_byte_reference(gemma, tokenizer, DOCS, options)
    assert abs(fast.bpb - ref.bpb) < 1e-4
    scorer = Scorer(gemma, torch.device("cpu"))
    assert scorer.path == "split" and scorer.head.softcap == 2.0


def test_unknown_head_quirk_falls_back_to_full_forward(tokenizer, caplog):
    from transformers import LlamaForCausalLM

    class ScaledLlama(LlamaForCausalLM):  # scales its logits in a way no config names
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 3.0
            return out

    base = make_llama(len(tokenizer))
    odd = ScaledLlama(base.config).eval()
    odd.load_state_dict(base.state_dict())
    fast = bits_per_byte(odd, tokenizer, DOCS, EvalOptions(batch_tokens=100))
    ref = bits_per_byte_reference(odd, tokenizer, DOCS)
    assert "using the full forward" in caplog.text
    assert abs(fast.bpb - ref.bpb) < 1e-4
    assert abs(fast.bpb - bits_per_byte(base, tokenizer, DOCS).bpb) > 0.1


# --- bad input -----------------------------------------------------------------------------

def test_tokenizer_larger_than_embedding_is_an_error(tokenizer):
    small = make_llama(64)
    with pytest.raises(TokengraftError, match=r"tokenizer has 300 token ids but the model's input embedding has only 64 rows"):
        bits_per_byte(small, tokenizer, DOCS)


@pytest.mark.parametrize("texts,options,message", [
    (Corpus("empty", [Document("1", "")]), EvalOptions(), "corpus empty is empty"),
    ([], EvalOptions(), "takes a str"),
    (["ok", "bad \udc80 text"], EvalOptions(), "document 1 of corpus text is not valid UTF-8"),
    (DOCS, EvalOptions(max_bytes=0), "positive number of bytes"),
    (DOCS, EvalOptions(context=65), "context 65 is more than 64, the model's max_position_embeddings"),
    (DOCS, EvalOptions(context=0), "--context must be a positive number of tokens"),
    (DOCS, EvalOptions(context=16, stride=17), "--stride 17 is larger than --context 16"),
    (DOCS, EvalOptions(dtype="float16"), "dtype 'float16' is not one of"),
    (DOCS, EvalOptions(device="tpu9"), "unknown device"),
    (DOCS, EvalOptions(batch_tokens=0), "--batch-tokens must be a positive number of tokens"),
    (["   ", "\n\t"], EvalOptions(), "holds only whitespace"),
])
def test_bad_input_is_one_line_error(model, tokenizer, texts, options, message):
    with pytest.raises((TokengraftError, TypeError)) as info:
        bits_per_byte(model, tokenizer, texts, options)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- the real model ------------------------------------------------------------------------

def test_smollm2_batched_equals_reference_on_real_text():
    from tokengraft.assets import load_model, load_tokenizer

    model, tok = load_model("smollm2-135m"), load_tokenizer("smollm2-135m")  # missing: MissingAssetError, a failure
    text = TRAIN_TEXT[:300] + (
        "The model was trained on web pages, code and books. It predicts the next token of a text from "
        "the tokens before it, and the probability it gives to what really comes next measures how well "
        "it knows the language. Bits per byte divide the total surprise by the length of the text in bytes."
    ) * 4
    docs = [text[:150], text[:900], text[500:1000]]  # ~1.5 KB; the long one spans 3 windows
    options = EvalOptions(context=128, batch_tokens=512)
    fast = bits_per_byte(model, tok, docs, options)
    ref = bits_per_byte_reference(model, tok, docs, options)
    assert fast.start_token == "<|endoftext|>"
    assert fast.tokens == ref.tokens and fast.bytes == sum(len(d.encode()) for d in docs)
    assert abs(fast.bpb - ref.bpb) < 1e-4
    assert 0.2 < fast.bpb < 1.5


@pytest.mark.slow
def test_gemma3_real_model_split_path_with_bos():
    from tokengraft.assets import load_corpus, load_model, load_tokenizer

    model, tok = load_model("gemma3-270m"), load_tokenizer("gemma3-270m")
    corpus = load_corpus("libreoffice:de:heldout").truncate(3000)
    options = EvalOptions(context=256, batch_tokens=2048)
    fast = bits_per_byte(model, tok, corpus, options)
    ref = bits_per_byte_reference(model, tok, corpus, options)
    assert fast.start_token == "<bos>"  # Gemma's tokenizer adds <bos> itself
    assert fast.tokens == ref.tokens and abs(fast.bpb - ref.bpb) < 1e-4
    assert 0.5 < fast.bpb < 1.6
