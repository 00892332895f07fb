"""HTTP pieces of the compression middleware: Accept-Encoding, encoders, ETags, policies.

Nothing here does I/O; the ASGI and WSGI middleware in :mod:`perfkit.http.compression`
share it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from typing import Any, Protocol

import msgspec

try:  # the optional ``brotli`` extra
    import brotli as _brotli
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _brotli = None

__all__ = [
    "BROTLI_AVAILABLE",
    "DEFAULT_CACHE_RULES",
    "CacheRule",
    "choose_encoding",
    "etag_matches",
]

BROTLI_AVAILABLE = _brotli is not None
"""Whether the ``brotli`` extra is installed (``br`` can be offered)."""


class CacheRule(msgspec.Struct, frozen=True):
    """A Cache-Control value for the paths matching ``pattern`` (a regex, ``re.match``)."""

    pattern: str
    value: str


DEFAULT_CACHE_RULES: tuple[CacheRule, ...] = (
    CacheRule(r"/(static|assets)/", "public, max-age=31536000, immutable"),
    CacheRule(r"/api/(me|users?|account|profile)(/|$)", "private, no-cache"),
    CacheRule(r"/api/", "no-cache"),
)
"""The seed's policies: static assets for a year, user data private, API responses revalidated."""


@functools.lru_cache(maxsize=512)
def choose_encoding(accept_encoding: str, brotli: bool = BROTLI_AVAILABLE) -> str | None:
    """The best of ``br`` / ``gzip`` the client accepts, or ``None`` for identity.

    q-values are honoured (``gzip;q=0`` refuses gzip), ``*`` stands for codings not
    named; at equal q, brotli wins.
    """
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        weights[coding] = q
    best: str | None = None
    best_q = 0.0
    for coding in ("br", "gzip") if brotli else ("gzip",):
        alias = "x-gzip" if coding == "gzip" else coding
        weight = weights.get(coding, weights.get(alias))
        if weight is None:
            weight = weights.get("*", 0.0)
        if weight > best_q:
            best, best_q = coding, weight
    return best


class Encoder(Protocol):
    """A streaming compressor: chunks out as they come in, then the end of the stream."""

    def chunk(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Gzip:
    __slots__ = ("_z",)

    def __init__(self, level: int) -> None:
        # wbits 31: a gzip header and trailer around the deflate stream.
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        # A sync flush per chunk, so a streamed response reaches the client as it is made.
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def whole(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush()

    def finish(self) -> bytes:
        return self._z.flush()


class _Brotli:
    __slots__ = ("_c",)

    def __init__(self, quality: int) -> None:
        self._c: Any = _brotli.Compressor(quality=quality)

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._c.process(data)) + bytes(self._c.flush())

    def whole(self, data: bytes) -> bytes:
        return bytes(self._c.process(data)) + bytes(self._c.finish())

    def finish(self) -> bytes:
        return bytes(self._c.finish())


def make_encoder(encoding: str, *, gzip_level: int, brotli_quality: int) -> _Gzip | _Brotli:
    """A fresh encoder for ``encoding`` (``gzip`` or ``br``)."""
    if encoding == "br":
        return _Brotli(brotli_quality)
    return _Gzip(gzip_level)


_INCOMPRESSIBLE_APPLICATION = frozenset(
    {
        "zip", "gzip", "x-gzip", "x-bzip2", "x-7z-compressed", "x-rar-compressed", "x-xz",
        "zstd", "x-zstd", "x-compress", "x-tar", "vnd.rar", "octet-stream", "pdf",
        "font-woff", "font-woff2", "x-font-woff",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=256)
def compressible_type(content_type: str) -> bool:
    """Whether a Content-Type is worth compressing (not images, media, fonts, archives)."""
    media = content_type.partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    if main == "image":
        return sub == "svg+xml"
    if main in ("audio", "video", "font"):
        return False
    return not (main == "application" and sub in _INCOMPRESSIBLE_APPLICATION)


def body_etag(body: bytes) -> str:
    """A strong ETag of ``body``: a quoted 128-bit BLAKE2b hex digest."""
    digest = hashlib.blake2b(body, digest_size=16, usedforsecurity=False).hexdigest()
    return f'"{digest}"'


_TAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match against an ETag by weak comparison (lists and ``*`` understood)."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(match.group(2) == opaque for match in _TAG.finditer(if_none_match))


@functools.lru_cache(maxsize=1024)
def _policy(rules: tuple[CacheRule, ...], path: str) -> str | None:
    for rule in rules:
        if re.match(rule.pattern, path):
            return rule.value
    return None


def cache_policy(rules: tuple[CacheRule, ...], path: str) -> str | None:
    """The Cache-Control value of the first rule matching ``path``, if any."""
    return _policy(rules, path)
