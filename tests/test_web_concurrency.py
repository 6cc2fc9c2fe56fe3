"""``semstyle serve --concurrency 2`` as the CLI builds it: two requests run at once (each waits inside the engine
until the other has arrived, so the test proves overlap by an event, not by timing) and each gets its own result,
the pixels a run of that request alone gives."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_web import form, free_port

import semstyle.cli.serve as serve_cli
from semstyle.cli.main import main
from semstyle.config import StylizeConfig
from semstyle.web.app import Handlers
from semstyle.web.engine import Engine
from semstyle.web.forms import Limits, WebRequest

MEET_S = 120.0  # how long a request waits for the other one: only a failing run (one at a time) waits it out


class MeetingEngine(Engine):
    """The CLI's engine in fp32 (exact pixels on any CPU), whose runs meet: each starts only when two are running."""

    def __init__(self, base: StylizeConfig, limits: Limits, concurrency: int = 1, **kw: Any) -> None:
        super().__init__(base.updated(precision="fp32"), limits, concurrency=concurrency, **kw)
        self.meeting: threading.Barrier | None = threading.Barrier(2)
        self.threads: set[int] = set()

    def run(self, req: WebRequest, progress: Any = None) -> Any:
        if self.meeting is not None:
            self.threads.add(threading.get_ident())
            self.meeting.wait(MEET_S)  # BrokenBarrierError (an error status) if the other request never comes
        return super().run(req, progress)


def test_serve_concurrency_2_runs_two_requests_at_once_with_the_right_results(
    images: Any, one_thread: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    built: list[Engine] = []
    up, stop = threading.Event(), threading.Event()
    real_build = serve_cli.web_app.build_demo

    def build(engine: Engine, opts: Any) -> Any:
        built.append(engine)
        demo = real_build(engine, opts)

        def block_thread() -> None:  # instead of waiting for Ctrl-C: until the test is done
            up.set()
            stop.wait()

        demo.block_thread = block_thread
        return demo

    monkeypatch.setattr(serve_cli, "Engine", MeetingEngine)
    monkeypatch.setattr(serve_cli.web_app, "build_demo", build)
    port, rc = free_port(), []

    def serve() -> None:
        try:
            rc.append(main(["serve", "--concurrency", "2", "--port", str(port), "--max-size", "128"]))
        finally:
            up.set()  # a server that ended early does not keep the test waiting

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        assert up.wait(120) and server.is_alive(), f"the server did not come up (exit status {rc})"
        engine = built[0]
        assert isinstance(engine, MeetingEngine) and engine.concurrency == 2
        forms = [form(handle_file(str(images.content_wide)), handle_file(str(style)), size=64, alpha=alpha)
                 for style, alpha in ((images.style_a, 1.0), (images.style_b, 0.6))]
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path))
        jobs = [client.submit(*f, api_name="/stylize") for f in forms]
        results = [job.result(timeout=2 * MEET_S) for job in jobs]
        client.close()
        for res in results:
            assert 'id="semstyle-ok"' in res[4], res[4]  # both met inside the engine: they ran at once
        assert len(engine.threads) == 2
        got = [np.asarray(Image.open(res[0]).convert("RGB"), np.int16) for res in results]

        engine.meeting = None  # each request again, alone, in this thread, on the server's own networks
        alone = [Handlers(engine).run(*form(images.content_wide, style, size=64, alpha=alpha))
                 for style, alpha in ((images.style_a, 1.0), (images.style_b, 0.6))]
        want = [np.asarray(Image.open(v.result).convert("RGB"), np.int16) for v in alone]
    finally:
        stop.set()
        server.join(60)
    assert rc == [0]
    assert got[0].shape == want[0].shape == (29, 64, 3)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)  # fp32, one thread: a run's pixels do not depend on another running beside it
    assert np.abs(want[0] - want[1]).mean() > 5  # and the two differ, so neither could pass for the other
