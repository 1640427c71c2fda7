"""Batch-OMP's Gram route as a compiled kernel: the ``"gram"`` selection of :func:`omp_batched`.

Batch-OMP (Rubinstein, Zibulevsky & Elad 2008) precomputes G = D D^T (N x N) and alpha0 = D y;
each step's correlations are then alpha = alpha0 - G[S, :]^T gamma, t x N multiply-adds instead
of the scan's e x N (2,080 rows of G per target over k = 64 steps against 64 x 640). In pure
torch this route is memory-bound because a batch's targets read different rows of G. Here each
thread runs ONE target through all k steps (``omp_gram.cpp``, C++ compiled once with ``g++ -O3
-march=native`` and loaded with ctypes), so that target's rows (k x N float16: 5.9 MB for
Gemma-3's 46k atoms at k = 64) stay in the CPU's cache.

G is stored in float16 (2 N^2 bytes). Picks stay those of the exact float32 pursuit: with a
rigorous bound on the error of alpha (float16 G, float32 products and sums), every atom whose
|alpha| lies within the bound of the best is re-scored as |<d_j, y - D_S gamma>| in float32, and
the best of them is the pick (a band wider than ``BAND`` atoms re-scores all atoms).

Fallbacks (one log line, never an error): no C++ compiler or a failed build, or G larger than
half the available memory -> the ``"screened"`` selection.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("omp_gram.cpp")
FLAGS = ["-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-pthread"]
TILE = 2048               # rows of G per float32 product while it is built
CHUNK = 1024              # targets per kernel call (alpha0: CHUNK x N floats)
MEMORY_SHARE = 0.5        # G may take at most this share of the available memory
U32 = 2.0 ** -24

_library: ctypes.CDLL | None = None
_failed: str | None = None


def _cpu_key() -> str:
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def library() -> ctypes.CDLL | None:
    """The compiled kernel (built once per source, flags and CPU into the cache), or None if it cannot be built."""
    global _library, _failed
    if _library is not None or _failed is not None:
        return _library
    from tokengraft.assets.cache import cache_dir

    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        _failed = "no C++ compiler (g++) found"
        return None
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([compiler, *FLAGS, _cpu_key()]).encode()).hexdigest()[:16]
    path = cache_dir("kernels", f"omp_gram-{key}.so")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(tmp)], capture_output=True, text=True)
        except OSError as err:
            _failed = f"{compiler} cannot run: {err.strerror}"
            return None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            _failed = f"{compiler} failed: {last}"
            return None
        tmp.replace(path)
    lib = ctypes.CDLL(str(path))
    p, i64, f32, f64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_int
    lib.tg_omp_gram.argtypes = [p, i64, i64, p, f32, p, f32, p, p, i64, i32, f32, f32, f32, f64, f64, f64, i32, i32,
                                p, p, p, p]
    lib.tg_omp_gram.restype = i32
    lib.tg_mirror.argtypes = [p, i64, i64, i64, i32]
    lib.tg_mirror.restype = None
    _library = lib
    return lib


def unavailable(size: int) -> str | None:
    """Why the gram selection cannot run for ``size`` atoms here (None when it can)."""
    need = 2 * size * size
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        free = info.get("MemAvailable", pages)
    except (OSError, ValueError):
        free = None
    if free is not None and need > MEMORY_SHARE * free:
        return f"its float16 Gram matrix ({need / 2**30:.1f} GiB) exceeds half the available memory ({free / 2**30:.1f} GiB)"
    if library() is None:
        return _failed
    return None


def gram_matrix(atoms: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(G / scale in float16 (N, N), scale = max squared atom norm): float32 products of row tiles
    with the atoms from the tile on (the upper triangle), mirrored into the lower one by the kernel."""
    size = atoms.shape[0]
    scale = float((atoms * atoms).sum(1).max()) or 1.0
    gram = torch.empty(size, size, dtype=torch.float16)
    block = torch.empty(min(TILE, size), size)
    for first in range(0, size, TILE):
        last = min(first + TILE, size)
        out = block[: last - first, : size - first]
        torch.mm(atoms[first:last], atoms[first:].T, out=out)
        gram[first:last, first:] = out.mul_(1.0 / scale)
    library().tg_mirror(gram.data_ptr(), size, 0, size, torch.get_num_threads())
    return gram, scale


def gram_pursuit(targets: torch.Tensor, dictionary, k: int, ridge: float, dependent: float,
                 stop2: float, band: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indices (B, k), coefficients (B, k), relative residuals (B,)) of the exact float32 pursuit, by the kernel.

    Targets go through in chunks of ``CHUNK`` (alpha0 = D y is CHUNK x N floats). A target whose
    band grows wider than ``band`` atoms even with atom-by-atom bounds gets index -1 in column 0:
    the caller runs it with another selection.
    """
    lib = library()
    gram, scale = dictionary.gram()
    atoms = dictionary.atoms
    size, dim = atoms.shape
    targets = targets.float().contiguous()
    indices = torch.zeros(targets.shape[0], k, dtype=torch.long)
    coef = torch.zeros(targets.shape[0], k, dtype=torch.float32)
    residual = torch.zeros(targets.shape[0], dtype=torch.float32)
    stats = torch.zeros(3, dtype=torch.long)
    grest = (1.01 * dim + 4) * U32     # the float32 product and the scaling, per n_i n_j
    gerr = 2.0 ** -11 + grest          # + float16 rounding (2^-11 of the stored value <= n_i n_j)
    a0err = 1.01 * dim * U32
    buffer = torch.empty(min(CHUNK, targets.shape[0]), size)  # one allocation: no page faults per chunk
    for first in range(0, targets.shape[0], CHUNK):
        chunk = targets[first:first + CHUNK]
        alpha0 = torch.mm(chunk, atoms.T, out=buffer[: chunk.shape[0]])
        lib.tg_omp_gram(atoms.data_ptr(), size, dim, gram.data_ptr(), scale, dictionary.norms().data_ptr(),
                        dictionary.max_norm, chunk.data_ptr(), alpha0.data_ptr(), chunk.shape[0], k, ridge,
                        dependent, stop2, gerr, grest, a0err, band, torch.get_num_threads(),
                        indices[first:].data_ptr(), coef[first:].data_ptr(), residual[first:].data_ptr(),
                        stats.data_ptr())
        dictionary.gram_stats = tuple(a + int(b) for a, b in zip(dictionary.gram_stats, stats))
    return indices, coef, residual
