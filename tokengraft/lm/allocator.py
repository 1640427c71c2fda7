"""Keep freed memory for the next tensor of the same size (glibc only).

glibc's malloc serves every block above its mmap threshold (at most 32 MB by default) with a
fresh ``mmap`` and unmaps it on ``free``. Training and scoring on a CPU allocate such blocks
at every step (a batch's logits over the vocabulary, the activations of every layer), and the
kernel zeroes each new mapping page by page: two one-thread heals side by side spent 22% of
their CPU time in the kernel, at 30,000 page faults a second each.

:func:`keep_freed_memory` raises the mmap and trim thresholds, so blocks up to ``limit`` come
from the heap and freed ones stay there for the next step. What is kept after a peak is not
returned to the system until the process ends. On another C library (macOS, musl, Windows)
it does nothing and returns False.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LIMIT = 1 << 30   # 1 GiB: larger than any block a training step or a 262k-vocabulary batch needs
OFF_SWITCH = "TOKENGRAFT_SYSTEM_MALLOC"  # set to 1 to keep glibc's defaults (for comparisons)


def keep_freed_memory(limit: int = LIMIT) -> bool:
    """Ask glibc to serve blocks up to ``limit`` bytes from the heap and keep freed memory.

    True when both settings were accepted; False on another C library, or when
    ``$TOKENGRAFT_SYSTEM_MALLOC`` is 1.
    """
    if os.environ.get(OFF_SWITCH) == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(mallopt(M_TRIM_THRESHOLD, limit))
