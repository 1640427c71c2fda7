"""Tiny self-made models and tokenizers for the transplant tests (no files, no network).

Two byte-level BPE tokenizers trained in a second on different text (the "base" one has
SmolLM2-style chat markers and a chat template, the "new" one only ``<|endoftext|>``), tiny
random Llamas (hidden 32, 2 layers), and a test method that averages the pieces' rows so the
expected rows are known without depending on any real method's implementation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

BASE_TEXT = (
    "The quick brown fox jumps over the lazy dog. In 2024 the dog slept 12345 hours and 678 minutes.\n"
    "Open the file menu, choose Save As and type a name for the document. Press Enter to confirm.\n"
)
NEW_TEXT = (
    "Le renard brun rapide saute par-dessus le chien paresseux. En 2024, 12345 fichiers et 678 dossiers.\n"
    "Ouvrez le menu Fichier, choisissez Enregistrer sous et saisissez un nom pour le document.\n"
)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEST_METHOD = "tg-test-mean"


def train_tokenizer(text: str, vocab_size: int, specials: list[str], **roles: str):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``text`` repeated (a few KB)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **roles)


def base_tokenizer():
    tok = train_tokenizer(BASE_TEXT, 400, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                          bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def new_tokenizer(vocab_size: int = 330):
    return train_tokenizer(NEW_TEXT, vocab_size, ["<|endoftext|>", "<pad>"],
                           bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<pad>")


def tiny_llama(vocab_size: int, tied: bool = True, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    return LlamaForCausalLM(config).eval()


@dataclass
class MeanOptions:
    fallback: str = "mean"  # rows without pieces get the matrix's mean row


def register_test_method() -> str:
    """Register a reference method: copied rows, else the mean of the pieces' rows, else the mean."""
    from tokengraft.transplant.methods.base import METHODS, InitResult, register

    if TEST_METHOD in METHODS:
        return TEST_METHOD

    @register(TEST_METHOD, MeanOptions, summary="test only: mean of the pieces")
    def _mean(problem, options):
        rows = problem.old.mean(dim=0).repeat(problem.new_size, 1)
        source = []
        for t, pieces in enumerate(problem.pieces):
            if problem.copied[t] >= 0:
                rows[t] = problem.old[problem.copied[t]]
                source.append("copied")
            elif pieces:
                rows[t] = problem.old[pieces].mean(dim=0)
                source.append(TEST_METHOD)
            else:
                source.append("fallback:no-pieces")
        residual = torch.full((problem.new_size,), float("nan"))
        residual[source.index(TEST_METHOD)] = 0.5  # one known residual, to check that residuals reach the diagnostics
        return InitResult(rows, source, residual)

    return TEST_METHOD


def wordpiece_tokenizer():
    """A lowercasing BERT-style WordPiece tokenizer ("##" continuations), like minilm-l6's."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
                                        show_progress=False)
    tok.train_from_iterator([BASE_TEXT + NEW_TEXT] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def run_contract(name: str, problem, options):
    """Method ``name`` on ``problem`` as the orchestrator runs it: the method, then its contract
    (the overlap copied bit for bit, non-finite rows repaired), which no method does itself."""
    from tokengraft.transplant.core import run_method
    from tokengraft.transplant.methods import METHODS

    return run_method(METHODS[name], options, problem)
