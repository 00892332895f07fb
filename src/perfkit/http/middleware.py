"""Request metrics middleware for any ASGI or WSGI host (no framework import).

Both time a request to the last byte of its response: for ASGI the moment the final
``http.response.body`` message was handed to the server (so Starlette background tasks do
not count). A WSGI request ends when its response iterable is exhausted or closed,
whichever comes first, and exactly once: servers close the iterable, but test clients
(Flask's ``test_client()``, werkzeug's ``Client``) read the body and never close it, or
read only its first chunk and drop it (which ends the request too).

The route label is read from the host after it routed: for ASGI when the app returns
(Starlette/FastAPI/Litestar leave the route in the scope), for WSGI when the app calls
``start_response``, before Flask's teardown clears ``werkzeug.request``. Paths matching
``exclude`` (default :data:`~perfkit.http.routes.DEFAULT_EXCLUDE`: the admin API,
``/metrics``, health checks) are passed through unmeasured.

What a request is recorded into is a :class:`RequestRecorder`: in perfkit,
:class:`perfkit.metrics.RequestMetrics` (this module does not import the metrics, which
sit a layer above HTTP).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from perfkit import _units
from perfkit.http.routes import DEFAULT_EXCLUDE, Exclude, exclusion, route_label
from perfkit.types import ASGIApp, Environ, Message, Receive, Scope, Send, StartResponse, WSGIApp

__all__ = ["MetricsMiddleware", "RequestRecorder", "WSGIMetricsMiddleware"]

App = TypeVar("App")


class RequestRecorder(Protocol):
    """Where the middleware records requests (:class:`perfkit.metrics.RequestMetrics`)."""

    def begin(self, scope: Mapping[str, Any], *, root_path: str = "") -> float:
        """Note a request as in flight; return its start time (``perf_counter``)."""
        ...

    def end(
        self,
        scope: Scope | Environ,
        method: str,
        path: str,
        status: int,
        seconds: float,
        *,
        failed: bool,
        route: str,
    ) -> None:
        """Record a finished request (the middleware always says whether it failed and
        passes the route label it resolved)."""
        ...


class _Measuring(Generic[App]):
    """What the ASGI and WSGI middleware hold: the app, the recorder, the exclusion."""

    def __init__(
        self, app: App, *, metrics: RequestRecorder, exclude: Exclude | None = DEFAULT_EXCLUDE
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.excluded = exclusion(exclude)


class MetricsMiddleware(_Measuring[ASGIApp]):
    """ASGI middleware recording every HTTP request into ``metrics``.

    ``exclude``: path prefixes or a predicate on the path; those requests are not measured.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.excluded is not None and self.excluded(path):
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        root_path = scope.get("root_path", "")
        status = 500
        finished = 0.0
        start = metrics.begin(scope, root_path=root_path)
        unit = _units.begin("request")  # N+1 detection counts the request's statements

        async def timed_send(message: Message) -> None:
            nonlocal status, finished
            await send(message)
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body" and not message.get("more_body", False):
                finished = time.perf_counter()

        method = scope.get("method", "GET")
        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            end = finished or time.perf_counter()
            route = route_label(scope, path, status, root_path)
            metrics.end(scope, method, path, status, end - start, failed=True, route=route)
            _units.end(unit, route)
            raise
        end = finished or time.perf_counter()
        route = route_label(scope, path, status, root_path)
        metrics.end(scope, method, path, status, end - start, failed=False, route=route)
        _units.end(unit, route)


class WSGIMetricsMiddleware(_Measuring[WSGIApp]):
    """WSGI middleware recording every request into ``metrics`` (the options of
    :class:`MetricsMiddleware`)."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.excluded is not None and self.excluded(path):
            return self.app(environ, start_response)
        start = self.metrics.begin(environ)
        request = _Request(self, environ, path, start)
        request.unit = _units.begin("request")  # N+1 detection counts its statements

        def record_status(status: str, headers: Any, exc_info: Any = None) -> Any:
            request.status = int(status[:3])
            # Now, not at close: Flask clears its request (and url_rule) at teardown.
            request.route = route_label(environ, path, request.status)
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, record_status)
        except BaseException:
            request.end(failed=True)
            raise
        return _TimedBody(request, result)


class _Request:
    """One measured WSGI request: what is known of it until its body is done."""

    __slots__ = ("ended", "environ", "middleware", "path", "route", "start", "status", "unit")

    def __init__(
        self, middleware: WSGIMetricsMiddleware, environ: Environ, path: str, start: float
    ) -> None:
        self.middleware = middleware
        self.environ = environ
        self.path = path
        self.start = start
        self.status = 500
        self.route: str | None = None
        self.ended = False
        self.unit: _units.Unit | None = None

    def end(self, *, failed: bool) -> None:
        """Record the request, the first time only (exhausted, then closed, is one request)."""
        if self.ended:
            return
        self.ended = True
        seconds = time.perf_counter() - self.start
        environ = self.environ
        route = self.route or route_label(environ, self.path, self.status)
        self.middleware.metrics.end(environ, environ.get("REQUEST_METHOD", "GET"), self.path,
                                    self.status, seconds, failed=failed,
                                    route=route)  # fmt: skip
        _units.end(self.unit, route)


class _TimedBody:
    """The app's response iterable; records the request when it is exhausted, raises, is
    closed or its iterator is dropped half-read, whichever comes first."""

    __slots__ = ("_request", "_result")

    def __init__(self, request: _Request, result: Iterable[bytes]) -> None:
        self._request = request
        self._result = result

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._result
        except GeneratorExit:
            # Closed or dropped half-read (a test client that looked at the status only).
            self._request.end(failed=False)
            raise
        except BaseException:
            self._request.end(failed=True)
            raise
        self._request.end(failed=False)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._request.end(failed=False)
