"""The web server under load and under malformed uploads, end to end over loopback HTTP.

    python benchmarks/bench_web_load.py                 # 20 clients, 30 malformed uploads
    python benchmarks/bench_web_load.py --quick         # 6 clients, queue of 2, 10 malformed uploads

It starts ``semstyle serve`` (127.0.0.1 only, a free port, CPU, results up to ``--size`` px) in a
subprocess whose temporary folder is the script's own, waits for it, sends one warm-up request,
then ``--clients`` clients at once through the page's API (Gradio's queue: upload both images,
``POST /gradio_api/call/stylize``, read the answer's event stream). Each request must finish within
``--timeout`` s (enforced on every HTTP read) and either complete or be refused with the server's
one-line "busy, try again" answer (HTTP 503 when the queue is full). The server's resident memory
(its process and every child, sampled from /proc, and the kernel's own high-water mark) must stay
below ``--rss-limit-mb``; afterwards the page must load, a stylisation must complete and its result
file must download. Then ``--malformed`` bad uploads, one after another, each in the content, style
or label-map slot: truncated PNG and JPEG, text and random bytes named as images, zero bytes, a file
over the upload limit, decompression bombs (a 60000x60000 PNG header, a complete 30000x30000 PNG of
~110 KB, a 12000x12000 JPEG header) and a PNG with a broken header checksum. Each must get a clear
one-line message (no traceback, no server path), the server must stay up and answer afterwards.

A table of the figures is printed; the exit status is 1 if any criterion fails. The test suite runs a
small version (tests/test_web_load.py) through ``run``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from web_harness import (  # noqa: E402 - the harness sits beside this script
    BUSY,
    ERROR,
    OK,
    REFUSED,
    Outcome,
    Request,
    Server,
    clear_line,
    is_busy_answer,
    labels,
    malformed_cases,
    picture,
    png,
)


@dataclass(frozen=True)
class Settings:
    clients: int = 20
    timeout: float = 120.0  # s per request: uploads, the wait in the queue and the stylisation
    rss_limit_mb: float = 2048.0  # the server process and its children together
    queue_size: int = 64  # semstyle serve's default
    concurrency: int = 1
    size: int = 128  # output size (and the server's --max-size)
    malformed: int = 30
    max_upload_mb: float = 2.0
    start_timeout: float = 240.0
    warmup: bool = True


QUICK = {"clients": 6, "queue_size": 2, "malformed": 10}


# ----------------------------------------------------------------------------- the runs
@dataclass
class Report:
    settings: Settings
    load: list[Outcome] = field(default_factory=list)
    malformed: list[tuple[str, str, Outcome]] = field(default_factory=list)  # kind, slot, outcome
    peak_rss_mb: float = 0.0
    after_load: str = ""  # "" when the server answered after the load, else why not
    after_malformed: str = ""
    load_average: str = ""
    failures: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.load)


def stylize(base: str, timeout: float, content: bytes, style: bytes, size: int, tag: str = "") -> Outcome:
    req = Request(base, timeout)
    for slot, data in (("content", content), ("style", style)):
        refused = req.upload(slot, f"{slot}{tag}.png", data)
        if refused:
            return refused
    return req.submit(size=size)


def check_answers(server: Server, s: Settings) -> str:
    """'' if the page loads, a stylisation completes and its result downloads as a PNG; else what failed."""
    if not server.answers():
        return "the page did not load" if server.alive() else f"the server exited ({server.proc.returncode})"
    out = stylize(server.base, s.timeout, png(picture(99)), png(picture(98)), s.size, "-check")
    if out.kind != OK or not out.result_url:
        return f"a stylisation did not complete: {out.kind}: {out.message}"
    r = httpx.get(out.result_url, timeout=30)
    if r.status_code != 200 or not r.content.startswith(b"\x89PNG"):
        return f"the result did not download (HTTP {r.status_code})"
    return ""


def run_load(server: Server, s: Settings) -> list[Outcome]:
    """``s.clients`` clients upload their images, then join the queue at the same moment."""
    start = threading.Barrier(s.clients)

    def client(i: int) -> Outcome:
        req = Request(server.base, s.timeout)
        for slot, data in (("content", png(picture(2 * i))), ("style", png(picture(2 * i + 1, 128, 128)))):
            refused = req.upload(slot, f"{slot}-{i}.png", data)
            if refused:
                start.abort()
                return refused
        try:
            start.wait(timeout=s.timeout)
        except threading.BrokenBarrierError:
            pass
        return req.submit(size=s.size)

    with cf.ThreadPoolExecutor(s.clients) as pool:
        return list(pool.map(client, range(s.clients)))


def run_malformed(server: Server, s: Settings) -> list[tuple[str, str, Outcome]]:
    limit = int(s.max_upload_mb * 2**20)
    good = {"content": png(picture(50)), "style": png(picture(51, 128, 128)), "style_labels": png(labels(128, 128)),
            "content_labels": png(labels())}
    results = []
    for kind, slot, name, data in malformed_cases(s.malformed, limit):
        req = Request(server.base, s.timeout)
        semantic = "labels" if slot.endswith("labels") else "none"
        needed = [k for k in good if semantic == "labels" or not k.endswith("labels")]
        out = None
        for k in needed:
            out = req.upload(k, name if k == slot else f"{k}.png", data if k == slot else good[k])
            if out:
                break
        results.append((kind, slot, out or req.submit(semantic, s.size)))
        if not server.alive():
            break
    return results


def judge(rep: Report, forbidden: tuple[str, ...]) -> list[str]:
    """The criteria that failed, one line each."""
    s, bad = rep.settings, []
    for o in rep.load:
        if o.kind not in (OK, BUSY):
            bad.append(f"a load request ended {o.kind}: {o.message[:160]}")
        elif o.kind == BUSY and not is_busy_answer(o.message):
            bad.append(f"a busy answer is not a clear 'busy, try again' line: {o.message[:160]}")
        elif o.seconds > s.timeout + 1.0:
            bad.append(f"a request took {o.seconds:.1f} s, over the {s.timeout:g} s limit")
    if not rep.count(OK):
        bad.append("no load request completed")
    if rep.peak_rss_mb > s.rss_limit_mb:
        bad.append(f"peak RSS {rep.peak_rss_mb:.0f} MB is over the limit of {s.rss_limit_mb:g} MB")
    if rep.after_load:
        bad.append(f"after the load: {rep.after_load}")
    for kind, slot, o in rep.malformed:
        expected = REFUSED if kind == "over the upload limit" else ERROR
        if o.kind != expected or not clear_line(o.message, forbidden):
            bad.append(f"malformed '{kind}' as {slot}: expected a clear {expected} message, got {o.kind}: "
                       f"{o.message[:160]!r}")
    if len(rep.malformed) < s.malformed:
        bad.append(f"the server died after {len(rep.malformed)} malformed uploads")
    if rep.after_malformed:
        bad.append(f"after the malformed uploads: {rep.after_malformed}")
    return bad


def run(s: Settings, workdir: Path | None = None) -> Report:
    """Start a server, load it, send the malformed uploads, and judge; the server is stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="semstyle-webload-") as tmp:
        work = workdir or Path(tmp)
        rep = Report(s)
        with Server(work, size=s.size, queue_size=s.queue_size, concurrency=s.concurrency,
                    max_upload_mb=s.max_upload_mb, start_timeout=s.start_timeout) as server:
            if s.warmup:
                warm = stylize(server.base, s.start_timeout, png(picture(97)), png(picture(96)), s.size, "-warm")
                if warm.kind != OK:
                    raise RuntimeError(f"the warm-up request failed: {warm.kind}: {warm.message}")
            rep.load = run_load(server, s)
            rep.after_load = check_answers(server, s)
            rep.malformed = run_malformed(server, s)
            rep.after_malformed = check_answers(server, s)
            server.stop()
            rep.peak_rss_mb = server.peak / 2**20
        rep.load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
        rep.failures = judge(rep, (str(work), "/tmp/"))
        return rep


