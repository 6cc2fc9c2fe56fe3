"""The web server under load, small: benchmarks/bench_web_load.py's own run with 6 clients at once
against a queue of 2 (so some must be told "busy, try again"), then 10 malformed uploads, one of
every kind; plus the pieces that decide its verdict, each shown to fail when it should.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from semstyle.web.guard import busy_message

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


bench = _load("bench_web_load")
H = sys.modules["web_harness"]  # imported by the benchmark from beside it


def test_small_load_run_passes_every_criterion(tmp_path: Path) -> None:
    s = bench.Settings(**bench.QUICK, timeout=60.0, rss_limit_mb=2048.0)
    rep = bench.run(s, workdir=tmp_path)
    text = bench.summary(rep)
    assert rep.failures == [], text
    # 6 requests joined the queue at the same moment; 1 runs and 2 wait, so the rest are refused
    assert len(rep.load) == 6 and rep.count(H.OK) >= 1 and rep.count(H.BUSY) >= 1, text
    assert rep.count(H.OK) + rep.count(H.BUSY) == 6, text
    assert {o.message for o in rep.load if o.kind == H.BUSY} == {busy_message(2)}, text
    assert all(0 < o.seconds < s.timeout for o in rep.load), text
    assert 200 < rep.peak_rss_mb < s.rss_limit_mb, text  # measured: the server is ~600 MB

    kinds = list(H.malformed_kinds(int(s.max_upload_mb * 2**20)))
    assert [k for k, _, _ in rep.malformed] == list(kinds) and len(rep.malformed) == 10
    assert {slot for _, slot, _ in rep.malformed} == set(H.SLOTS)
    said = {k: o.message for k, _, o in rep.malformed}
    assert "damaged or truncated" in said["truncated PNG"] and "damaged or truncated" in said["truncated JPEG"]
    assert "is not an image file" in said["text named .png"] and "is an empty file" in said["zero bytes"]
    assert "maximum allowed size" in said["over the upload limit"]
    assert "3,600,000,000 pixels, over the limit of 40,000,000" in said["PNG bomb, header 60000x60000"]
    assert "900,000,000 pixels" in said["PNG bomb, complete 30000x30000"]
    assert "144,000,000 pixels, over the limit" in said["JPEG bomb, header 12000x12000"]
    assert rep.after_load == "" and rep.after_malformed == ""
    assert "PASS" in text and "latency median / max" in text


def test_malformed_cases_cover_every_kind_in_every_slot() -> None:
    cases = H.malformed_cases(30, 2**20)
    assert len({(k, slot) for k, slot, _, _ in cases}) == 30  # 10 kinds x 3 slots, none twice
    sizes = {k: len(data) for k, _, _, data in cases}
    assert sizes["zero bytes"] == 0 and sizes["over the upload limit"] > 2**20
    assert sizes["PNG bomb, header 60000x60000"] < 4096 < sizes["PNG bomb, complete 30000x30000"] < 200_000


def test_judge_names_each_broken_criterion() -> None:
    s = bench.Settings(clients=4, timeout=10.0, rss_limit_mb=100.0, malformed=3)
    rep = bench.Report(s, peak_rss_mb=150.0, after_load="the page did not load")
    rep.load = [H.Outcome(H.TIMEOUT, "no answer within 10 s", 10.0), H.Outcome(H.BUSY, "Queue is full.", 0.1),
                H.Outcome(H.OK, "done", 12.5, "http://x"), H.Outcome(H.ERROR, "style image is gone", 0.2)]
    rep.malformed = [("zero bytes", "content", H.Outcome(H.ERROR, "Traceback (most recent call last):")),
                     ("truncated PNG", "style", H.Outcome(H.OK, "done")),
                     ("over the upload limit", "content", H.Outcome(H.ERROR, "content image at /tmp/x/y.png"))]
    bad = bench.judge(rep, ("/tmp/",))
    joined = "\n".join(bad)
    for needle in ("ended timeout", "not a clear 'busy, try again' line", "took 12.5 s", "ended error",
                   "peak RSS 150 MB is over the limit of 100 MB", "after the load: the page did not load",
                   "'zero bytes' as content", "'truncated PNG' as style", "'over the upload limit' as content"):
        assert needle in joined, joined
    assert len(bad) == 9
    clean = bench.Report(s, load=[H.Outcome(H.OK, "done", 1.0, "http://x"), H.Outcome(H.BUSY, busy_message(2))])
    clean.settings = bench.Settings(clients=2, timeout=10.0, malformed=0)
    assert bench.judge(clean, ()) == []


def test_clear_line_rules() -> None:
    assert H.clear_line("style image 'a.png' is an empty file")
    assert H.is_busy_answer(busy_message(64)) and not H.is_busy_answer("Queue is full. Max size is 64.")
    for bad in ("", "two\nlines", "x" * 301, '{"error": null}', 'File "/srv/app.py", line 3'):
        assert not H.clear_line(bad), bad
    assert not H.clear_line("content image '/tmp/gradio/ab/c.png' is damaged", ("/tmp/",))


RELEASE = threading.Event()  # set by the test once the client has given up: the stalling handlers then end
STALL = 30.0  # at most this long does a handler stall: a client that waited for the server would take as long


class _Stalling(BaseHTTPRequestHandler):
    """Accepts a queue join, then streams heartbeats until released (never a result)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"event_id": "e1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            end = time.monotonic() + STALL
            while not RELEASE.wait(0.1) and time.monotonic() < end:
                self.wfile.write(b"event: heartbeat\ndata: null\n\n")
                self.wfile.flush()
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("stall", ["heartbeats", "silence"])
def test_a_request_never_outlives_its_timeout(stall: str) -> None:
    timeout = 1.5
    RELEASE.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    if stall == "silence":
        server.RequestHandlerClass = type("Silent", (_Stalling,), {"do_GET": lambda self: RELEASE.wait(STALL)})
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()  # shutdown() waits one poll
    try:
        t0 = time.monotonic()
        out = H.Request(f"http://127.0.0.1:{server.server_address[1]}", timeout=timeout).submit()
        took = time.monotonic() - t0
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()
    assert out.kind == H.TIMEOUT and f"within {timeout:g} s" in out.message, out
    # not before the deadline: it is set after t0, and both the stream's deadline check and the socket's read
    # timeout (rounded up to the millisecond) only fire once it has passed; 10 ms for the clocks' rounding
    assert took >= timeout - 0.01, took
    # long before the server would have answered (STALL = 20 timeouts): 10 timeouts leave room for a loaded machine
    assert took < 10 * timeout < STALL, took
