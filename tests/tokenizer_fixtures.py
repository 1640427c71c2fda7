"""Tiny self-made inputs for the tokenizer tests: a few KB of text and two toy base tokenizers
that mimic SmolLM2 (byte-level BPE, chat markers) and Gemma (byte fallback, ``▁``, adds BOS)."""
from __future__ import annotations

import json
import random

from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import PreTrainedTokenizerFast

WORDS = ("la boîte de dialogue", "de la", "le document", "une macro", "les paramètres", "du texte",
         "dans la cellule", "cliquez sur", "pour insérer", "la fonction", "à la fin", "par défaut",
         "l'application", "n'est pas", "Straße", "привет мир", "日本語", "🦊", "naïve café")
CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def corpus_docs(n_docs: int = 60, seed: int = 0) -> list[str]:
    """Deterministic documents (~15 KB): repeated phrases, numbers, punctuation, newlines."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        lines = []
        for _ in range(rng.randint(2, 5)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
            if rng.random() < 0.4:
                words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
            lines.append(" ".join(words) + rng.choice([".", " !", "?", ";", ":", ","]))
        docs.append(f"Titre {d}\n" + "\n".join(lines))
    return docs


def byte_level_base() -> PreTrainedTokenizerFast:
    """SmolLM2-like: byte-level BPE, GPT-2 regex, specials at 0..2, chat template, no BOS added."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_docs(10, seed=1), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>", model_max_length=2048)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def sentencepiece_base() -> PreTrainedTokenizerFast:
    """Gemma-like: spaces normalised to ``▁``, byte-fallback BPE, ``<bos>`` added, one
    ``<unusedN>`` placeholder (not copied by default)."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<unused0>", "<start_of_turn>", "<end_of_turn>"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)] + ["▁", "a", "b", "▁a", "ab"]
    vocab = {p: i for i, p in enumerate(pieces)}
    data = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(specials)],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [["▁", "a"], ["a", "b"]]},
    }
    tok = Tokenizer.from_str(json.dumps(data))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>", model_max_length=32768)


def digit_splitting_base() -> PreTrainedTokenizerFast:
    """A 1,000+ token byte-level vocabulary with the ten digits but no two digits in one token,
    and no Digits step in its pipeline (what a GGUF conversion of SmolLM2 looks like)."""
    from tokengraft.vocab.alphabet import bytes_to_unicode

    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = ["<|endoftext|>"] + list(bytes_to_unicode().values())
    pieces += [a + b + c for a in letters for b in letters for c in letters[:2]]
    tok = Tokenizer(models.BPE({p: i for i, p in enumerate(pieces)}, []))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
