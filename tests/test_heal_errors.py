"""Bad input gives one clear TokengraftError, and never costs an earlier checkpoint."""
from __future__ import annotations

import json

import pytest
import torch
from test_heal_helpers import heal_world, make_texts, one_thread, tiny_llama  # noqa: F401  (fixtures)
from test_heal_train import interrupt_at, options

from tokengraft.cli.main import main
from tokengraft.errors import TokengraftError
from tokengraft.heal import checkpoint, heal
from tokengraft.heal import trainer as trainer_module

pytestmark = pytest.mark.usefixtures("one_thread")


def test_alm_without_teacher_needs_a_transplant_output(heal_world, tmp_path):  # noqa: F811
    with pytest.raises(TokengraftError, match="not a transplant output.*--teacher"):
        heal(options(heal_world, tmp_path, model=str(heal_world["teacher"]), mode="alm"))


def test_teacher_tokenizer_that_cannot_cover_the_text(heal_world, tmp_path):  # noqa: F811
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # Word-level BPE with <unk>, trained on ASCII: no byte fallback, no spaces kept.
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["the quick brown fox"] * 10, trainers.BpeTrainer(
        vocab_size=60, special_tokens=["<|endoftext|>", "[UNK]"], show_progress=False))
    folder = tmp_path / "bad-teacher"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="[UNK]")
    fast.save_pretrained(folder)
    tiny_llama(len(fast), seed=3).save_pretrained(folder)
    with pytest.raises(TokengraftError, match="teacher tokenizer cannot represent the training text exactly"):
        heal(options(heal_world, tmp_path, mode="alm", teacher=str(folder)))
    assert not (tmp_path / "out").exists()


def test_empty_corpus(heal_world, tmp_path):  # noqa: F811
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("")
    with pytest.raises(TokengraftError, match="empty"):
        heal(options(heal_world, tmp_path, corpus=[str(empty)]))


def test_corrupted_checkpoint_on_resume_names_the_earlier_one(heal_world, tmp_path, monkeypatch):  # noqa: F811
    opts = dict(steps=6, save_every=2)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 5)
        with pytest.raises(KeyboardInterrupt):
            heal(options(heal_world, tmp_path, **opts))
    root = tmp_path / "out.checkpoints"
    newest = root / "step-00000004"
    data = bytearray((newest / "state.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (newest / "state.pt").write_bytes(bytes(data))
    with pytest.raises(TokengraftError, match="step-00000004 is corrupted.*resume from step-00000002"):
        heal(options(heal_world, tmp_path, resume=True, **opts))
    assert checkpoint.load(root / "step-00000002")["step"] == 2  # the earlier one is intact
    (newest / "state.pt").unlink()
    (newest / "manifest.json").unlink()
    newest.rmdir()
    assert heal(options(heal_world, tmp_path, resume=True, **opts)).steps == 6


def test_out_of_memory_suggests_a_smaller_batch_and_keeps_the_checkpoint(heal_world, tmp_path, monkeypatch):  # noqa: F811
    real = trainer_module.lm_micro
    calls = []

    def oom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "lm_micro", oom)
    with pytest.raises(TokengraftError, match=r"out of memory .* smaller --batch-size.*step-00000002 is intact"):
        heal(options(heal_world, tmp_path, steps=6, save_every=2))
    assert not (tmp_path / "out").exists()
    assert checkpoint.load(tmp_path / "out.checkpoints" / "step-00000002")["step"] == 2


def test_existing_output_and_leftover_checkpoints_are_refused(heal_world, tmp_path):  # noqa: F811
    (tmp_path / "out").mkdir()
    with pytest.raises(TokengraftError, match="already exists.*--overwrite"):
        heal(options(heal_world, tmp_path))
    (tmp_path / "out").rmdir()
    with pytest.raises(TokengraftError, match="no checkpoint"):
        heal(options(heal_world, tmp_path, resume=True))
    (tmp_path / "out.checkpoints" / "step-00000002").mkdir(parents=True)
    with pytest.raises(TokengraftError, match="earlier run.*--resume"):
        heal(options(heal_world, tmp_path))


@pytest.mark.parametrize("kw, message", [
    (dict(batch_size=3, grad_accum=2), "multiple of"),
    (dict(mode="full", only_new=True), "--only-new"),
    (dict(mode="sgd"), "unknown mode"),
    (dict(corpus=[]), "no training text"),
    (dict(sparse_negatives=-1), "cannot be negative"),
    (dict(data_order="sorted"), "unknown --data-order"),
])
def test_bad_options(heal_world, tmp_path, kw, message):  # noqa: F811
    with pytest.raises(TokengraftError, match=message):
        heal(options(heal_world, tmp_path, **kw))


def test_cli_prints_one_line_and_exits_2(heal_world, tmp_path, capsys):  # noqa: F811
    code = main(["heal", "--model", str(heal_world["teacher"]), "--corpus", str(heal_world["corpus"]),
                 "--mode", "alm", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("error: --model") and lines[0].endswith("pass --teacher SPEC")


def test_cli_maps_flags_onto_options(heal_world, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "cli-out"
    code = main(["heal", "--model", str(heal_world["student"]), "--corpus", str(heal_world["corpus"]),
                 "--steps", "2", "--seq-len", "16", "--batch-size", "2", "--lr", "0.01", "--eval",
                 str(heal_world["heldout"]), "--eval-max-bytes", "2000", "--out", str(out), "--no-progress"])
    assert code == 0
    record = json.loads((out / "heal.json").read_text())
    assert record["options"]["seq_len"] == 16 and record["options"]["lr"] == 0.01 and record["steps"] == 2
    assert record["options"]["eval"] == [str(heal_world["heldout"])]
    # before, after 2 steps, and the written model (lora's default keeps 0.75 of the change)
    assert [e["step"] for e in record["eval_curve"]] == [0, 2, 2] and record["eval_curve"][-1]["interpolate"] == 0.75
    assert record["interpolate"] == 0.75 and record["options"]["interpolate"] is None
    assert "held-out" in capsys.readouterr().out
