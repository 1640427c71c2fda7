"""The hypernetwork on tiny self-made models: shapes, merge cuts, sampling, untrained = FVT,
losses go down, resume is exact, another base model is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypernet_fixtures import hn_world  # noqa: F401  (fixture)
from test_heal_helpers import one_thread  # noqa: F401  (fixture)

from tokengraft.errors import TokengraftError
from tokengraft.hypernet import HypernetTrainOptions, load_hypernet, train_hypernet
from tokengraft.hypernet.forest import MergeForest
from tokengraft.hypernet.model import Hypernet, HypernetConfig, pad_pieces
from tokengraft.hypernet.sampling import SamplerOptions, sample_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_options(world, out, **kw) -> HypernetTrainOptions:
    base = dict(model=str(world["base"]), corpus=[str(world["corpus"])], out=str(out), steps=8, hidden=32, heads=2,
                ffn=64, recon_tokens=64, recon_k_min=0, head_tokens=768, head_chunk_len=64, head_chunks=4, lm_rows=2,
                lm_seq_len=32, negatives=32, min_vocab=300, max_vocab=600, save_every=0, progress=False, lr=3e-3,
                warmup=2)
    base.update(kw)
    return HypernetTrainOptions(**base)


def test_shapes_and_padding():
    ids, mask = pad_pieces([[4], [1, 2, 3], [5, 6]], max_len=2)
    assert ids.tolist() == [[4, 0], [1, 2], [5, 6]] and mask.sum(1).tolist() == [1, 2, 2]
    old_in, old_out = torch.randn(20, 12), torch.randn(20, 12)
    for untied in (False, True):
        net = Hypernet(HypernetConfig(d_model=12, untied=untied, hidden=16, layers=2, heads=4, ffn=32, max_pieces=2))
        net.set_base_statistics(old_in, old_out)
        assert net.input.in_features == (24 if untied else 12)
        assert net(old_in, old_out, ids, mask).shape == (3, 24)
        rows_in, rows_out = net.rows(old_in, old_out, ids, mask)
        assert rows_in.shape == rows_out.shape == (3, 12)
        # untrained: the mean of the pieces read, for input and output rows alike
        assert torch.allclose(rows_in[1], old_in[[1, 2]].mean(0)) and torch.allclose(rows_out[1], old_out[[1, 2]].mean(0))


def test_merge_cut_equals_bpe_with_a_truncated_merge_list(hn_world):  # noqa: F811
    from tokenizers import Tokenizer, models, pre_tokenizers

    from tokengraft.assets import load_tokenizer

    tok = load_tokenizer(hn_world["base"])
    model = json.loads(tok.backend_tokenizer.to_str())["model"]
    forest = MergeForest.from_tokenizer(tok)
    vocab, merges = model["vocab"], [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    inverse = {i: s for s, i in vocab.items()}
    targets = forest.targets()
    assert len(targets) == len(merges)
    for k in (0, 10, 40):
        reference = Tokenizer(models.BPE(vocab, merges[:k]))
        reference.pre_tokenizer = pre_tokenizers.Split("\n", behavior="isolated")  # no regex split: one token, one piece
        for t in targets[::7].tolist():
            expected = reference.encode(inverse[t], add_special_tokens=False).ids
            assert forest.cut(t, k) == expected, (inverse[t], k)
    tokens, pieces = forest.sample(np.random.default_rng(0), 50, k_min=0, max_pieces=4)
    assert all(2 <= len(p) <= 4 for p in pieces)
    assert all("".join(inverse[i] for i in p) == inverse[t] for t, p in zip(tokens, pieces))


@pytest.mark.parametrize("kind", ["unigram", "bpe", "superword"])
def test_sampled_tokenizers_are_seeded_and_lossless(hn_world, kind):  # noqa: F811
    from tokengraft.assets import load_corpus

    texts = load_corpus(str(hn_world["corpus"])).texts()
    options = SamplerOptions(min_vocab=1000, max_vocab=1500, sample_bytes=20000, noise_mean=1e-9, noise_sigma=0.1)
    a = sample_tokenizer(texts, np.random.default_rng(3), options, kind=kind)
    b = sample_tokenizer(texts, np.random.default_rng(3), options, kind=kind)
    assert a.token_bytes == b.token_bytes and 300 <= len(a.token_bytes) <= 1500
    for text, (ids, spans) in zip(texts[:5], a.encode_batch(texts[:5])):
        data = text.encode("utf-8")
        assert b"".join(a.token_bytes[i] for i in ids) == data
        assert all(data[s:e] == a.token_bytes[i] for i, (s, e) in zip(ids, spans))
    if kind == "superword":
        assert any(b" " in t.strip() for t in a.token_bytes)  # tokens spanning words


def untrained_folder(world, path):
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.hypernet import store
    from tokengraft.hypernet.base import Base, probe

    base = Base.from_model("tiny-base", load_model(world["base"]), load_tokenizer(world["base"]))
    net = Hypernet(HypernetConfig(base.d_model, hidden=16, heads=2, ffn=32))
    net.set_base_statistics(base.old_in, base.old_out)
    path.mkdir()
    store.write_folder(path, net, probe(base.old_in), {"base_model": "tiny-base", "base_fingerprint": base.fingerprint})
    return path


def transplant_with(world, folder, base="base"):
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.transplant.core import transplant_model

    return transplant_model(load_model(world[base]), load_tokenizer(world[base]), load_tokenizer(world["newtok"]),
                            "hypernet", method_options={"path": str(folder)})


def test_untrained_hypernetwork_transplants_exactly_like_fvt(hn_world, tmp_path):  # noqa: F811
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.transplant.core import transplant_model

    model, tok, diag = transplant_with(hn_world, untrained_folder(hn_world, tmp_path / "hn"))
    fvt, _, _ = transplant_model(load_model(hn_world["base"]), load_tokenizer(hn_world["base"]),
                                 load_tokenizer(hn_world["newtok"]), "fvt")
    expected = fvt.get_input_embeddings().weight
    assert model.get_input_embeddings().weight.shape == expected.shape == (len(tok), 32)
    assert torch.equal(model.get_input_embeddings().weight, expected)
    assert torch.equal(model.get_output_embeddings().weight, expected)
    assert not model.config.tie_word_embeddings  # output rows of its own: the model comes out untied
    sources = set(diag.tokens.source)
    assert {"copied", "hypernet"} <= sources


def test_a_hypernetwork_of_another_base_model_is_refused(hn_world, tmp_path):  # noqa: F811
    folder = untrained_folder(hn_world, tmp_path / "hn")
    with pytest.raises(TokengraftError, match="belongs to base model 'tiny-base'"):
        transplant_with(hn_world, folder, base="other")
    with pytest.raises(TokengraftError, match="needs a trained hypernetwork"):
        transplant_with(hn_world, "")


def _fixed_losses(trainer) -> dict[str, float]:
    """The losses of one fixed batch (step 0's draw), without training on it."""
    step = trainer.step
    trainer.step = 0
    rng = np.random.default_rng([99, 0])
    parts = trainer.parts(rng)
    with torch.no_grad():
        rows_in, rows_out = trainer.predict([p for part in parts for p in part.pieces])
    out, at = {}, 0
    for part in parts:
        n = len(part.pieces)
        out[part.name] = float(part.loss(rows_in[at:at + n], rows_out[at:at + n])[0])
        at += n
    trainer.step = step
    return out


def test_every_objective_lowers_its_loss_on_a_tiny_llama(hn_world, tmp_path):  # noqa: F811
    from tokengraft.heal.setup import make_accelerator
    from tokengraft.hypernet.train import _loop, build_trainer

    options = tiny_options(hn_world, tmp_path / "hn", objectives=["recon", "head", "lm"], steps=40,
                           tokenizer_every=40)
    trainer = build_trainer(options, make_accelerator(options))
    before = _fixed_losses(trainer)
    _loop(trainer, tmp_path / "ckpt")
    after = _fixed_losses(trainer)
    assert set(before) == {"recon", "head", "lm"}
    for name in before:
        assert after[name] < before[name] * 0.97, (name, before[name], after[name])


def interrupt_at(patch, step):
    """Raise KeyboardInterrupt when training step ``step`` (1-based) is about to run; record steps."""
    from tokengraft.hypernet import train as train_module

    taken: list[int] = []
    original = train_module.Trainer.train_step

    def wrapped(self):
        if step is not None and self.step + 1 == step:
            raise KeyboardInterrupt
        taken.append(self.step + 1)
        return original(self)

    patch.setattr(train_module.Trainer, "train_step", wrapped)
    return taken


def test_resume_reproduces_an_uninterrupted_run_exactly(hn_world, tmp_path, monkeypatch):  # noqa: F811
    from safetensors.torch import load_file

    common = dict(objectives=["recon", "head", "lm"], steps=6, save_every=2, tokenizer_every=3)
    straight = train_hypernet(tiny_options(hn_world, tmp_path / "a" / "hn", **common))
    with monkeypatch.context() as patch:
        interrupt_at(patch, 4)
        with pytest.raises(KeyboardInterrupt):
            train_hypernet(tiny_options(hn_world, tmp_path / "b" / "hn", **common))
    assert sorted(p.name for p in (tmp_path / "b" / "hn.checkpoints").iterdir()) == ["step-00000002"]
    with monkeypatch.context() as patch:
        taken = interrupt_at(patch, None)
        resumed = train_hypernet(tiny_options(hn_world, tmp_path / "b" / "hn", resume=True, **common))
    assert taken == [3, 4, 5, 6]
    a, b = load_file(str(straight / "hypernet.safetensors")), load_file(str(resumed / "hypernet.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    curve = lambda p: [e["loss"] for e in json.loads((p / "hypernet.json").read_text())["loss_curve"]]  # noqa: E731
    assert curve(straight) == curve(resumed) and len(curve(straight)) == 6
    assert not (tmp_path / "b" / "hn.checkpoints").exists()


def test_saved_folder_records_its_base_and_refuses_to_resume_on_another(hn_world, tmp_path):  # noqa: F811
    out = train_hypernet(tiny_options(hn_world, tmp_path / "hn", objectives=["recon"], steps=2))
    record = json.loads((out / "hypernet.json").read_text())
    assert record["base_model"] == str(hn_world["base"]) and len(record["base_fingerprint"]) == 64
    assert record["base_rows"] == 300 and record["base_tied"] is True and record["steps"] == 2
    loaded = load_hypernet(out)
    assert loaded.net.config.hidden == 32 and loaded.probe.shape[1] == 32
    with pytest.raises(TokengraftError, match="already exists"):
        train_hypernet(tiny_options(hn_world, tmp_path / "hn", objectives=["recon"], steps=2))
    with pytest.raises(TokengraftError, match="not a hypernetwork folder"):
        load_hypernet(hn_world["corpus"])


def test_max_seconds_is_the_whole_commands_budget(hn_world, tmp_path):  # noqa: F811
    import time

    start = time.perf_counter()
    out = train_hypernet(tiny_options(hn_world, tmp_path / "hn", objectives=["recon", "head"], steps=1, max_seconds=8.0))
    took = time.perf_counter() - start
    record = json.loads((out / "hypernet.json").read_text())
    assert record["steps"] > 1  # --steps is ignored under a time budget
    assert 0 < record["loop_budget"] < 8.0 and record["train_seconds"] >= record["loop_budget"]
    assert took < 8.0 + 3.0  # the last step may overrun a little; writing has its reserve
    lrs = [e["lr"] for e in record["loss_curve"]]
    assert lrs[-1] < max(lrs)  # the schedule decays over the budget
    with pytest.raises(TokengraftError, match="spent before training starts"):
        train_hypernet(tiny_options(hn_world, tmp_path / "hn2", objectives=["recon"], max_seconds=0.01))
