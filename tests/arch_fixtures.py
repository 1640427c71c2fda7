"""Tiny random models of each architecture family (hidden 32, 2 layers) and base tokenizers in
each family's style, for the architecture matrix (tests/test_architectures.py) and the GGUF tests.

Shapes the GGUF reader in transformers cannot read from a file keep their config defaults (Gemma's
head_dim 256 = query_pre_attn_scalar, Qwen3's head_dim 128, GPT-2's 1,024 positions), as in the real
models. Each family's traps are built in: Gemma adds and needs ``<bos>`` and scales its embeddings;
Qwen2 has more embedding rows than its tokenizer has ids; GPT-NeoX and Phi-3 are untied; GPT-2,
GPT-NeoX and OLMo2 name their modules their own way; BERT and XLM-R are encoders whose
special tokens ([CLS], [SEP], [MASK]; <s>, </s>, <mask>) play roles a causal LM has no use for.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from transplant_fixtures import BASE_TEXT, NEW_TEXT, base_tokenizer, new_tokenizer, train_tokenizer

H, LAYERS, HEADS, KV, FFN, POS = 32, 2, 4, 2, 64, 128


def _causal(cls_name: str, config_name: str, **kw: Any) -> Callable[[int], Any]:
    def build(vocab: int) -> Any:
        import transformers

        config = getattr(transformers, config_name)(vocab_size=vocab, **kw)
        return getattr(transformers, cls_name)(config).eval()
    return build


_DECODER = dict(hidden_size=H, intermediate_size=FFN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                num_key_value_heads=KV, max_position_embeddings=POS)
_IDS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=None)


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[int], Any]                 # vocab rows -> a model in eval mode
    base_tokenizer: Callable[[], Any]
    new_tokenizer: Callable[[], Any]
    kind: str = "causal"                        # "causal" | "encoder" (the bare encoder: input rows only)
    extra_rows: int = 0                         # embedding rows beyond the base tokenizer (Qwen's padding)


def gemma_tokenizer() -> Any:
    """Gemma-like: ``▁`` for spaces, byte-fallback BPE with ``<0xNN>`` tokens, specials
    <pad>=0 <eos>=1 <bos>=2 <unk>=3, turn markers, ``<bos>`` added to every text."""
    from tokenizers import Tokenizer, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    trained = Tokenizer(models.BPE())
    trained.normalizer = normalizers.Replace(" ", "▁")
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False)
    trained.train_from_iterator([BASE_TEXT] * 20, trainer)
    model = json.loads(trained.to_str())["model"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [p for p, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if p not in pieces]
    data = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(specials)],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {p: i for i, p in enumerate(pieces)}, "merges": model["merges"]},
    }
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)), bos_token="<bos>",
                                  eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
                         "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
    return tok


def wordpiece_base() -> Any:
    """BERT-like: lowercasing WordPiece, [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, [CLS] A [SEP]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator([BASE_TEXT] * 20, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials,
                                                                        show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def roberta_style(text: str, vocab_size: int = 300) -> Any:
    """RoBERTa/XLM-R-like byte-level BPE: <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=4, <s> A </s>."""
    from tokenizers import processors

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = train_tokenizer(text, vocab_size, specials, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                          unk_token="<unk>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def wordpiece_new() -> Any:
    """The throwaway target of the XLM-R base: a cased WordPiece whose [PAD] is id 0 (XLM-R's <pad> is 1)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator([NEW_TEXT + BASE_TEXT] * 20,
                            trainers.WordPieceTrainer(vocab_size=320, special_tokens=specials, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def qwen_like_new() -> Any:
    """A Qwen-3-like target: <|endoftext|> is pad and eos, no bos (tokenkit's Gemma-3 -> Qwen-3 trap)."""
    return train_tokenizer(NEW_TEXT + BASE_TEXT, 330, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                           eos_token="<|im_end|>", pad_token="<|endoftext|>")


def _encoder(cls_name: str, config_name: str, **kw: Any) -> Callable[[int], Any]:
    def build(vocab: int) -> Any:
        import transformers

        config = getattr(transformers, config_name)(vocab_size=vocab, hidden_size=H, num_hidden_layers=LAYERS,
                                                    num_attention_heads=HEADS, intermediate_size=FFN, **kw)
        return getattr(transformers, cls_name)(config).eval()
    return build


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("llama", _causal("LlamaForCausalLM", "LlamaConfig", **_DECODER, **_IDS, tie_word_embeddings=True),
           base_tokenizer, new_tokenizer),
    Family("mistral", _causal("MistralForCausalLM", "MistralConfig", **_DECODER, **_IDS, sliding_window=None),
           base_tokenizer, new_tokenizer),
    Family("qwen2", _causal("Qwen2ForCausalLM", "Qwen2Config", **_DECODER, **_IDS, tie_word_embeddings=True),
           base_tokenizer, new_tokenizer, extra_rows=13),
    Family("qwen3", _causal("Qwen3ForCausalLM", "Qwen3Config", **_DECODER, **_IDS, head_dim=128,
                            tie_word_embeddings=True),
           base_tokenizer, new_tokenizer),
    Family("gemma2", _causal("Gemma2ForCausalLM", "Gemma2Config", **_DECODER, sliding_window=16, bos_token_id=2,
                             eos_token_id=1, pad_token_id=0),
           gemma_tokenizer, qwen_like_new),
    Family("gemma3", _causal("Gemma3ForCausalLM", "Gemma3TextConfig", **_DECODER, sliding_window=16, bos_token_id=2,
                             eos_token_id=[1, 6], pad_token_id=0),
           gemma_tokenizer, qwen_like_new),
    Family("phi3", _causal("Phi3ForCausalLM", "Phi3Config", **_DECODER, **_IDS, original_max_position_embeddings=POS),
           base_tokenizer, new_tokenizer),
    Family("gpt2", _causal("GPT2LMHeadModel", "GPT2Config", n_embd=H, n_layer=LAYERS, n_head=HEADS, n_positions=1024,
                           bos_token_id=0, eos_token_id=0),
           base_tokenizer, new_tokenizer),
    Family("olmo2", _causal("Olmo2ForCausalLM", "Olmo2Config", **_DECODER, **_IDS), base_tokenizer, new_tokenizer),
    Family("gpt_neox", _causal("GPTNeoXForCausalLM", "GPTNeoXConfig", hidden_size=H, intermediate_size=FFN,
                               num_hidden_layers=LAYERS, num_attention_heads=HEADS, max_position_embeddings=POS,
                               tie_word_embeddings=False, bos_token_id=0, eos_token_id=0),
           base_tokenizer, new_tokenizer),
    Family("bert", _encoder("BertModel", "BertConfig", pad_token_id=0, max_position_embeddings=POS),
           wordpiece_base, lambda: roberta_style(NEW_TEXT + BASE_TEXT, 330), kind="encoder"),
    Family("xlm-roberta", _encoder("XLMRobertaModel", "XLMRobertaConfig", pad_token_id=1, bos_token_id=0,
                                   eos_token_id=2, max_position_embeddings=POS + 2),
           lambda: roberta_style(BASE_TEXT), wordpiece_new, kind="encoder"),
]}


def base_model(family: Family, seed: int = 0) -> tuple[Any, Any]:
    """(model, tokenizer) of a family's tiny random base; norms and biases are randomised too, so
    that a wrong sign or offset (Gemma's ``1 + w`` norms) cannot hide behind a zero."""
    tok = family.base_tokenizer()
    torch.manual_seed(seed)
    model = family.build(len(tok) + family.extra_rows)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    return model, tok


def transplant_family(family: Family, tmp_path: Path, method: str = "fvt", **options: Any) -> tuple[Any, Any, Path]:
    """(base model, base tokenizer, written folder): the family's base saved as a folder and
    transplanted to its throwaway tokenizer through the public API."""
    from tokengraft.transplant import TransplantOptions, transplant

    model, base_tok = base_model(family)
    base_dir, new_dir, out = tmp_path / "base", tmp_path / "new", tmp_path / "out"
    model.save_pretrained(base_dir)
    base_tok.save_pretrained(base_dir)
    family.new_tokenizer().save_pretrained(new_dir)
    transplant(TransplantOptions(model=str(base_dir), tokenizer=str(new_dir), method=method, out=str(out),
                                 kind=family.kind, **options))
    return model, base_tok, out
