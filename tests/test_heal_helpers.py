"""Tiny self-made fixtures for the heal tests (no tests here; imported by tests/test_heal_*.py).

A "transplant": a tiny random Llama (hidden 32, 2 layers) with a throwaway byte-level BPE
of 320 tokens, saved as a folder with a hand-written transplant.json + per-token record
naming its "base model": another tiny Llama with its own 280-token BPE (the ALM teacher).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = ("the quick brown fox jumps over lazy dog der schnelle braune fuchs springt über den faulen hund "
         "le renard rapide saute par-dessus chien paresseux café naïve 日本語 テキスト 🦊 1234 5678").split()


def make_texts(n_docs: int = 24, words: int = 60, seed: int = 0) -> list[str]:
    """Deterministic pseudo-sentences with multi-byte characters (a few KB)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sentences = []
        for _ in range(words // 10):
            sentences.append(" ".join(rng.choice(WORDS) for _ in range(10)).capitalize() + ".")
        docs.append(" ".join(sentences))
    return docs


def train_bpe(texts: list[str], vocab_size: int, folder: Path):
    """A byte-level BPE with <|endoftext|>, saved as a transformers tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return fast


def tiny_llama(vocab_size: int, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def pretrain(model, tokenizer, texts: list[str], steps: int = 60, seq_len: int = 32, lr: float = 1e-2):
    """A few plain LM steps so the teacher knows the text better than chance (seeded)."""
    import torch

    ids = [i for t in texts for i in [tokenizer.eos_token_id, *tokenizer(t)["input_ids"]]]
    rows = torch.tensor(ids[: len(ids) // seq_len * seq_len]).view(-1, seq_len)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for _ in range(steps):
        batch = rows[torch.randint(0, len(rows), (8,), generator=gen)]
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        opt.zero_grad()
    torch.set_num_threads(threads)
    return model


def write_corpus(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (folder / f"doc{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder


_WORLD: dict[str, Path] = {}


@pytest.fixture(scope="session")
def heal_world(tmp_path_factory) -> dict[str, Path]:
    """Paths: ``teacher`` (base model), ``student`` (its transplant), ``corpus``, ``heldout``.

    Built once per session: each test module imports this fixture, which pytest would
    otherwise set up once per module.
    """
    if not _WORLD:
        _WORLD.update(build_world(tmp_path_factory.mktemp("heal_world")))
    return _WORLD


def build_world(root: Path) -> dict[str, Path]:
    texts = make_texts()
    corpus = write_corpus(root / "corpus", texts[:20])
    heldout = write_corpus(root / "heldout", texts[20:])
    teacher_dir, student_dir = root / "teacher", root / "student"
    teacher_tok = train_bpe(texts, 280, teacher_dir)
    pretrain(tiny_llama(len(teacher_tok), seed=1), teacher_tok, texts[:20]).save_pretrained(teacher_dir)
    student_tok = train_bpe(texts[::-1] + [t.upper() for t in texts[:4]], 320, student_dir)
    tiny_llama(len(student_tok), seed=2).save_pretrained(student_dir)
    teacher_vocab = set(teacher_tok.get_vocab())
    lines = []
    for token, idx in sorted(student_tok.get_vocab().items(), key=lambda kv: kv[1]):
        src = ("special:content" if token == "<|endoftext|>" else "copied") if token in teacher_vocab else "fvt"
        lines.append(json.dumps({"id": idx, "text": token, "src": src, "n": 1}))
    (student_dir / "transplant_tokens.jsonl").write_text("\n".join(lines) + "\n")
    (student_dir / "transplant.json").write_text(json.dumps({
        "tokengraft": "transplant", "base_model": str(teacher_dir), "tokenizer": str(student_dir),
        "options": {"model": str(teacher_dir)}, "tokens_file": "transplant_tokens.jsonl"}))
    return {"teacher": teacher_dir, "student": student_dir, "corpus": corpus, "heldout": heldout, "root": root}


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is ~20x faster than
    two threads fighting other processes for the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
