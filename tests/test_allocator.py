"""semstyle.allocator: freed blocks kept for reuse (glibc), the opt-out, and the console entry point applying it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from semstyle import allocator
from semstyle.cli import main as cli_main

# In a fresh process (the setting is process-wide): malloc, touch and free a 64 MiB block (over glibc's largest
# dynamic mmap threshold, 32 MiB) four times, counting the minor page faults of each round.
PROBE = """
import ctypes, json, resource, sys
from semstyle.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
n, faults = 64 << 20, []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
"""
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def probe(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items()  # glibc's own settings of malloc left out too
           if k not in (allocator.OPT_OUT, "GLIBC_TUNABLES") and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="keep_freed_memory acts on glibc's malloc only")
def test_kept_memory_is_reused_without_page_faults() -> None:
    default, kept = probe("default"), probe("keep")
    if not kept["applied"]:
        pytest.skip("this glibc refused the thresholds (some releases cap the mmap threshold at 32 MiB)")
    first = default["faults"][0]  # one fault per page mapped (fewer, larger pages under transparent huge pages)
    assert not default["applied"] and first > 0
    # glibc's defaults: every round maps the block afresh and faults on its pages again
    assert all(f >= 0.5 * first for f in default["faults"]), default
    # kept: the first round maps it, later rounds reuse the freed block, already mapped
    assert kept["faults"][0] >= 0.5 * first and all(f < 0.05 * first for f in kept["faults"][1:]), kept


def test_opt_out_and_bad_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.OPT_OUT, "default")
    assert allocator.keep_freed_memory() is False
    for bad in (0, -1, 2**31):
        with pytest.raises(ValueError, match="limit must be in"):
            allocator.keep_freed_memory(bad)


def test_the_console_entry_point_keeps_freed_memory_before_running(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli_main, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(cli_main, "main", lambda: calls.append("main") or 0)

    def exit_(rc: int) -> None:
        calls.append(f"exit {rc}")
        raise SystemExit(rc)

    monkeypatch.setattr(cli_main.os, "_exit", exit_)
    # run() ends the process: its exit handlers and logging's shutdown would run the test session's own
    monkeypatch.setattr(cli_main.atexit, "_run_exitfuncs", lambda: None)
    monkeypatch.setattr(cli_main.logging, "shutdown", lambda: None)
    with pytest.raises(SystemExit):
        cli_main.run()
    assert calls == ["keep", "main", "exit 0"]
