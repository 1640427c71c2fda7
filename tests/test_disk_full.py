"""Fault injection: the disk fills up part-way through a save.

The fault: a save writes half of its file and then raises ``OSError(ENOSPC)``, as a full
disk does. In transplant (model weights), tokenizer train (tokenizer.json) and heal's
checkpointing (state.pt), the earlier output or checkpoint must survive byte for byte
(compared by SHA-256), nothing half-written may remain, and the one-line error must say
that the disk is full and where to free space.
"""
from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest
import torch

from bad_inputs_world import one_thread, world  # noqa: F401  (fixtures)
from tokengraft.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Temporary siblings a failed write would leave (``.name.tmp-*``, ``.name.old-*``)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name))


def fill_disk(monkeypatch, owner, name: str, path_of, on_call: int | None = None,
              fault: type[BaseException] = OSError) -> list[int]:
    """Make ``owner.name`` write only half of its file and raise ENOSPC (or ``fault``, e.g. a Ctrl-C)
    on call ``on_call``, or on every call."""
    real, calls = getattr(owner, name), []

    def flaky(*args, **kwargs):
        calls.append(1)
        result = real(*args, **kwargs)
        if on_call is None or len(calls) == on_call:
            path = Path(path_of(*args, **kwargs))
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            if fault is OSError:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            raise fault()
        return result

    monkeypatch.setattr(owner, name, flaky)
    return calls


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_transplant_keeps_the_earlier_folder_when_the_disk_fills(world, monkeypatch, capsys):
    import transformers.modeling_utils as modeling

    out = Path(world["root"]) / "transplanted"
    argv = ["transplant", "--method", "fvt", "--model", world["base"], "--tokenizer", world["tok"], "--out", str(out)]
    assert main(argv) == 0
    earlier = hashes(out)
    calls = fill_disk(monkeypatch, modeling, "safe_save_file", lambda state, filename, *a, **k: filename)
    assert main([*argv, "--overwrite", "--seed", "1"]) == 2
    line = one_error_line(capsys)
    assert calls and line.startswith(f"error: disk full while writing {out}: free at least ")
    assert f"on the disk that holds {out.parent}" in line and line.endswith(f"{out} is as it was before")
    assert hashes(out) == earlier and leftovers(out.parent) == []
    # with no earlier folder, nothing at all is left
    fresh = out.with_name("fresh")
    assert main([*argv[:-1], str(fresh)]) == 2
    assert "disk full" in one_error_line(capsys) and not fresh.exists() and leftovers(out.parent) == []


def test_tokenizer_train_keeps_the_earlier_folder_when_the_disk_fills(world, monkeypatch, capsys):
    from transformers import PreTrainedTokenizerFast

    out = Path(world["root"]) / "trained"
    argv = ["tokenizer", "train", "--corpus", world["corpus"], "--vocab-size", "300", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    earlier = hashes(out)
    fill_disk(monkeypatch, PreTrainedTokenizerFast, "_save_pretrained",
              lambda *a, **k: Path(k.get("save_directory") or a[1]) / "tokenizer.json")
    assert main([*argv, "--overwrite", "--vocab-size", "290"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: disk full while writing {out}: free space on the disk that holds {out.parent}")
    assert line.endswith("is as it was before")
    assert hashes(out) == earlier and leftovers(out.parent) == []


def test_heal_keeps_the_earlier_checkpoint_when_the_disk_fills(world, monkeypatch, capsys):
    out = Path(world["root"]) / "healed"
    root = out.with_name("healed.checkpoints")
    argv = ["heal", "--model", world["base"], "--corpus", world["corpus"], "--steps", "6", "--save-every", "2",
            "--eval-every", "0", "--seq-len", "16", "--batch-size", "2", "--no-progress", "--out", str(out)]
    seen: dict[str, dict[str, str]] = {}
    real_save = torch.save

    def save_and_remember(obj, f, *a, **k):  # the first checkpoint's files, as written
        real_save(obj, f, *a, **k)
        if not seen and (root / "step-00000002").is_dir():
            seen["step-2"] = hashes(root / "step-00000002")

    monkeypatch.setattr(torch, "save", save_and_remember)
    fill_disk(monkeypatch, torch, "save", lambda obj, f, *a, **k: f, on_call=2)
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: disk full while writing {root / 'step-00000004'}: free at least ")
    assert line.endswith("and continue with --resume; checkpoint step-00000002 is intact")
    assert [p.name for p in root.iterdir()] == ["step-00000002"] and not out.exists()
    assert hashes(root / "step-00000002") == seen["step-2"]
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0  # the surviving checkpoint is usable
    assert out.is_dir() and not root.exists()


def _saves(world):
    """(command line, output folder, the save to break, its path argument) for each stage."""
    import transformers.modeling_utils as modeling
    from transformers import PreTrainedTokenizerFast

    root = Path(world["root"])
    return {
        "transplant": (["transplant", "--method", "fvt", "--model", world["base"], "--tokenizer", world["tok"],
                        "--out", str(root / "i-transplant")], root / "i-transplant",
                       (modeling, "safe_save_file", lambda state, filename, *a, **k: filename)),
        "tokenizer train": (["tokenizer", "train", "--corpus", world["corpus"], "--vocab-size", "300", "--no-progress",
                             "--out", str(root / "i-tok")], root / "i-tok",
                            (PreTrainedTokenizerFast, "_save_pretrained",
                             lambda *a, **k: Path(k.get("save_directory") or a[1]) / "tokenizer.json")),
        "heal": (["heal", "--model", world["base"], "--corpus", world["corpus"], "--steps", "2", "--eval-every", "0",
                  "--seq-len", "16", "--batch-size", "2", "--no-progress", "--out", str(root / "i-heal")],
                 root / "i-heal", (torch, "save", lambda obj, f, *a, **k: f)),
    }


@pytest.mark.parametrize("stage", ["transplant", "tokenizer train", "heal"])
def test_ctrl_c_while_saving_keeps_the_earlier_output(world, monkeypatch, capsys, stage):
    argv, out, (owner, name, path_of) = _saves(world)[stage]
    assert main(argv) == 0
    earlier = hashes(out)
    extra = ["--save-every", "1", "--steps", "3"] if stage == "heal" else []  # heal: the Ctrl-C hits a checkpoint
    fill_disk(monkeypatch, owner, name, path_of, fault=KeyboardInterrupt)
    assert main([*argv, "--overwrite", *extra]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted; nothing half-written was kept"
    assert hashes(out) == earlier and leftovers(out.parent) == []
    if stage == "heal":
        assert not Path(str(out) + ".checkpoints").exists()  # the interrupted first checkpoint left nothing
