"""What the server refuses, and how it says so: uploads only from its own upload folder, and a clear
"busy, try again" answer when its queue is full, and one log line, not a traceback, when a client goes away.

Gradio checks the file payloads that carry its ``gradio.FileData`` marker against its upload folder;
the handlers take the raw payloads (``preprocess=False``), so a payload without the marker would
reach them unchecked. ``Confinement`` makes the handlers refuse any path outside the upload folder,
whatever the payload says. ``BusyMessage`` rewrites the detail of Gradio's 503 answer to a queue
join ("Queue is full. Max size is 64 and size is 64.") into the app's own one-line message; the
browser page and ``gradio_client`` show their own "busy, try again" text for a 503 either way.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect

from semstyle.web.forms import Upload, UserError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def busy_message(queue_size: int) -> str:
    """The one line a client gets when ``queue_size`` requests are already waiting."""
    waiting = f"{queue_size} request{'s are' if queue_size != 1 else ' is'} already waiting"
    return f"the server is busy ({waiting}); try again in a minute"


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies below it once both are resolved (``..`` and symlinks followed)."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class Confinement:
    """The folder every upload a handler reads must be in (the web server's upload folder)."""

    root: Path

    def check(self, up: Upload | None, what: str) -> None:
        """UserError unless ``up`` (if any) is a file in ``root``; the client's path never reaches a message."""
        if up is not None and not is_inside(up.path, self.root):
            log.warning("refused a %s outside the upload folder: %s", what, up.path)
            raise UserError(f"the {what} '{up.name}' was not uploaded to this server; upload the file again")


class BusyMessage:
    """ASGI middleware: a 503 answer to a queue join (``/queue/join``, ``/call/<api>``) gets ``message``."""

    def __init__(self, app: ASGIApp, message: str) -> None:
        self.app = app
        self.body = json.dumps({"detail": message}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or scope.get("method") != "POST" or not (
                path.endswith("/queue/join") or "/call/" in path):
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_busy(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 503:
                replaced = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(self.body)).encode()))
                await send({**message, "headers": headers})
                await send({"type": "http.response.body", "body": self.body, "more_body": False})
            elif not replaced:  # the original 503 body is dropped
                await send(message)

        await self.app(scope, receive, send_busy)


class QuietDisconnect:
    """ASGI middleware: a client that goes away in the middle of a request (a tab closed during an upload) is one
    log line, not a traceback in the server's console; nobody is left to answer. Other errors pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.info("a client went away during %s %s", scope.get("method", ""), scope.get("path", ""))


__all__ = ["BusyMessage", "Confinement", "QuietDisconnect", "busy_message", "is_inside"]
