"""Small framework-free ASGI and WSGI apps that the metrics tests drive."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from perfkit.types import Environ, Message, Receive, Scope, Send, StartResponse

JSON_BODY = json.dumps(
    [{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(60)]
).encode()
IMAGE_BODY = bytes(range(256)) * 8
SSE_CHUNKS = [b"data: one\n\n", b"data: two\n\n"]
STREAM_CHUNKS = [b"chunk-%d " % i * 40 for i in range(3)]
SLOW_SECONDS = 0.06


class Route:
    """What Starlette leaves in ``scope["route"]``: an object with ``path_format``."""

    def __init__(self, path_format: str) -> None:
        self.path_format = path_format


def _plan(path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the full (non-streamed) responses, by path."""
    if path == "/small":
        return 200, [("Content-Type", "text/plain")], b"ok"
    if path == "/image":
        return 200, [("Content-Type", "image/png")], IMAGE_BODY
    if path == "/encoded":
        return 200, [("Content-Type", "application/json"), ("Content-Encoding", "br")], JSON_BODY
    if path == "/etag":
        return 200, [("Content-Type", "application/json"), ("ETag", '"v1"')], JSON_BODY
    if path == "/api/cached":
        return (
            200,
            [("Content-Type", "application/json"), ("Cache-Control", "max-age=60")],
            JSON_BODY,
        )
    if path == "/missing":
        return 404, [("Content-Type", "text/plain")], b"not here"
    if path == "/error":
        return 500, [("Content-Type", "text/plain")], b"failed"
    return 200, [("Content-Type", "application/json")], JSON_BODY


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatches on the path; see :func:`_plan` for the plain responses."""
    path = scope["path"]
    if path.startswith("/routed/"):
        scope["route"] = Route("/routed/{item_id}")
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/slow":
        await asyncio.sleep(SLOW_SECONDS)
    if path in ("/stream", "/sse"):
        kind = "text/event-stream" if path == "/sse" else "text/plain"
        chunks = SSE_CHUNKS if path == "/sse" else STREAM_CHUNKS
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind.encode())]})  # fmt: skip
        for chunk in chunks:
            await asyncio.sleep(0.02)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    status, headers, body = _plan(path)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI twin of :func:`asgi_app`."""
    path = environ["PATH_INFO"]
    if path.startswith("/routed/"):
        environ["perfkit.route"] = "/routed/{item_id}"
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/slow":
        time.sleep(SLOW_SECONDS)
    if path in ("/stream", "/sse"):
        kind = "text/event-stream" if path == "/sse" else "text/plain"
        chunks = SSE_CHUNKS if path == "/sse" else STREAM_CHUNKS
        return _generate(start_response, kind, chunks)
    status, headers, body = _plan(path)
    reasons = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}
    start_response(f"{status} {reasons[status]}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _generate(start_response: StartResponse, kind: str, chunks: list[bytes]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", kind)])
    for chunk in chunks:
        time.sleep(0.02)
        yield chunk


def messages_app(messages: list[Message]) -> Any:
    """An ASGI app sending exactly ``messages``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app
