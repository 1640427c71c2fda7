"""transplant_model on tiny random models: rows, tying, bias, padding, config ids, saving, bad input."""
from __future__ import annotations

import errno
import json

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.core import transplant_model
from tokengraft.transplant.embedding import donor_matrices, embedding_modules
from tokengraft.transplant.provide import Inputs
from tokengraft.transplant.writer import MANIFEST, TOKENS, write_transplant
from transplant_fixtures import base_tokenizer, new_tokenizer, register_test_method, tiny_llama

METHOD = register_test_method()


@pytest.fixture(scope="module")
def toks():
    return base_tokenizer(), new_tokenizer()


def run(model, toks, **kw):
    old, new = toks
    before_in = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone() if model.get_output_embeddings() else None
    model, tok, diag = transplant_model(model, old, new, METHOD, **kw)
    return model, tok, diag, before_in, before_out


def expected_rows(old_rows: torch.Tensor, tok, old_tok) -> torch.Tensor:
    """What the test method must give, computed independently from the correspondence."""
    from tokengraft.transplant.correspondence import build_correspondence

    c = build_correspondence(old_tok, tok, old_size=old_rows.shape[0])
    rows = old_rows.mean(dim=0).repeat(len(tok), 1)
    for t in range(len(tok)):
        if c.copied[t] >= 0:
            rows[t] = old_rows[c.copied[t]]
        elif c.pieces[t]:
            rows[t] = old_rows[c.pieces[t]].mean(dim=0)
    return rows


@pytest.mark.parametrize("tied", [True, False])
def test_rows_shapes_tying_and_config(toks, tied):
    old, new = toks
    model, tok, diag, before_in, before_out = run(tiny_llama(len(old), tied=tied), toks)
    n = len(new) + 2  # the two chat markers of the base were added
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    assert len(tok) == n and emb.weight.shape == (n, 32) and head.weight.shape == (n, 32)
    assert (emb.weight.data_ptr() == head.weight.data_ptr()) is tied
    assert model.config.vocab_size == n and model.config.tie_word_embeddings is tied
    torch.testing.assert_close(emb.weight, expected_rows(before_in, tok, old))
    if not tied:
        torch.testing.assert_close(head.weight, expected_rows(before_out, tok, old))
        assert diag.tokens.source_output is not None
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert (start, end) == (len(new), len(new) + 1)
    torch.testing.assert_close(emb.weight[start], before_in[old.convert_tokens_to_ids("<|im_start|>")])
    assert diag.tokens.source[start] == "added-special" and diag.summary.added_markers == ["<|im_start|>", "<|im_end|>"]
    eot, pad = tok.convert_tokens_to_ids(["<|endoftext|>", "<pad>"])
    # eos: the new eos and the base's end-of-turn marker (base eos id 2 = <|im_end|>), so chat stops
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (eot, [eot, end], pad)
    assert model.generation_config.eos_token_id == [eot, end] and model.generation_config.pad_token_id == pad
    assert tok.chat_template == old.chat_template and len(new) == n - 2  # the caller's tokenizer is untouched


def test_diagnostics_counts_and_residual(toks):
    old, new = toks
    model, tok, diag, *_ = run(tiny_llama(len(old)), toks)
    s = diag.summary
    assert sum(s.counts.values()) == len(tok) == s.new_vocab and s.old_vocab == len(old)
    assert s.counts["added-special"] == 2 and s.counts["special"] == 1 and s.counts["fallback"] == 1
    assert s.counts["copied"] + s.counts[METHOD] == len(new) - 2
    assert s.residual_median == pytest.approx(0.5)
    assert diag.tokens.pieces[tok.convert_tokens_to_ids("<pad>")] == 0
    assert any("chat markers" in w for w in s.warnings)


