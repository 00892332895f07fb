"""Compression, ETag/304 and Cache-Control middleware, ASGI and WSGI, in-process."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import brotli
import httpx
import pytest

from perfkit.http import CompressionMiddleware, WSGICompressionMiddleware
from perfkit.http.negotiation import choose_encoding, etag_matches
from perfkit.types import Message, Receive, Scope, Send
from tests.metrics.apps import (
    IMAGE_BODY,
    JSON_BODY,
    SSE_CHUNKS,
    STREAM_CHUNKS,
    asgi_app,
    messages_app,
    wsgi_app,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=0", None),
        ("gzip;q=0, *;q=0.1", "br"),
        ("*", "br"),
        ("identity", None),
        ("", None),
        ("deflate", None),
        ("GZIP;Q=1.0", "gzip"),
        ("x-gzip", "gzip"),
        ("gzip;q=oops", None),
    ],
)
def test_accept_encoding_negotiation(header: str, expected: str | None) -> None:
    assert choose_encoding(header, True) == expected


def test_without_brotli_only_gzip_is_offered() -> None:
    assert choose_encoding("br", False) is None
    assert choose_encoding("br, gzip;q=0.1", False) == "gzip"


@pytest.mark.parametrize(
    ("if_none_match", "etag", "expected"),
    [
        ('"abc"', '"abc"', True),
        ('W/"abc"', '"abc"', True),
        ('"abc"', 'W/"abc"', True),
        ('"x", W/"abc" , "y"', '"abc"', True),
        ("*", '"anything"', True),
        ('"abd"', '"abc"', False),
        ('"x", "y"', 'W/"abc"', False),
    ],
)
def test_etag_weak_comparison(if_none_match: str, etag: str, expected: bool) -> None:
    assert etag_matches(if_none_match, etag) is expected


Fetch = Callable[..., Awaitable[tuple[httpx.Response, bytes]]]


@pytest.fixture(params=["asgi", "wsgi"])
async def fetch(request: pytest.FixtureRequest) -> AsyncIterator[Fetch]:
    """GET through the compressed test app (ASGI or WSGI): the response and its body as
    sent (not decoded). No Accept-Encoding unless given."""
    if request.param == "asgi":
        transport = httpx.ASGITransport(app=CompressionMiddleware(asgi_app, minimum_size=500))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def asgi_get(path: str, **headers: str) -> tuple[httpx.Response, bytes]:
                headers = {"accept-encoding": "identity", **headers}
                async with client.stream("GET", path, headers=headers) as response:
                    return response, b"".join([chunk async for chunk in response.aiter_raw()])

            yield asgi_get
    else:
        app = WSGICompressionMiddleware(wsgi_app, minimum_size=500)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://test") as sync:

            async def wsgi_get(path: str, **headers: str) -> tuple[httpx.Response, bytes]:
                headers = {"accept-encoding": "identity", **headers}
                # In-process WSGI: no network I/O blocks the loop.
                with sync.stream("GET", path, headers=headers) as response:  # noqa: ASYNC212
                    return response, b"".join(response.iter_raw())

            yield wsgi_get


async def test_gzip_when_accepted(fetch: Fetch) -> None:
    response, body = await fetch("/json", **{"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(body) < len(JSON_BODY)
    assert gzip.decompress(body) == JSON_BODY


async def test_brotli_when_preferred(fetch: Fetch) -> None:
    response, body = await fetch("/json", **{"accept-encoding": "gzip;q=0.8, br"})
    assert response.headers["content-encoding"] == "br"
    assert brotli.decompress(body) == JSON_BODY


async def test_gzip_q0_means_no_compression(fetch: Fetch) -> None:
    response, body = await fetch("/json", **{"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert body == JSON_BODY


@pytest.mark.parametrize("path", ["/small", "/image", "/encoded"])
async def test_small_images_and_encoded_bodies_are_left_alone(fetch: Fetch, path: str) -> None:
    response, body = await fetch(path, **{"accept-encoding": "gzip, br"})
    expected = {"/small": b"ok", "/image": IMAGE_BODY, "/encoded": JSON_BODY}[path]
    assert body == expected
    assert response.headers.get("content-encoding") == ("br" if path == "/encoded" else None)


async def test_sse_passes_untouched(fetch: Fetch) -> None:
    response, body = await fetch("/sse", **{"accept-encoding": "gzip"})
    assert body == b"".join(SSE_CHUNKS)
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert "etag" not in response.headers


async def test_streamed_response_is_compressed_without_etag(fetch: Fetch) -> None:
    response, body = await fetch("/stream", **{"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" not in response.headers
    assert "etag" not in response.headers
    assert gzip.decompress(body) == b"".join(STREAM_CHUNKS)


async def test_etag_then_304(fetch: Fetch) -> None:
    plain, _ = await fetch("/json")
    strong = plain.headers["etag"]
    assert strong.startswith('"') and len(strong) == 34
    zipped, _ = await fetch("/json", **{"accept-encoding": "gzip"})
    assert zipped.headers["etag"] == "W/" + strong

    for sent in (strong, "W/" + strong, f'"other", {strong}', "*"):
        response, body = await fetch("/json", **{"if-none-match": sent, "accept-encoding": "gzip"})
        assert response.status_code == 304
        assert body == b""
        assert response.headers["etag"] == "W/" + strong
        assert "content-encoding" not in response.headers

    response, body = await fetch("/json", **{"if-none-match": '"stale"'})
    assert response.status_code == 200
    assert body == JSON_BODY


async def test_304_keeps_etag_and_cache_control(fetch: Fetch) -> None:
    first, _ = await fetch("/api/things")
    assert first.headers["cache-control"] == "no-cache"
    response, body = await fetch("/api/things", **{"if-none-match": first.headers["etag"]})
    assert response.status_code == 304
    assert body == b""
    assert response.headers["etag"] == first.headers["etag"]
    assert response.headers["cache-control"] == "no-cache"
    assert "content-type" not in response.headers


async def test_headers_set_by_the_app_are_kept(fetch: Fetch) -> None:
    response, _ = await fetch("/etag", **{"accept-encoding": "gzip"})
    assert response.headers["etag"] == '"v1"'
    assert response.headers["content-encoding"] == "gzip"
    not_modified, _ = await fetch("/etag", **{"if-none-match": '"v1"'})
    assert not_modified.status_code == 304
    cached, _ = await fetch("/api/cached")
    assert cached.headers["cache-control"] == "max-age=60"


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/static/app.js", "public, max-age=31536000, immutable"),
        ("/assets/logo.svg", "public, max-age=31536000, immutable"),
        ("/api/me", "private, no-cache"),
        ("/api/users/7/orders", "private, no-cache"),
        ("/api/products", "no-cache"),
        ("/", None),
    ],
)
async def test_default_cache_control_policies(fetch: Fetch, path: str, policy: str | None) -> None:
    response, _ = await fetch(path)
    assert response.headers.get("cache-control") == policy


async def test_no_cache_policy_on_errors(fetch: Fetch) -> None:
    response, _ = await fetch("/missing")
    assert response.status_code == 404
    assert "etag" not in response.headers


async def test_asgi_stream_chunks_are_flushed_one_by_one() -> None:
    """Each chunk reaches the server before the app produces the next one."""
    log: list[tuple[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        for chunk in STREAM_CHUNKS:
            log.append(("app", chunk))
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send(message: Message) -> None:
        log.append(("server", message))

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/s",
             "headers": [(b"accept-encoding", b"gzip")]}  # fmt: skip
    await CompressionMiddleware(app)(scope, receive, send)
    kinds = [who for who, _ in log]
    # The head waits for the first chunk; after that each chunk goes out as it is made.
    assert kinds == ["app", "server", "server", "app", "server", "app", "server", "server"]
    decompressor = __import__("zlib").decompressobj(31)
    bodies = [m["body"] for who, m in log if who == "server" and m["type"] == "http.response.body"]
    # Every chunk decompresses to its own text as soon as it arrives (sync flush).
    for body, chunk in zip(bodies, STREAM_CHUNKS, strict=False):
        assert decompressor.decompress(body) == chunk


def test_wsgi_stream_is_not_buffered() -> None:
    produced: list[float] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for chunk in STREAM_CHUNKS:
            produced.append(time.monotonic())
            yield chunk

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/s", "HTTP_ACCEPT_ENCODING": "gzip"}
    heads: list[Any] = []
    body = WSGICompressionMiddleware(app)(environ, lambda s, h, e=None: heads.append((s, h)))
    iterator = iter(body)
    first = next(iterator)
    assert len(produced) == 1  # the app has made one chunk only
    assert __import__("zlib").decompressobj(31).decompress(first) == STREAM_CHUNKS[0]
    assert ("Content-Encoding", "gzip") in heads[0][1]
    rest = b"".join(iterator)
    assert gzip.decompress(first + rest) == b"".join(STREAM_CHUNKS)


async def test_head_gets_etag_without_body() -> None:
    app = messages_app([
        {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"), (b"content-length", b"900")]},
        {"type": "http.response.body", "body": b""},
    ])  # fmt: skip
    transport = httpx.ASGITransport(app=CompressionMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.head("/x", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    # No body was sent, so there is nothing to hash and nothing to compress.
    assert "etag" not in response.headers
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == "900"


def test_wsgi_write_callable_output_is_kept_in_order() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "application/json")])
        write(JSON_BODY[:100])
        return [JSON_BODY[100:]]

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/w", "HTTP_ACCEPT_ENCODING": "gzip"}
    heads: list[Any] = []
    body = WSGICompressionMiddleware(app)(environ, lambda s, h, e=None: heads.append(h))
    assert gzip.decompress(b"".join(body)) == JSON_BODY
    assert ("Content-Encoding", "gzip") in heads[0]


async def test_levels_are_validated() -> None:
    from perfkit import ConfigError

    with pytest.raises(ConfigError, match="gzip_level"):
        CompressionMiddleware(asgi_app, gzip_level=0)
    with pytest.raises(ConfigError, match="brotli_quality"):
        WSGICompressionMiddleware(wsgi_app, brotli_quality=12)


def _declared_length_app(body: bytes, declared: int) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(declared))])  # fmt: skip
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    return app


def test_wsgi_declared_length_up_to_max_buffered_is_full_beyond_it_streamed() -> None:
    body = b"z" * 5000
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/d", "HTTP_ACCEPT_ENCODING": "gzip"}
    heads: list[Any] = []
    small = WSGICompressionMiddleware(_declared_length_app(body, len(body)), max_buffered=5000)
    full = b"".join(small(dict(environ), lambda s, h, e=None: heads.append(dict(h))))
    assert gzip.decompress(full) == body
    assert heads[0]["Content-Length"] == str(len(full)) and "ETag" in heads[0]

    heads.clear()
    large = WSGICompressionMiddleware(_declared_length_app(body, len(body)), max_buffered=4999)
    streamed = b"".join(large(dict(environ), lambda s, h, e=None: heads.append(dict(h))))
    assert gzip.decompress(streamed) == body
    assert "Content-Length" not in heads[0] and "ETag" not in heads[0]


def test_max_buffered_is_validated() -> None:
    from perfkit import ConfigError

    with pytest.raises(ConfigError, match="max_buffered must be >= 0 bytes, got -1"):
        WSGICompressionMiddleware(wsgi_app, max_buffered=-1)
