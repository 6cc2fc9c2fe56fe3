"""Keep freed memory in the process instead of handing it back to the kernel (glibc only).

glibc's ``malloc`` serves every block over its mmap threshold (128 KiB at first, raised as such blocks are freed,
32 MiB at most) with a fresh ``mmap`` and returns it with ``munmap`` when freed, and it trims the heap's free top
back to the kernel past 128 KiB. A network's activations are such blocks — a few to a few hundred MiB, allocated
and freed on every call — so every frame pays the kernel's page faults to map and zero them again. On some of the
project's machines that is a fifth to a third of a network's time (``benchmarks/bench_allocator.py``;
docs/speed_study.md, "The allocator").

``keep_freed_memory`` raises both thresholds (256 MiB by default), so freed blocks stay in the heap and the next
call reuses them, already mapped. The price is memory kept: a tiled 2048 px picture peaks 200–300 MB higher.
It is a process-wide setting, so the library never applies it on its own: the command line does (``semstyle``'s
entry point), and an embedding program may call it once at its start. Threads other than the main one allocate
from their own arenas, where glibc still maps blocks over 64 MiB afresh whatever the threshold.
``SEMSTYLE_MALLOC=default`` in the environment leaves glibc's defaults in place.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 28  # blocks up to 256 MiB come from the heap, and up to that much free top stays mapped
OPT_OUT = "SEMSTYLE_MALLOC"  # set to "default" to leave glibc's thresholds alone


def keep_freed_memory(limit: int = KEEP_BYTES) -> bool:
    """Raise glibc's mmap and trim thresholds to ``limit`` bytes (see the module docstring). Returns whether the
    setting was applied: False off glibc, where ``SEMSTYLE_MALLOC=default``, or when glibc refuses a value."""
    if not 0 < limit < 2**31:
        raise ValueError(f"limit must be in (0, 2**31) bytes (mallopt takes a C int), got {limit}")
    if os.environ.get(OPT_OUT, "").lower() == "default":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = {name: bool(mallopt(param, limit)) for name, param in (("mmap", M_MMAP_THRESHOLD),
                                                                  ("trim", M_TRIM_THRESHOLD))}  # 1: set, 0: refused
    log.debug("malloc thresholds at %d bytes: %s", limit, done)  # some glibc releases cap the mmap one at 32 MiB
    return all(done.values())