def test_padding_rows_are_mean_and_suppressed(toks):
    old, _ = toks
    model, tok, diag, *_ = run(tiny_llama(len(old)), toks, pad_to_multiple_of=64)
    w = model.get_input_embeddings().weight
    n = len(tok)
    assert w.shape[0] == 384 and model.config.vocab_size == 384
    torch.testing.assert_close(w[n:], w[:n].mean(dim=0).expand(384 - n, -1))
    assert model.generation_config.suppress_tokens == list(range(n, 384))
    assert diag.tokens.source[n:] == ["padding"] * (384 - n)
    out = model.generate(torch.tensor([[3, 4, 5]]), max_new_tokens=6, do_sample=True, top_k=0)
    assert out.shape == (1, 9) and int(out.max()) < n


def test_output_bias_is_copied_or_averaged(toks):
    old, _ = toks
    model = tiny_llama(len(old), tied=False)
    bias = torch.arange(len(old), dtype=torch.float32)
    head = torch.nn.Linear(32, len(old), bias=True)
    head.weight.data.copy_(model.lm_head.weight.data)
    head.bias.data.copy_(bias)
    model.lm_head = head
    model, tok, diag, *_ = run(model, toks)
    from tokengraft.transplant.correspondence import build_correspondence

    c = build_correspondence(old, tok)
    got = model.lm_head.bias.detach()
    for t in range(len(tok)):
        want = bias[c.copied[t]] if c.copied[t] >= 0 else (bias[c.pieces[t]].mean() if c.pieces[t] else bias.mean())
        assert got[t] == pytest.approx(float(want))


def test_extra_embedding_rows_are_ignored(toks):
    """A padded base vocabulary (Qwen: 151,665 ids, 152,064 rows) gives the same result as an exact one."""
    old, _ = toks
    exact = tiny_llama(len(old), seed=3)
    padded = tiny_llama(len(old) + 24, seed=3)
    with torch.no_grad():
        padded.get_input_embeddings().weight[: len(old)] = exact.get_input_embeddings().weight
    a = run(exact, toks)[0].get_input_embeddings().weight
    b = run(padded, toks)[0].get_input_embeddings().weight
    torch.testing.assert_close(a, b)


def test_tokenizer_larger_than_embedding_is_an_error(toks):
    old, _ = toks
    with pytest.raises(TokengraftError, match=f"base tokenizer has {len(old)} ids but the model's embedding only 300"):
        run(tiny_llama(300), toks)


def test_unknown_method_lists_the_registry(toks):
    old, new = toks
    with pytest.raises(TokengraftError, match=f"unknown method 'nope'; choose one of: .*{METHOD}"):
        transplant_model(tiny_llama(len(old)), old, new, "nope")
    with pytest.raises(TokengraftError, match="has no option k; its options are: fallback"):
        transplant_model(tiny_llama(len(old)), old, new, METHOD, method_options={"k": 3})


def test_model_without_embeddings_or_head_is_an_error(toks, monkeypatch):
    old, _ = toks
    model = tiny_llama(len(old))
    monkeypatch.setattr(model, "get_output_embeddings", lambda: None)
    with pytest.raises(TokengraftError, match="has no output embedding"):
        embedding_modules(model)
    assert embedding_modules(model, kind="encoder")[1] is None
    monkeypatch.setattr(model, "get_input_embeddings", lambda: None)
    with pytest.raises(TokengraftError, match="has no input embedding matrix"):
        embedding_modules(model)


def test_multi_module_model_is_refused(toks):
    old, _ = toks
    model = tiny_llama(len(old))
    model.config.vision_config = {"hidden_size": 8}
    with pytest.raises(TokengraftError, match="multi-module model"):
        run(model, toks)


def test_donor_must_share_the_new_vocabulary(toks):
    old, new = toks
    donor = tiny_llama(len(new) + 6, seed=5)  # padded donor vocabulary: extra rows ignored
    rows_in, rows_out = donor_matrices(donor, new_tokenizer(), new, "tiny")
    assert rows_in.shape == (len(new), 32) and rows_out.data_ptr() == rows_in.data_ptr()
    with pytest.raises(TokengraftError, match=r"donor tiny's vocabulary is not the new tokenizer's \(372 vs 330 ids\)"):
        donor_matrices(tiny_llama(len(old)), old, new, "tiny")


