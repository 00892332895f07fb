"""Request metrics middleware for any ASGI or WSGI host (no framework import).

Both time a request to the last byte of its response: for ASGI the moment the final
``http.response.body`` message was handed to the server (so Starlette background tasks do
not count), for WSGI the moment the server closes the response iterable.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from perfkit.metrics.requests import RequestMetrics
from perfkit.types import ASGIApp, Environ, Message, Receive, Scope, Send, StartResponse, WSGIApp

__all__ = ["MetricsMiddleware", "WSGIMetricsMiddleware"]


class MetricsMiddleware:
    """ASGI middleware recording every HTTP request into ``metrics``."""

    def __init__(self, app: ASGIApp, *, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        path = scope.get("path", "")
        status = 500
        finished = 0.0
        start = metrics.begin(scope, path)

        async def timed_send(message: Message) -> None:
            nonlocal status, finished
            await send(message)
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body" and not message.get("more_body", False):
                finished = time.perf_counter()

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            end = finished or time.perf_counter()
            metrics.end(scope, scope.get("method", "GET"), path, status, end - start, failed=True)
            raise
        end = finished or time.perf_counter()
        metrics.end(scope, scope.get("method", "GET"), path, status, end - start)


class WSGIMetricsMiddleware:
    """WSGI middleware recording every request into ``metrics``."""

    def __init__(self, app: WSGIApp, *, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        start = self.metrics.begin(environ, path)
        state = [500]

        def record_status(status: str, headers: Any, exc_info: Any = None) -> Any:
            state[0] = int(status[:3])
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, record_status)
        except BaseException:
            self._end(environ, path, state[0], start, failed=True)
            raise
        return _TimedBody(self, environ, path, state, start, result)

    def _end(self, environ: Environ, path: str, status: int, start: float, *, failed: bool) -> None:
        seconds = time.perf_counter() - start
        self.metrics.end(environ, environ.get("REQUEST_METHOD", "GET"), path, status, seconds,
                         failed=failed)  # fmt: skip


class _TimedBody:
    """The app's response iterable; records the request when the server closes it."""

    __slots__ = ("_environ", "_failed", "_middleware", "_path", "_result", "_start", "_state")

    def __init__(
        self,
        middleware: WSGIMetricsMiddleware,
        environ: Environ,
        path: str,
        state: list[int],
        start: float,
        result: Iterable[bytes],
    ) -> None:
        self._middleware = middleware
        self._environ = environ
        self._path = path
        self._state = state
        self._start = start
        self._result = result
        self._failed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._result
        except BaseException:
            self._failed = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._middleware._end(self._environ, self._path, self._state[0], self._start,
                                  failed=self._failed)  # fmt: skip
