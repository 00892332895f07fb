"""``perfkit bench``'s load client (``perfkit_demo.bench.connections``) against a real uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from perfkit.embedded import free_port
from perfkit_demo.bench import connections

ANSWER = b'{"id": 1, "name": "a product"}'
Seen = list[tuple[int, str, str, bytes]]


def _app(seen: Seen) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append((scope["client"][1], scope["method"], scope["path"], body))
        headers = [(b"content-type", b"application/json")]
        if scope["path"] == "/chunked":  # no length: uvicorn sends it chunked
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for part in (ANSWER[:10], ANSWER[10:], b""):
                await send({"type": "http.response.body", "body": part, "more_body": bool(part)})
            return
        headers.append((b"content-length", b"%d" % len(ANSWER)))
        if scope["path"] == "/close":
            headers.append((b"connection", b"close"))
        status = 201 if scope["method"] == "PATCH" else 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": ANSWER})

    return app


@pytest.fixture
def server() -> Iterator[tuple[int, Seen]]:
    """uvicorn (its default HTTP parser, as the bench's server) in a thread: (port, what it saw
    as (client port, method, path, body))."""
    seen: Seen = []
    port = free_port()
    config = uvicorn.Config(
        _app(seen), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port, seen
    running.should_exit = True
    thread.join(30)


async def test_connection_keeps_one_connection_alive_and_sends_bodies(
    server: tuple[int, Seen],
) -> None:
    port, seen = server
    async with connections(port, 1) as (request,):
        assert await request("GET", "/api/products/1", None) == 200
        assert await request("PATCH", "/api/products/2", b'{"stock": 5}') == 201
        assert await request("GET", "/api/products/3", None) == 200
    assert [(method, path, body) for _, method, path, body in seen] == [
        ("GET", "/api/products/1", b""),
        ("PATCH", "/api/products/2", b'{"stock": 5}'),
        ("GET", "/api/products/3", b""),
    ]
    assert len({client_port for client_port, *_ in seen}) == 1  # one keep-alive connection


async def test_connection_reads_chunked_bodies_to_their_end(server: tuple[int, Seen]) -> None:
    port, seen = server
    async with connections(port, 1) as (request,):
        assert await request("GET", "/chunked", None) == 200
        # Had the chunks been left unread, this answer would be out of step (status 0).
        assert await request("GET", "/api/products/1", None) == 200
        assert await request("GET", "/chunked", None) == 200
    assert len(seen) == 3 and len({client_port for client_port, *_ in seen}) == 1


async def test_connection_reconnects_after_the_server_closes_it(
    server: tuple[int, Seen],
) -> None:
    port, seen = server
    async with connections(port, 1) as (request,):
        assert await request("GET", "/close", None) == 200
        assert await request("GET", "/api/products/1", None) == 200
    assert len({client_port for client_port, *_ in seen}) == 2


async def test_connection_answers_0_when_nothing_listens() -> None:
    async with connections(free_port(), 2) as requests:
        assert [await request("GET", "/", None) for request in requests] == [0, 0]