def test_method_needing_a_donor_without_one(toks):
    from dataclasses import dataclass

    from tokengraft.transplant.methods.base import DONOR, METHODS, Needs, register

    @dataclass
    class NoOptions:
        pass

    if "tg-test-donor" not in METHODS:
        register("tg-test-donor", NoOptions, needs=Needs(space=(DONOR,)))(lambda problem, options: None)
    old, new = toks
    with pytest.raises(TokengraftError, match="method tg-test-donor needs --donor SPEC"):
        transplant_model(tiny_llama(len(old)), old, new, "tg-test-donor", inputs=Inputs())


def test_encoder_with_wordpiece_base(toks):
    """minilm-l6-style encoder: WordPiece base (lowercased, no spaces), input embeddings only."""
    from transformers import BertConfig, BertModel

    from transplant_fixtures import wordpiece_tokenizer

    _, new = toks
    old = wordpiece_tokenizer()
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(old), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, pad_token_id=0))
    before = model.get_input_embeddings().weight.detach().clone()
    model, tok, diag = transplant_model(model, old, new, METHOD, kind="encoder")
    assert model.get_input_embeddings().weight.shape == (len(tok), 32) and model.config.vocab_size == len(tok)
    assert model.embeddings.word_embeddings.padding_idx == tok.pad_token_id == new.pad_token_id
    assert model.config.pad_token_id == tok.pad_token_id
    # "le" inside a word is the continuation "##le"; " le" is the word-initial "le" (WordPiece drops spaces)
    rows = model.get_input_embeddings().weight
    inner, word = tok.convert_tokens_to_ids(["le", "Ġle"])
    torch.testing.assert_close(rows[inner], before[old.convert_tokens_to_ids("##le")])
    torch.testing.assert_close(rows[word], before[old.convert_tokens_to_ids("le")])
    assert diag.tokens.source[inner] == "copied" and diag.tokens.source[word] == "copied"
    # the base lowercases: " En" only approximately decomposes (into "en"), "Le" inside a word into "##le"
    for new_token, old_token in [("ĠEn", "en"), ("Le", "##le")]:
        t = tok.convert_tokens_to_ids(new_token)
        assert diag.tokens.source[t] == METHOD
        torch.testing.assert_close(rows[t], before[old.convert_tokens_to_ids(old_token)])
    assert diag.summary.inexact_pieces > 0 and any("approximate" in w for w in diag.summary.warnings)
    assert model(torch.tensor([[1, 2, 3]])).last_hidden_state.shape == (1, 3, 32)


def test_gemma3_keeps_scaled_embedding(toks):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    old, new = toks
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(old), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                              sliding_window=16)
    model = Gemma3ForCausalLM(config).eval()
    cls = type(model.get_input_embeddings())
    model, tok, _, before, _ = run(model, toks)
    emb = model.get_input_embeddings()
    assert type(emb) is cls and emb.weight.shape == (len(tok), 32)
    assert emb.weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    ids = torch.tensor([[tok.convert_tokens_to_ids("<|im_start|>")]])
    torch.testing.assert_close(emb(ids)[0, 0], before[old.convert_tokens_to_ids("<|im_start|>")] * 32 ** 0.5)