def summary(rep: Report) -> str:
    s, lat = rep.settings, sorted(o.seconds for o in rep.load if o.kind == OK)
    lines = [f"web server under load: {s.clients} clients at once, queue {s.queue_size}, concurrency "
             f"{s.concurrency}, {s.size} px, {s.timeout:g} s per request; load average {rep.load_average}",
             f"  {'completed':<28}{rep.count(OK):>6}",
             f"  {'busy, try again':<28}{rep.count(BUSY):>6}",
             f"  {'other answers (failures)':<28}{len(rep.load) - rep.count(OK) - rep.count(BUSY):>6}"]
    if lat:
        lines.append(f"  {'latency median / max':<28}{statistics.median(lat):>6.2f} / {lat[-1]:.2f} s")
    busy = next((o.message for o in rep.load if o.kind == BUSY), "")
    if busy:
        lines.append(f"  {'busy answer':<28}{busy}")
    lines += [f"  {'peak RSS (server + children)':<28}{rep.peak_rss_mb:>6.0f} MB (limit {s.rss_limit_mb:g} MB)",
              f"  {'server after the load':<28}{rep.after_load or 'answers'}",
              f"malformed uploads: {len(rep.malformed)} sent, "
              f"{sum(o.kind in (ERROR, REFUSED) for _, _, o in rep.malformed)} answered with a message; "
              f"server after them: {rep.after_malformed or 'answers'}",
              f"  {'kind':<32}{'slot':<16}{'answer':<9}message"]
    lines += [f"  {k:<32}{slot:<16}{o.kind:<9}{o.message[:110]}" for k, slot, o in rep.malformed]
    lines.append("PASS" if not rep.failures else "FAIL:\n  " + "\n  ".join(rep.failures))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    d = Settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=None, help=f"concurrent clients (default {d.clients})")
    ap.add_argument("--timeout", type=float, default=d.timeout, help="s per request, enforced (default %(default)s)")
    ap.add_argument("--rss-limit-mb", type=float, default=d.rss_limit_mb,
                    help="bound on the server's peak RSS with its children (default %(default)s)")
    ap.add_argument("--queue-size", type=int, default=None, help=f"server's queue (default {d.queue_size})")
    ap.add_argument("--concurrency", type=int, default=d.concurrency, help="server's --concurrency (default 1)")
    ap.add_argument("--size", type=int, default=d.size, help="output size, px (default %(default)s)")
    ap.add_argument("--malformed", type=int, default=None, help=f"malformed uploads (default {d.malformed})")
    ap.add_argument("--quick", action="store_true", help="6 clients, a queue of 2, 10 malformed uploads")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    chosen = {k: v for k, v in (("clients", a.clients), ("queue_size", a.queue_size), ("malformed", a.malformed))
              if v is not None}
    s = Settings(**{**(QUICK if a.quick else {}), **chosen}, timeout=a.timeout, rss_limit_mb=a.rss_limit_mb,
                 concurrency=a.concurrency, size=a.size)
    if s.clients < 1 or s.timeout <= 0 or s.malformed < 0:
        ap.error("--clients must be at least 1, --timeout positive and --malformed at least 0")
    try:
        rep = run(s)
    except RuntimeError as e:
        print(f"bench_web_load: {e}", file=sys.stderr)
        return 1
    print(summary(rep))
    if a.json:
        a.json.write_text(json.dumps(asdict(rep), indent=1) + "\n")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
