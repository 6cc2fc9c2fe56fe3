"""`semstyle serve` as a user starts it, in an environment that says nothing about analytics:
it listens on this machine only (unless told otherwise, with a warning) and Gradio's analytics
are off by the app's own doing, already when Gradio is first imported.

The server runs under a small wrapper that observes without changing anything: it records the
environment at Gradio's first import, reports Gradio's own view of analytics once the page is
up, and refuses (and records) any name lookup that is not this machine, so even a regression
that turned analytics on could not reach the internet from the test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import stop

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc/net")

WRAPPER = r"""
import importlib.abc, ipaddress, json, os, socket, sys

at_import, lookups = {}, []

class FirstGradioImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "gradio" and not at_import:
            at_import.update({k: os.environ.get(k) for k in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY")})
        return None

sys.meta_path.insert(0, FirstGradioImport())

real_getaddrinfo = socket.getaddrinfo

def local_only(host, *a, **kw):
    name = host.decode() if isinstance(host, bytes) else host
    try:
        local = name in (None, "", "localhost") or ipaddress.ip_address(name).is_loopback \
            or ipaddress.ip_address(name).is_unspecified
    except ValueError:
        local = False
    if not local:
        lookups.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "the test allows this machine only")
    return real_getaddrinfo(host, *a, **kw)

socket.getaddrinfo = local_only

import semstyle.web.app as app

real_launch = app.launch

def launch(demo, *a, **kw):
    out = real_launch(demo, *a, **kw)
    import gradio.analytics
    report = {"at_import": at_import, "blocks": demo.analytics_enabled, "gradio": gradio.analytics.analytics_enabled(),
              "env": os.environ.get("GRADIO_ANALYTICS_ENABLED"), "lookups": lookups}
    print("WRAPPER " + json.dumps(report), flush=True)
    return out

app.launch = launch

from semstyle.cli.main import main

sys.exit(main(["serve", *sys.argv[1:]]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_on(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)  # the kernel writes each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def gone_mid_upload(port: int) -> None:
    """A client that sends the first part of an upload and goes away, as a closed tab does; then the next request is
    answered (the server must log one line for it, not a traceback)."""
    head = (f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; "
            "boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"files\"; "
            "filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + b"\x89PNG" * 256)
        time.sleep(0.5)
    assert httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).status_code == 200


@pytest.mark.parametrize("host", [None, "0.0.0.0"], ids=["default-host", "host-0.0.0.0"])
def test_serve_binds_localhost_and_disables_analytics_itself(host: str | None, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY")}
    args = ["--port", str(port), "--device", "cpu", *(["--host", host] if host else [])]
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *args], stdout=out, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 120
        while "serving on" not in out_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"semstyle serve did not start (exit {proc.poll()}):\n{err_path.read_text()[-2000:]}")
            time.sleep(0.3)
        listening = listening_on(port)
        config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).json()
        gone_mid_upload(port)
    finally:
        stop(proc)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("WRAPPER ")]
    report = json.loads(line.removeprefix("WRAPPER "))

    # analytics: off before Gradio's first import, off as Gradio sees it, off in the page's config
    assert report["at_import"] == {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}, report
    assert report["blocks"] is False and report["gradio"] is False and report["env"] == "False", report
    assert config["analytics_enabled"] is False
    assert report["lookups"] == [], report  # nothing tried to reach another machine
    assert "Traceback" not in stderr

    warning = "anyone who can reach this address can use the app"
    if host is None:
        assert listening == {"127.0.0.1"}, listening  # this machine only
        assert warning not in stderr
        assert f"serving on http://localhost:{port}" in stdout
    else:
        assert listening == {"0.0.0.0"}, listening
        assert f"WARNING semstyle.cli.serve: serving on 0.0.0.0: {warning}" in stderr, stderr


def test_only_a_client_going_away_is_quieted() -> None:
    import asyncio

    from starlette.requests import ClientDisconnect

    from semstyle.web.guard import QuietDisconnect

    async def raising(exc: BaseException) -> None:
        async def app(scope, receive, send) -> None:
            raise exc
        await QuietDisconnect(app)({"type": "http", "method": "POST", "path": "/x"}, None, None)

    asyncio.run(raising(ClientDisconnect()))  # nobody to answer: one log line
    with pytest.raises(RuntimeError, match="a real error"):
        asyncio.run(raising(RuntimeError("a real error")))
