"""Several processes optimise the same number as one: the global-batch mean.

The first test checks the normalisation in-process (two halves with world = 2, averaged
as DDP averages gradients, equal the whole batch with world = 1). The second launches
real DDP with two CPU processes (gloo) through ``accelerate launch`` and compares it
with one process on the same global batch.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from test_heal_helpers import heal_world, one_thread, tiny_llama  # noqa: F401  (fixtures)

from tokengraft.heal.data import AlmRow
from tokengraft.heal.losses import collate_alm
from tokengraft.heal.steps import Counts, alm_micro, lm_micro


def grads_of(model, objective) -> torch.Tensor:
    model.zero_grad()
    objective.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_process_shares_average_to_the_global_mean(one_thread):  # noqa: F811
    model = tiny_llama(50, seed=0)
    ids = torch.randint(1, 50, (4, 9), generator=torch.Generator().manual_seed(0))
    whole = Counts(tokens=4 * 8, world=1)
    full = grads_of(model, lm_micro(model, ids, whole)[0])
    shared = Counts(tokens=4 * 8, world=2)
    halves = [grads_of(model, lm_micro(model, ids[i * 2:(i + 1) * 2], shared)[0]) for i in range(2)]
    assert torch.allclose((halves[0] + halves[1]) / 2, full, atol=1e-6)  # DDP averages over processes

    rows = [AlmRow([0, 5, 6, 7], [0, 9, 9], [(1, 3, 1, 2), (3, 4, 2, 3)]), AlmRow([0, 5], [0, 8], [(1, 2, 1, 2)]),
            AlmRow([0, 7, 7], [0, 3, 4, 5], [(1, 3, 1, 4)]), AlmRow([0, 9, 8, 7, 6], [0, 1], [(1, 5, 1, 2)])]
    teacher_logp = {0: torch.tensor([-3.0, -1.0]), 1: torch.tensor([-2.0]), 2: torch.tensor([-4.0]), 3: torch.tensor([-6.0])}
    tokens, chunks = sum(len(r.student) - 1 for r in rows), sum(len(r.chunks) for r in rows)

    def objective(part, world):
        batch = collate_alm([rows[i] for i in part])
        t = torch.cat([teacher_logp[i] for i in part])
        return alm_micro(model, t, batch, Counts(tokens, chunks, world), tau=100.0, lm_weight=0.3)[0]

    full = grads_of(model, objective([0, 1, 2, 3], 1))
    halves = [grads_of(model, objective(part, 2)) for part in ([0, 1], [2, 3])]
    assert torch.allclose((halves[0] + halves[1]) / 2, full, atol=1e-6)


def free_port() -> int:
    with socket.socket() as sock:  # other test runs on this machine may hold a fixed port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(args: list[str], launcher: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([*launcher, "-m", "tokengraft.cli.main", "heal", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


# ~30 s each on an idle 2-core machine: the ALM case (uneven rows, chunk counts, a teacher)
# runs by default, the plain LM case only with -m slow.
@pytest.mark.parametrize("mode", [pytest.param("embeddings", marks=pytest.mark.slow), "alm"])
def test_two_cpu_processes_match_one(heal_world, tmp_path, mode):  # noqa: F811
    accelerate = shutil.which("accelerate")
    assert accelerate, "accelerate's launcher is not installed"
    common = ["--model", str(heal_world["student"]), "--corpus", str(heal_world["corpus"]), "--mode", mode,
              "--steps", "4", "--seq-len", "32", "--batch-size", "4", "--lr", "0.01", "--device", "cpu",
              "--save-every", "0", "--eval-every", "0", "--no-progress", "--alm-lm-weight", "0.5",
              "--precision", "fp32"]  # bf16 rounding differs with the split of the batch
    run_cli([*common, "--out", str(tmp_path / "one")], [sys.executable])
    # `--multi_gpu` makes accelerate start one process per rank through torchrun; with
    # --device cpu each process runs on the CPU and torch.distributed uses gloo.
    # (`accelerate launch --cpu` starts a single process unless an MPI hostfile is given.)
    run_cli([*common, "--out", str(tmp_path / "two")],
            [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
             "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())])
    one = json.loads((tmp_path / "one" / "heal.json").read_text())
    two = json.loads((tmp_path / "two" / "heal.json").read_text())
    assert one["processes"] == 1 and two["processes"] == 2
    assert one["tokens_seen"] == two["tokens_seen"]
    for a, b in zip(one["loss_curve"], two["loss_curve"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-7)
    wa, wb = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
