"""The web server's security against a live ``semstyle serve`` (127.0.0.1, its own temporary folder):
Gradio's file routes serve nothing outside the server's temporary folders (``/etc/passwd``, ``..``,
URL-encoded ``%2e%2e``, the engine's own output folder, the working folder), a real result downloads,
paths named by a client's payload are never read, client file names never become paths, uploads and
results live in the temporary folder only and are deleted when the server stops, and the server
listens on 127.0.0.1 unless ``--host`` says otherwise, and then warns.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import socket
import sys
from pathlib import Path

import pytest
from PIL import Image
from test_web_serve import listening_on

from semstyle.web.forms import safe_stem

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import web_harness as H  # noqa: E402 - the harness beside the load benchmark

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc/net")
PASSWD = b"root:x:0:0"


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET ``target`` byte for byte (an HTTP client library would normalise away the ``..``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def stylize(server: H.Server, content: bytes, style: bytes, name: str = "c.png") -> tuple[H.Outcome, H.Request]:
    req = H.Request(server.base, 120)
    assert req.upload("content", name, content) is None and req.upload("style", "s.png", style) is None
    return req.submit(), req


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with H.Server(tmp_path_factory.mktemp("security"), max_upload_mb=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def result_url(server: H.Server) -> str:
    out, _ = stylize(server, H.png(H.picture(1)), H.png(H.picture(2)))
    assert out.kind == H.OK and out.result_url, out
    return out.result_url


def test_listens_on_loopback_only_by_default(server: H.Server) -> None:
    assert listening_on(server.port) == {"127.0.0.1"}


def _targets(server: H.Server) -> list[str]:
    up = server.tmp / "gradio"  # Gradio's upload folder, inside the server's temporary folder
    owns = glob.glob(str(server.tmp / "semstyle-web-*" / "*" / "*.png"))  # the engine's copies of the results so far
    assert owns, "the result_url fixture stylised once: its copy must be there"
    secret = server.tmp.parent / "cwd" / "secret.txt"
    secret.write_text("not for clients")
    dots = "%2e%2e/" * 8
    return [
        "/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../../../../../../etc/passwd",
        f"/gradio_api/file={dots}etc/passwd", "/gradio_api/file=" + "%2e%2e%2f" * 8 + "etc%2fpasswd",
        "/gradio_api/file=" + "%252e%252e/" * 8 + "etc/passwd", "/gradio_api/file=%2fetc%2fpasswd",
        "/gradio_api/file=//etc/passwd", "/gradio_api/file=file:///etc/passwd",
        f"/gradio_api/file={up}/../../../../../../../etc/passwd", f"/gradio_api/file={up}/{dots}etc/passwd",
        "/gradio_api/file/etc/passwd", "/gradio_api/file/../../../../etc/passwd", "/file=/etc/passwd",
        "/gradio_api/file=/proc/self/environ", *(f"/gradio_api/file={own}" for own in owns),
        f"/gradio_api/file={secret}",
        f"/gradio_api/file={up}/../../cwd/secret.txt", f"/gradio_api/file=http://127.0.0.1:{server.port}/config",
        f"/gradio_api/proxy=http://127.0.0.1:{server.port}/config", "/static/../../../../etc/passwd",
        f"/static/{dots}etc/passwd", "/assets/" + "..%2f" * 8 + "etc%2fpasswd",
        "/svelte/" + "..%2f" * 8 + "etc%2fpasswd",
    ]


def test_file_routes_serve_nothing_outside_the_temporary_folders(server: H.Server, result_url: str) -> None:
    answers = {t: raw_get(server.port, t) for t in _targets(server)}
    for target, (status, body) in answers.items():
        assert status in (400, 403, 404), (target, status, body[:200])
        assert PASSWD not in body and b"not for clients" not in body and b"\x89PNG" not in body, target
    assert answers["/gradio_api/file=/etc/passwd"][0] == 403


def test_a_result_file_downloads(server: H.Server, result_url: str) -> None:
    target = result_url.split(str(server.port), 1)[1]
    path = Path(target.split("file=", 1)[1])
    assert path.is_relative_to(server.tmp / "gradio"), path  # served from Gradio's cache in the temp folder
    status, body = raw_get(server.port, target)
    assert status == 200 and body.startswith(b"\x89PNG")
    assert Image.open(path).size == (128, 96)


def _call(server: H.Server, content: dict, style: dict) -> tuple[str, object]:
    """The stylise endpoint with hand-made payloads: (event, data) of its answer."""
    import httpx

    with httpx.Client(base_url=server.base, timeout=120) as c:
        r = c.post("/gradio_api/call/stylize", json={"data": H.form({"content": content, "style": style})})
        assert r.status_code == 200, r.text
        with c.stream("GET", f"/gradio_api/call/stylize/{r.json()['event_id']}") as s:
            event = ""
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    return event, json.loads(line.removeprefix("data:"))
    raise AssertionError("no answer")


@pytest.mark.parametrize("where", ["outside", "dot-dot from the upload folder", "symlink in the upload folder",
                                   "outside, marked as FileData"])
def test_paths_named_by_a_client_are_never_read(server: H.Server, where: str, tmp_path: Path) -> None:
    outside = tmp_path / "private.png"  # a readable image the server must not stylise for anyone
    Image.fromarray(H.picture(5)).save(outside)
    up = server.tmp / "gradio"
    path = {"outside": str(outside), "outside, marked as FileData": str(outside),
            "dot-dot from the upload folder": f"{up}/../../../../../../..{outside}"}.get(where)
    if where == "symlink in the upload folder":
        link = up / "planted" / "link.png"
        link.parent.mkdir(exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(outside)
        path = str(link)
    payload = H.file_data(path, "mine.png") if "FileData" in where else {"path": path, "orig_name": "mine.png"}
    _, req = stylize(server, H.png(H.picture(3)), H.png(H.picture(4)))  # a real upload for the style slot
    event, data = _call(server, payload, req.files["style"])
    if where == "outside, marked as FileData":  # Gradio's own check refuses it before the handler
        assert event == "error", data
        return
    assert event == "complete" and isinstance(data, list), data
    assert data[0] is None, data  # no result
    message = H.text_of(data[4])
    assert message == "the content image 'mine.png' was not uploaded to this server; upload the file again"
    assert str(outside) not in message and H.clear_line(message, ("/tmp/",))


@pytest.mark.parametrize("name", ["../../../../etc/cron.d/evil.png", "a\x00b.png", "..", "C:\\Windows\\win.ini",
                                  "line\nbreak <b>x</b>.png"])
def test_client_file_names_never_become_paths(server: H.Server, name: str) -> None:
    _, req = stylize(server, H.png(H.picture(6)), H.png(H.picture(7)))
    content = dict(req.files["content"], orig_name=name)  # what a client may claim its file was called
    event, data = _call(server, content, req.files["style"])
    assert event == "complete" and isinstance(data, list) and 'id="semstyle-ok"' in data[4], data
    result = Path(data[0]["path"])
    assert result.is_relative_to(server.tmp / "gradio") and result.exists()
    assert result.name == f"semstyle_{safe_stem(name, 'upload')}_s.png"
    assert all(ch.isalnum() or ch in "_- ." for ch in result.name), result.name


def test_uploads_and_results_stay_in_the_temporary_folder_and_go_with_the_server(tmp_path: Path) -> None:
    with H.Server(tmp_path, max_upload_mb=1) as srv:
        before = set(os.listdir(tmp_path / "cwd"))
        out, req = stylize(srv, H.png(H.picture(8)), H.png(H.picture(9)), name="holiday.png")
        assert out.kind == H.OK, out
        mine = [Path(f["path"]) for f in req.files.values()] + [Path(out.result_url.split("file=", 1)[1])]
        mine += [Path(p) for p in glob.glob(str(srv.tmp / "semstyle-web-*" / "*" / "*.png"))]
        assert len(mine) == 4 and all(p.is_relative_to(srv.tmp) and p.is_file() for p in mine), mine
        assert set(os.listdir(tmp_path / "cwd")) == before == set()  # nothing written where it was started
    assert srv.proc.returncode == 0  # SIGTERM closes it like Ctrl-C
    assert not any(p.exists() for p in mine), [p for p in mine if p.exists()]
    assert not glob.glob(str(srv.tmp / "semstyle-web-*"))


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                             ("0.0.0.0", True), ("::", True), ("192.168.1.20", True)])
def test_a_host_other_than_loopback_warns(host: str, warns: bool, monkeypatch, caplog, tmp_path: Path) -> None:
    """The warning path without serving anything: the page is never built, no socket is opened."""
    import tempfile

    import semstyle.web.app as app
    from semstyle.cli.serve import cmd_serve

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the engine makes its output folder

    def no_page(*a: object, **k: object) -> None:
        raise _Stop

    monkeypatch.setattr(app, "build_demo", no_page)
    args = argparse.Namespace(host=host, port=7860, max_upload_mb=1.0, max_pixels=1_000_000, max_size=256,
                              max_video_seconds=5.0, max_video_size=256, concurrency=1, queue_size=4, device="cpu")
    with caplog.at_level(logging.WARNING, logger="semstyle.cli.serve"), pytest.raises(_Stop):
        cmd_serve(args)
    warned = [r.getMessage() for r in caplog.records if r.name == "semstyle.cli.serve"]
    if warns:
        assert warned == [f"serving on {host}: anyone who can reach this address can use the app"]
    else:
        assert warned == []
    assert os.listdir(tmp_path) == []  # the engine's output folder went with the failed start
