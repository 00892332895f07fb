"""Real HTTP servers on free loopback ports for the metrics middleware tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import uvicorn

from perfkit.embedded import free_port
from perfkit.types import ASGIApp, WSGIApp


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class UvicornThread:
    """uvicorn serving ``app`` on a free loopback port, in a thread of the test process."""

    def __init__(self, app: ASGIApp) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class WSGIThread:
    """wsgiref serving ``app`` on a free loopback port, in a thread."""

    def __init__(self, app: WSGIApp) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: WSGIServer = make_server("127.0.0.1", self.port, app,
                                              handler_class=_QuietHandler)  # fmt: skip
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


ServerT = TypeVar("ServerT", UvicornThread, WSGIThread)


def _servers(kind: Callable[[Any], ServerT]) -> Iterator[Callable[[Any], ServerT]]:
    started: list[ServerT] = []

    def start(app: Any) -> ServerT:
        server = kind(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def serve_asgi() -> Iterator[Callable[[ASGIApp], UvicornThread]]:
    """Start uvicorn servers for the test; stopped afterwards."""
    yield from _servers(UvicornThread)


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[WSGIApp], WSGIThread]]:
    """Start wsgiref servers for the test; stopped afterwards."""
    yield from _servers(WSGIThread)
