"""perfkit.http: ASGI and WSGI middleware for any host (no framework import).

- :class:`CompressionMiddleware` / :class:`WSGICompressionMiddleware`: gzip and brotli,
  ETag and 304, Cache-Control per path (:mod:`perfkit.http.compression`, with the
  Accept-Encoding, encoder and ETag pieces in :mod:`perfkit.http.negotiation`);
- :class:`MetricsMiddleware` / :class:`WSGIMetricsMiddleware`: time each request to its
  last byte and record it, under its route label (:mod:`perfkit.http.routes`), into a
  :class:`perfkit.metrics.RequestMetrics`.

This is HTTP, not metrics: the package imports nothing of ``perfkit.metrics`` (the layer
above it), and nothing here starts a thread or touches the network on import. See
docs/metrics.md.
"""

from perfkit.http.compression import CompressionMiddleware, WSGICompressionMiddleware
from perfkit.http.middleware import MetricsMiddleware, WSGIMetricsMiddleware
from perfkit.http.negotiation import BROTLI_AVAILABLE, DEFAULT_CACHE_RULES, CacheRule
from perfkit.http.routes import DEFAULT_EXCLUDE, UNMATCHED, Exclude

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_exported_members.py checks
    "BROTLI_AVAILABLE",
    "CacheRule",
    "CompressionMiddleware",
    "DEFAULT_CACHE_RULES",
    "DEFAULT_EXCLUDE",
    "Exclude",
    "MetricsMiddleware",
    "UNMATCHED",
    "WSGICompressionMiddleware",
    "WSGIMetricsMiddleware",
]
