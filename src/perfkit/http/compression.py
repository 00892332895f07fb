"""Compression, ETag / 304 and Cache-Control middleware for any ASGI or WSGI host.

A full response (one body message in ASGI; in WSGI a list or tuple, one element, or a
declared Content-Length up to ``max_buffered``) is compressed when it
is at least ``minimum_size`` bytes, gets an ETag (a hash of the uncompressed body, weak
once compressed) when it is a 200 to GET or HEAD without one, and becomes a bodiless 304
when the client's If-None-Match matches. A streamed response is compressed chunk by chunk
with a flush after each, never buffered. ``text/event-stream`` passes untouched. Headers
the app set (Content-Encoding, ETag, Cache-Control) are never overridden.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from perfkit._errors import ConfigError
from perfkit.http.negotiation import (
    BROTLI_AVAILABLE,
    DEFAULT_CACHE_RULES,
    CacheRule,
    body_etag,
    cache_policy,
    choose_encoding,
    compressible_type,
    etag_matches,
    make_encoder,
)
from perfkit.http.routes import route_template
from perfkit.types import ASGIApp, Environ, Message, Receive, Scope, Send, StartResponse, WSGIApp

__all__ = ["CompressionMiddleware", "WSGICompressionMiddleware"]

# Headers a 304 keeps (RFC 9110 15.4.5), lower-case.
_NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"}
)

Headers = list[tuple[str, str]]


def _without(headers: Headers, name: str) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != name]


def _add_vary(headers: Headers, vary: str | None) -> Headers:
    if vary is None:
        return [*headers, ("Vary", "Accept-Encoding")]
    tokens = {token.strip().lower() for token in vary.split(",")}
    if "accept-encoding" in tokens or "*" in tokens:
        return headers
    return [*_without(headers, "vary"), ("Vary", f"{vary}, Accept-Encoding")]


class _Plan:
    """What to do with one response, decided from the request and the response head."""

    __slots__ = (
        "compressible", "encoding", "found", "headers", "passthrough", "status", "want_etag",
    )  # fmt: skip

    def __init__(self) -> None:
        self.passthrough = False
        self.compressible = False
        self.encoding: str | None = None
        self.want_etag = False
        self.status = 200
        self.headers: Headers = []
        # The app's headers by lower-case name, looked up once instead of scanned.
        self.found: dict[str, str] = {}


class _ResponseOptimizer:
    """The part of the ASGI and WSGI middleware that does no I/O."""

    def __init__(
        self,
        *,
        minimum_size: int = 500,
        gzip_level: int = 6,
        brotli_quality: int = 5,
        brotli: bool | None = None,
        etag: bool = True,
        cache_rules: Sequence[CacheRule] = DEFAULT_CACHE_RULES,
    ) -> None:
        if not 1 <= gzip_level <= 9:
            raise ConfigError(f"gzip_level must be 1..9, got {gzip_level}")
        if not 0 <= brotli_quality <= 11:
            raise ConfigError(f"brotli_quality must be 0..11, got {brotli_quality}")
        if brotli and not BROTLI_AVAILABLE:
            raise ConfigError("brotli=True needs the brotli extra: pip install 'perfkit[brotli]'")
        self.minimum_size = minimum_size
        self.gzip_level = gzip_level
        self.brotli_quality = brotli_quality
        self.brotli = BROTLI_AVAILABLE if brotli is None else brotli
        self.etag = etag
        self.cache_rules = tuple(cache_rules)

    def plan(
        self, method: str, path: str, accept_encoding: str, status: int, headers: Headers
    ) -> _Plan:
        plan = _Plan()
        plan.status = status
        found = plan.found = {k.lower(): v for k, v in headers}
        content_type = found.get("content-type", "")
        if content_type.lower().startswith("text/event-stream"):
            plan.passthrough = True
            plan.headers = headers
            return plan
        if 200 <= status < 300 and self.cache_rules and "cache-control" not in found:
            policy = cache_policy(self.cache_rules, path)
            if policy is not None:
                headers = [*headers, ("Cache-Control", policy)]
        plan.compressible = (
            status >= 200
            and status not in (204, 304)
            and "content-encoding" not in found
            and compressible_type(content_type)
        )
        if plan.compressible:
            headers = _add_vary(headers, found.get("vary"))
            plan.encoding = choose_encoding(accept_encoding, self.brotli)
            length = found.get("content-length")
            if length is not None and length.isdigit() and int(length) < self.minimum_size:
                plan.encoding = None
        plan.want_etag = (
            self.etag and status == 200 and method in ("GET", "HEAD")
            and "etag" not in found
        )  # fmt: skip
        plan.headers = headers
        return plan

    def full(
        self, plan: _Plan, method: str, body: bytes, if_none_match: str | None
    ) -> tuple[int, Headers, bytes]:
        """Status, headers and body of a complete (non-streamed) response."""
        headers = plan.headers
        etag = plan.found.get("etag")
        declared = plan.found.get("content-length")
        # A HEAD answered without its body cannot be hashed.
        headless = method == "HEAD" and not body and declared not in (None, "0")
        if plan.want_etag and not headless:
            etag = body_etag(body)
        encoding = plan.encoding if len(body) >= self.minimum_size else None
        if encoding is not None:
            body = make_encoder(
                encoding, gzip_level=self.gzip_level, brotli_quality=self.brotli_quality
            ).whole(body)
            headers = _without(headers, "content-length")
            headers += [("Content-Encoding", encoding), ("Content-Length", str(len(body)))]
            if plan.want_etag and etag is not None:
                etag = "W/" + etag
        if plan.want_etag and etag is not None and not headless:
            headers = [*headers, ("ETag", etag)]
        if (
            etag is not None
            and if_none_match is not None
            and plan.status == 200
            and method in ("GET", "HEAD")
            and etag_matches(if_none_match, etag)
        ):
            kept = [(k, v) for k, v in headers if k.lower() in _NOT_MODIFIED_HEADERS]
            return 304, kept, b""
        return plan.status, headers, body

    def stream_headers(self, plan: _Plan) -> Headers:
        """Headers of a streamed response (compressed when ``plan.encoding`` is set)."""
        if plan.encoding is None:
            return plan.headers
        return [*_without(plan.headers, "content-length"), ("Content-Encoding", plan.encoding)]

    def encoder(self, encoding: str) -> Any:
        return make_encoder(
            encoding, gzip_level=self.gzip_level, brotli_quality=self.brotli_quality
        )


def _asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


def _raw_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class CompressionMiddleware(_ResponseOptimizer):
    """ASGI middleware: gzip/brotli, ETag and 304, Cache-Control path policies.

    ``minimum_size``: smaller full responses are sent as they are. ``gzip_level`` (6) and
    ``brotli_quality`` (5) trade CPU for size. ``brotli``: offer ``br`` (default: when the
    extra is installed). ``etag``: add ETags and answer 304. ``cache_rules``: Cache-Control
    per path, first match wins (see :data:`DEFAULT_CACHE_RULES`); ``()`` turns them off.
    """

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        super().__init__(**options)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        accept = ""
        if_none_match = None
        for name, value in scope.get("headers", ()):
            if name == b"accept-encoding":
                accept = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        held: Message | None = None
        encoder: Any = None

        async def optimizing_send(message: Message) -> None:
            nonlocal held, encoder
            kind = message["type"]
            if kind == "http.response.start":
                held = message
                return
            if kind != "http.response.body":
                if held is not None:  # an extension message (pathsend...): head as it was
                    await send(held)
                    held = None
                await send(message)
                return
            if held is None:  # a later chunk of a streamed response
                if encoder is not None:
                    await self._send_chunk(send, encoder, message)
                else:
                    await send(message)
                return
            start, held = held, None
            plan = self.plan(
                method, scope.get("path", ""), accept, start["status"],
                _asgi_headers(start.get("headers", ())),
            )  # fmt: skip
            if plan.passthrough:
                await send(start)
                await send(message)
                return
            if not message.get("more_body", False):
                status, headers, body = self.full(plan, method, message.get("body", b""),
                                                  if_none_match)  # fmt: skip
                await send({**start, "status": status, "headers": _raw_headers(headers)})
                await send({"type": "http.response.body", "body": body})
                return
            await send({**start, "headers": _raw_headers(self.stream_headers(plan))})
            if plan.encoding is None:
                await send(message)
                return
            encoder = self.encoder(plan.encoding)
            await self._send_chunk(send, encoder, message)

        await self.app(scope, receive, optimizing_send)

    @staticmethod
    async def _send_chunk(send: Send, encoder: Any, message: Message) -> None:
        more = message.get("more_body", False)
        data = encoder.chunk(message.get("body", b""))
        if not more:
            data += encoder.finish()
        await send({"type": "http.response.body", "body": data, "more_body": more})


class WSGICompressionMiddleware(_ResponseOptimizer):
    """WSGI middleware with the same behaviour and options as :class:`CompressionMiddleware`.

    A response is full (one body: compressed whole, ETag, 304, Content-Length kept) when
    the app returns a list or tuple, an iterable of one element, or any iterable whose
    declared Content-Length is at most ``max_buffered`` bytes (Flask's ``ClosingIterator``
    and Django's ``HttpResponse`` are such iterables): it is read whole first. Any other
    iterable is streamed (each chunk compressed and flushed as the app yields it).
    """

    def __init__(self, app: WSGIApp, *, max_buffered: int = 1024 * 1024, **options: Any) -> None:
        super().__init__(**options)
        if max_buffered < 0:
            raise ConfigError(f"max_buffered must be >= 0 bytes, got {max_buffered}")
        self.app = app
        self.max_buffered = max_buffered

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        head: list[Any] = []
        written: list[bytes] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            head[:] = [status, list(headers), exc_info]
            # The request metrics outside see start_response only once the body is read,
            # after Flask's teardown forgot the route (werkzeug.request): keep it now.
            template = route_template(environ)
            if template is not None:
                environ["perfkit.route"] = template
            return written.append  # PEP 3333's write(): kept in order before the body

        result = self.app(environ, capture)
        if isinstance(result, (list, tuple)):
            body = b"".join([*written, *result])
            return [self._full(environ, method, head, body, start_response)]
        iterator = iter(result)
        try:
            # A generator app calls start_response with its first chunk at the latest.
            first = next(iterator, None)
            if not (head and self._is_full(head[1], result)):
                return self._stream(environ, method, head, written, first, iterator, result,
                                    start_response)  # fmt: skip
            body = b"".join([*written, *([first] if first is not None else []), *iterator])
        except BaseException:
            _close(result)
            raise
        _close(result)
        return [self._full(environ, method, head, body, start_response)]

    def _is_full(self, headers: Headers, result: Iterable[bytes]) -> bool:
        """A response known to be small and finite: read whole before answering."""
        try:
            if len(result) == 1:  # type: ignore[arg-type]
                return True
        except TypeError:
            pass
        for name, value in headers:
            if name.lower() == "content-length":
                return value.isdigit() and int(value) <= self.max_buffered
        return False

    def _plan(self, environ: Environ, method: str, head: list[Any]) -> _Plan:
        accept = environ.get("HTTP_ACCEPT_ENCODING", "")
        path = environ.get("PATH_INFO", "")
        return self.plan(method, path, accept, int(head[0][:3]), head[1])

    def _full(
        self, environ: Environ, method: str, head: list[Any], body: bytes,
        start_response: StartResponse,
    ) -> bytes:  # fmt: skip
        plan = self._plan(environ, method, head)
        if plan.passthrough:
            start_response(head[0], head[1], head[2])
            return body
        status, headers, body = self.full(plan, method, body, environ.get("HTTP_IF_NONE_MATCH"))
        reason = head[0] if status == plan.status else "304 Not Modified"
        start_response(reason, headers, head[2])
        return body

    def _stream(
        self, environ: Environ, method: str, head: list[Any], written: list[bytes],
        first: bytes | None, iterator: Iterator[bytes], result: Iterable[bytes],
        start_response: StartResponse,
    ) -> Iterator[bytes]:  # fmt: skip
        plan = self._plan(environ, method, head)
        headers = plan.headers if plan.passthrough else self.stream_headers(plan)
        start_response(head[0], headers, head[2])
        return self._chunks(plan, written, first, iterator, result)

    def _chunks(
        self, plan: _Plan, written: list[bytes], first: bytes | None,
        iterator: Iterator[bytes], result: Iterable[bytes],
    ) -> Iterator[bytes]:  # fmt: skip
        try:
            chunks = [*written, *([first] if first is not None else [])]
            if plan.passthrough or plan.encoding is None:
                yield from chunks
                yield from iterator
                return
            encoder = self.encoder(plan.encoding)
            for chunk in chunks:
                yield encoder.chunk(chunk)
            for chunk in iterator:
                yield encoder.chunk(chunk)
            yield encoder.finish()
        finally:
            _close(result)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