def test_written_folder_loads_and_generates(toks, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    old, _ = toks
    model, tok, diag, *_ = run(tiny_llama(len(old), tied=True), toks, pad_to_multiple_of=8)
    out = write_transplant(tmp_path / "m", model, tok, {"method": METHOD}, diag)
    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    loaded_tok = AutoTokenizer.from_pretrained(out)
    assert len(loaded_tok) == len(tok) and loaded_tok.chat_template == old.chat_template
    text = loaded_tok.apply_chat_template([{"role": "user", "content": "Ouvrez le menu"}], add_generation_prompt=True,
                                          tokenize=False)
    ids = torch.tensor([loaded_tok(text, add_special_tokens=False)["input_ids"]])
    assert int(ids[0, 0]) == loaded_tok.convert_tokens_to_ids("<|im_start|>")
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    gen = loaded.generate(ids, max_new_tokens=4, do_sample=False)
    assert gen.shape == (1, ids.shape[1] + 4)
    assert json.loads((out / MANIFEST).read_text())["method"] == METHOD
    lines = (out / TOKENS).read_text().splitlines()
    assert len(lines) == model.config.vocab_size
    rows = [json.loads(line) for line in lines]
    assert set(rows[0]) >= {"id", "text", "src", "n"}
    assert [r["res"] for r in rows if "res" in r] == [0.5]  # the one residual the test method gives
    assert rows[tok.convert_tokens_to_ids("Ġle")]["text"] == " le"  # exact bytes, not the Ġ spelling
    assert rows[tok.convert_tokens_to_ids("<|im_end|>")]["src"] == "added-special"
    assert rows[-1]["src"] == "padding" and rows[-1]["text"] == "<padding>"


def test_existing_folder_and_interrupted_save_leave_nothing(toks, tmp_path, monkeypatch):
    old, _ = toks
    model, tok, diag, *_ = run(tiny_llama(len(old)), toks)
    target = tmp_path / "m"
    target.mkdir()
    with pytest.raises(TokengraftError, match="already exists; choose another --out or pass --overwrite"):
        write_transplant(target, model, tok, {}, diag)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_pretrained", disk_full)
    with pytest.raises(TokengraftError, match="disk full"):
        write_transplant(tmp_path / "new", model, tok, {}, diag)
    with pytest.raises(TokengraftError, match="disk full"):
        write_transplant(target, model, tok, {}, diag, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"] and list(target.iterdir()) == []


def test_real_fvt_through_the_orchestrator(toks):
    """The registry's fvt through the orchestrator equals the reference mean of pieces."""
    old, new = toks
    model = tiny_llama(len(old))
    before = model.get_input_embeddings().weight.detach().clone()
    model, tok, _ = transplant_model(model, old, new, "fvt")
    rows = model.get_input_embeddings().weight
    want = expected_rows(before, tok, old)
    has = [t for t in range(len(tok)) if tok.convert_ids_to_tokens(t) not in ("<pad>",)]
    torch.testing.assert_close(rows[has], want[has])


def _real_smollm2_transplant(tmp_path, out, method: str = "fvt"):
    """smollm2-135m -> a 1k BPE trained on 100 KB of LibreOffice French, through transplant(options);
    the model, the embedder and the corpus missing is a MissingAssetError: a failure, never a skip."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tokengraft.assets import load_corpus
    from tokengraft.transplant.options import TransplantOptions
    from tokengraft.transplant.run import transplant

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(load_corpus("libreoffice:fr:train").truncate(100_000).texts(),
                            trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"], show_progress=False,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>").save_pretrained(tmp_path / "tok")
    held = "\n".join(load_corpus("libreoffice:fr:heldout").truncate(2_000).texts())
    corpus = "libreoffice:fr:dev" if method == "graft" else None  # graft's continuations read French context
    options = TransplantOptions("smollm2-135m", str(tmp_path / "tok"), method=method, out=out, dtype="bfloat16",
                                corpus=corpus)
    return transplant(options), held


def bits_per_byte(model, tok, text: str, max_tokens: int = 128) -> float:
    import math

    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"][:max_tokens]])
    scored = len(tok.decode(ids[0, 1:]).encode("utf-8"))
    with torch.no_grad():
        nll = model(ids, labels=ids).loss.item() * (ids.shape[1] - 1)
    return nll / math.log(2) / scored


def test_real_smollm2_default_method_smoke(tmp_path):
    """The real path in the default run: the default method (graft: MiniLM strings, the base model's
    continuations) on the ~180 new tokens of a 1k French BPE keeps smollm2-135m usable (bits per byte
    far below an untrained model's ~8; the original scores ~1.3 here with its own tokenizer)."""
    from tokengraft.transplant.options import DEFAULT_METHOD

    result, held = _real_smollm2_transplant(tmp_path, out=None, method=DEFAULT_METHOD)
    summary = result.diagnostics.summary
    assert len(result.tokenizer) == 1002 and summary.old_vocab == 49152  # + <|im_start|>, <|im_end|>
    assert summary.counts["copied"] > 600 and result.model.config.vocab_size == 1002
    # 183 measured; 16 fallbacks: the byte tokens whose bytes SmolLM2 cannot spell (no pieces)
    assert 150 < summary.counts[DEFAULT_METHOD] < 400 and summary.counts.get("fallback", 0) <= 16
    assert not result.model.config.tie_word_embeddings  # graft's output rows are its own
    assert 1.0 < bits_per_byte(result.model, result.tokenizer, held) < 3.0
    end = result.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert result.model.generation_config.eos_token_id == [result.tokenizer.eos_token_id, end]
    ids = result.tokenizer("Ouvrez le menu", add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert result.model.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, ids.shape[1] + 3)


@pytest.mark.slow
def test_real_smollm2_written_folder(tmp_path):
    """The written bfloat16 folder reloads with plain transformers to the same bits per byte."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, held = _real_smollm2_transplant(tmp_path, out=tmp_path / "out")
    in_memory = bits_per_byte(result.model, result.tokenizer, held)
    model = AutoModelForCausalLM.from_pretrained(result.out).float()
    tok = AutoTokenizer.from_pretrained(result.out)
    assert model.get_input_embeddings().weight.shape == (1002, 576) and model.config.tie_word_embeddings  # fvt
    assert bits_per_byte(model, tok, held) == pytest.approx(in_memory, abs=0.05)  # bfloat16 rounding only
    ids = tok("Ouvrez le menu", add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, ids.shape[1] + 3)


def test_omp_with_a_donor_and_focus_with_a_corpus(toks, tmp_path, monkeypatch):
    """Donor and auxiliary inputs reach the real methods: OMP in a donor's space, FOCUS on a corpus."""
    from transplant_fixtures import NEW_TEXT

    monkeypatch.setenv("TOKENGRAFT_CACHE", str(tmp_path))  # the aux providers cache vectors there
    old, new = toks
    donor_in, donor_out = donor_matrices(tiny_llama(len(new), seed=9), new_tokenizer(), new, "tiny")
    inputs = Inputs(donor_input=donor_in, donor_output=donor_out)
    model, tok, diag = transplant_model(tiny_llama(len(old), tied=False), old, new, "omp",
                                        method_options={"k": 4}, inputs=inputs)
    s = diag.summary
    # every token that is not copied has a donor vector (the 52 byte tokens and <pad>); the added
    # chat markers have none (zero rows past the donor's vocabulary) but are copied anyway
    assert s.counts == {"copied": 276, "omp": 53, "special": 1, "added-special": 2}
    assert s.residual_median is not None and 0 < s.residual_median < 1  # k=4 atoms of a random 32-d space
    assert torch.isfinite(model.get_input_embeddings().weight).all()
    assert diag.tokens.source_output is not None and diag.tokens.source_output.count("omp") == s.counts["omp"]

    model, tok, diag = transplant_model(tiny_llama(len(old)), old, new, "focus",
                                        inputs=Inputs(corpus_texts=[NEW_TEXT] * 40))
    assert diag.summary.counts["focus"] > 20 and torch.isfinite(model.get_input_embeddings().weight).all()
    with pytest.raises(TokengraftError, match="method focus needs --corpus CORPUS"):
        transplant_model(tiny_llama(len(old)), old, new, "focus")
