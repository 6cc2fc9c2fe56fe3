"""Helpers for driving ``semstyle serve`` over loopback HTTP: the server in a subprocess (with its
resident memory sampled from /proc), one client request through the page's API (Gradio's queue:
upload, ``POST /gradio_api/call/stylize``, the answer's event stream, all within a deadline), and
the bad uploads. Used by benchmarks/bench_web_load.py and tests/test_web_load.py, test_web_security.py.
"""

from __future__ import annotations

import functools
import html
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

API = "/gradio_api"
OK, BUSY, ERROR, REFUSED, FAILED, TIMEOUT = "ok", "busy", "error", "refused", "failed", "timeout"

# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def high_water_bytes(pid: int) -> int:
    """The kernel's peak resident memory of ``pid`` itself (VmHWM), 0 if unknown."""
    try:
        line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        return 0


class Server:
    """``semstyle serve`` in a subprocess on 127.0.0.1 (unless ``args`` say otherwise), its temporary
    folder (Gradio's uploads and results, the engine's outputs) under ``workdir``/tmp, its working
    folder ``workdir``/cwd; ``peak`` is the highest resident memory of it and its children so far."""

    def __init__(self, workdir: Path, *, size: int = 128, queue_size: int = 64, concurrency: int = 1,
                 max_upload_mb: float = 2.0, start_timeout: float = 240.0, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp, cwd = workdir / "tmp", workdir / "cwd"
        self.tmp.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(exist_ok=True)
        self.log = workdir / "server.log"
        env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
        env.update(TMPDIR=str(self.tmp), PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "semstyle", "serve", "--port", str(self.port), "--device", "cpu",
               "--max-size", str(size), "--queue-size", str(queue_size), "--concurrency", str(concurrency),
               "--max-upload-mb", str(max_upload_mb), *args]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        self.peak, self._stop = 0, threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        deadline = time.monotonic() + start_timeout
        while "serving on" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"semstyle serve did not start: {self.log.read_text()[-1500:]}")
            time.sleep(0.3)

    def _sample(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            self.peak = max(self.peak, tree_rss_bytes(self.proc.pid), high_water_bytes(self.proc.pid))
            self._stop.wait(0.1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def answers(self) -> bool:
        """The process runs and its page loads."""
        try:
            return self.alive() and httpx.get(self.base + "/", timeout=30).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------- the page's API
@dataclass
class Outcome:
    kind: str  # ok, busy, error (the app's message), refused (the upload), failed, timeout
    message: str
    seconds: float = 0.0  # from the queue join to the answer
    result_url: str | None = None


def file_data(path: str, name: str) -> dict:
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def form(files: dict[str, dict], semantic: str = "none", size: int = 128) -> list:
    """The stylise endpoint's inputs, in the page's order."""
    return [files.get("content"), files.get("style"), semantic, files.get("content_labels"),
            files.get("style_labels"), 1.0, False, size, "pretrained", 0, "adain", None, "(none)",  # no style model
            None, None]  # no painted strokes


def detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except (ValueError, AttributeError):
        return r.text.strip()


def text_of(status_html: str) -> str:
    """The page's status box as plain text (the one line a user reads)."""
    return html.unescape(re.sub(r"<[^>]+>", "", status_html)).removeprefix("Error: ").strip()


class Request:
    """One client's request: ``upload`` its files, then ``submit``; ``deadline`` bounds both."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base, self.timeout = base, timeout
        self.deadline = time.monotonic() + timeout
        self.http = httpx.Client(base_url=base)
        self.files: dict[str, dict] = {}

    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.05)

    def upload(self, slot: str, name: str, data: bytes) -> Outcome | None:
        """Upload one file for ``slot``; an Outcome if the server refused it."""
        try:
            r = self.http.post(API + "/upload", files={"files": (name, data, "application/octet-stream")},
                               timeout=self.left())
        except httpx.TimeoutException:
            return Outcome(TIMEOUT, f"the upload got no answer within {self.timeout:g} s")
        if r.status_code != 200:
            return Outcome(REFUSED, detail(r))
        self.files[slot] = file_data(r.json()[0], name)
        return None

    def submit(self, semantic: str = "none", size: int = 128) -> Outcome:
        t0 = time.monotonic()
        try:
            return self._submit(semantic, size, t0)
        except httpx.TimeoutException:
            return Outcome(TIMEOUT, f"no answer within {self.timeout:g} s", time.monotonic() - t0)
        except httpx.HTTPError as e:
            return Outcome(FAILED, f"{type(e).__name__}: {e}", time.monotonic() - t0)
        finally:
            self.http.close()

    def _submit(self, semantic: str, size: int, t0: float) -> Outcome:
        r = self.http.post(API + "/call/stylize", json={"data": form(self.files, semantic, size)}, timeout=self.left())
        if r.status_code == 503:
            return Outcome(BUSY, detail(r), time.monotonic() - t0)
        if r.status_code != 200:
            return Outcome(FAILED, f"HTTP {r.status_code}: {detail(r)}", time.monotonic() - t0)
        event = ""
        with self.http.stream("GET", f"{API}/call/stylize/{r.json()['event_id']}", timeout=self.left()) as s:
            for line in s.iter_lines():
                if time.monotonic() > self.deadline:
                    return Outcome(TIMEOUT, f"no result within {self.timeout:g} s", time.monotonic() - t0)
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    return parse(event, json.loads(line.removeprefix("data:")), time.monotonic() - t0)
        return Outcome(FAILED, "the answer stream ended without a result", time.monotonic() - t0)


def parse(event: str, data: object, seconds: float) -> Outcome:
    if event == "complete" and isinstance(data, list) and len(data) == 5 and isinstance(data[4], str):
        result, status = data[0], data[4]
        if 'id="semstyle-ok"' in status and isinstance(result, dict) and result.get("url"):
            return Outcome(OK, text_of(status), seconds, result["url"])
        if 'id="semstyle-error"' in status:
            return Outcome(ERROR, text_of(status), seconds)
    return Outcome(FAILED, f"unexpected answer ({event}): {json.dumps(data)[:200]}", seconds)


def clear_line(message: str, forbidden: tuple[str, ...] = ()) -> bool:
    """One line of at most 300 characters, no traceback, no server path."""
    m = message.strip()
    return (0 < len(m) <= 300 and "\n" not in m and "Traceback" not in m and 'File "' not in m
            and m not in ("null", "None", '{"error": null}') and not any(f in m for f in forbidden))


def is_busy_answer(message: str) -> bool:
    return clear_line(message) and "busy" in message and "try again" in message


# ----------------------------------------------------------------------------- inputs
def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def picture(seed: int, w: int = 160, h: int = 120) -> np.ndarray:
    """A small photo-like picture: a colour gradient with noise, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([xx, yy, 1 - xx * yy], -1) * rng.uniform(0.5, 1.0, 3)
    return (np.clip(base + rng.normal(0, 0.08, base.shape), 0, 1) * 255).astype(np.uint8)


def labels(w: int = 160, h: int = 120) -> np.ndarray:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[h // 2:] = (0, 0, 255)
    return arr


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(w: int = 60000, h: int = 60000) -> bytes:
    """A PNG whose header says w x h RGB pixels, followed by a few KB of rows: a tiny file."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * w) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


@functools.lru_cache(maxsize=1)
def png_complete_bomb(side: int = 30000) -> bytes:
    """A complete, valid 1-bit PNG of side x side pixels: 112 MB of pixels in ~110 KB."""
    co, row = zlib.compressobj(9), b"\0" * (1 + (side + 7) // 8)
    idat = b"".join(co.compress(row * 1000) for _ in range(side // 1000)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_header_bomb(w: int = 12000, h: int = 12000) -> bytes:
    """A small JPEG whose frame header claims w x h pixels."""
    data = bytearray(jpeg(picture(7, 64, 64)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def malformed_kinds(max_upload: int) -> dict[str, tuple[str, bytes]]:
    """Every kind of bad upload: kind → (file name, bytes)."""
    good_png, good_jpg = png(picture(1)), jpeg(picture(2))
    broken = bytearray(good_png)
    broken[29] ^= 0xFF  # the last byte of the IHDR checksum
    return {
        "truncated PNG": ("half.png", good_png[: len(good_png) // 2]),
        "truncated JPEG": ("half.jpg", good_jpg[: len(good_jpg) // 2]),
        "text named .png": ("notes.png", b"these are notes, not pixels\n" * 40),
        "random bytes named .jpg": ("noise.jpg", np.random.default_rng(3).bytes(4096)),
        "zero bytes": ("empty.png", b""),
        "over the upload limit": ("huge.png", np.random.default_rng(4).bytes(max_upload + 1024)),
        "PNG bomb, header 60000x60000": ("bomb.png", png_header_bomb()),
        "PNG bomb, complete 30000x30000": ("bomb-full.png", png_complete_bomb()),
        "JPEG bomb, header 12000x12000": ("bomb.jpg", jpeg_header_bomb()),
        "PNG, broken header checksum": ("broken.png", bytes(broken)),
    }


SLOTS = ("content", "style", "content_labels")


def malformed_cases(n: int, max_upload: int) -> list[tuple[str, str, str, bytes]]:
    """``n`` cases (kind, slot, name, bytes): every kind once, then again in the other slots."""
    kinds = list(malformed_kinds(max_upload).items())
    cases = [(kind, SLOTS[(i + r) % len(SLOTS)], name, data)
             for r in range(-(-n // len(kinds))) for i, (kind, (name, data)) in enumerate(kinds)]
    return cases[:n]
