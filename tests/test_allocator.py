"""glibc keeps freed blocks for reuse once tokengraft has asked it to (tokengraft/lm/allocator.py)."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tokengraft.lm.allocator import OFF_SWITCH, keep_freed_memory

# Allocate, touch and free a 64 MB block three times; print the minor page faults of the last two.
PROBE = """
import resource, sys
from tokengraft.lm.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def touch():
    block = bytearray(64 << 20)   # zero-filled: every page is written
    del block
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch(); touch()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


@glibc_only
def test_freed_blocks_are_reused_without_page_faults():
    kept, with_keep = _faults("keep")
    _, without = _faults("system")
    assert kept == "True"
    assert without > 2 * (64 << 20) // 4096 * 0.9   # each 64 MB block mapped afresh: ~16k faults apiece
    assert with_keep < without / 10                  # the freed block came back from the heap


def test_off_switch_keeps_the_system_defaults(monkeypatch):
    monkeypatch.setenv(OFF_SWITCH, "1")
    assert keep_freed_memory() is False


def test_only_the_stepping_stages_keep_freed_memory(monkeypatch, tmp_path):
    from tokengraft.cli import main as cli

    called = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: called.append(True) or True)
    assert cli.KEEP_FREED_MEMORY <= set(cli.STAGES)
    missing = str(tmp_path / "nowhere")
    assert cli.main(["eval", "--model", missing, "--text", "libreoffice:de:dev"]) == 2  # fails fast, after the call
    assert called == [True]
    assert cli.main(["transplant", "--model", missing, "--tokenizer", missing, "--out", str(tmp_path / "o")]) == 2
    assert called == [True]  # transplant keeps glibc's defaults
