"""redis-py across its supported releases (pyproject.toml: ``redis>=5.3,<9``).

- :func:`direct_pool`: the pool a cache service may send its hit-path MGET on itself, on
  redis-py >= 5.3 (whose ``get_connection()`` takes no command name); None means the public
  ``execute_command``. Reads ``_single_connection_client`` (private) of a sync client.
- :func:`on_invalidation`: the L1 near cache's tracking connection hands invalidation
  pushes to a handler on its parser (private ``Connection._parser``: redis-py 5-8 have no
  public per-connection hook); without it the near cache stays off.
  :func:`tracking_connection_options` picks the pure-Python RESP3 parser (private
  ``redis._parsers._RESP3Parser``) where the default one, hiredis's before redis-py 6,
  has no push handler.
- :func:`one_quick_retry`: the ``Retry`` class a client of each driver expects (8.x warns),
  and the errors it applies to (before 6.x, only those named in ``retry_on_error``).
- :func:`stop_pubsub_thread`: ``PubSubWorkerThread.stop()`` without 8.x's unbounded join.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis._parsers import _RESP3Parser
from redis.backoff import NoBackoff
from redis.client import PubSubWorkerThread
from redis.connection import DefaultParser

VERSION: tuple[int, int] = (
    int(redis.__version__.split(".")[0]),
    int(redis.__version__.split(".")[1]),
)


# From redis-py 5.3 a pool's get_connection() takes no arguments (before, a command name).
# False sends every cache read through execute_command, the public way: the tests of the
# hit path run both ways (tests/cache/conftest.py's read_lane).
DIRECT_READS = VERSION >= (5, 3)


def direct_pool(client: Any) -> Any:
    """The connection pool a cache service may send its reads on itself, skipping redis-py's
    per-command layers (see ``AsyncRedisService._send_mget``); None, and so
    ``execute_command``, when :data:`DIRECT_READS` is off (redis-py older than 5.3) or the
    client is not a plain pooled one (a cluster, a single-connection client, one with
    redis-py's client-side cache or its own MGET callback)."""
    if not DIRECT_READS or isinstance(client, redis.RedisCluster | redis.asyncio.RedisCluster):
        return None
    pool = getattr(client, "connection_pool", None)
    if (
        pool is None
        or getattr(client, "connection", None) is not None
        or getattr(client, "single_connection_client", False)  # redis.asyncio
        or getattr(client, "_single_connection_client", False)  # redis
        or getattr(pool, "cache", None) is not None
        or "MGET" in getattr(client, "response_callbacks", {})
    ):
        return None
    return pool


# The releases whose Connection._parser takes an invalidation push handler (5.x to 8.x, each
# checked for the method too). False: the near cache's tracker refuses to start, and every
# read goes to Redis (tests/cache/test_l1.py runs that way once).
PUSH_HANDLER = VERSION < (9, 0)


def on_invalidation(conn: Any, handler: Any) -> None:
    """Have ``conn`` (a sync RESP3 ``Connection``, connected) call ``handler(push)`` for each
    invalidation push it reads. Raises ``redis.RedisError`` where this redis-py offers no
    such hook: the near cache then stays off, as while Redis is unreachable."""
    parser = getattr(conn, "_parser", None) if PUSH_HANDLER else None
    setter = getattr(parser, "set_invalidation_push_handler", None)
    if setter is None:
        raise redis.RedisError(
            f"redis-py {redis.__version__}: no known hook for invalidation pushes, "
            "the L1 near cache stays off"
        )
    setter(handler)


def one_quick_retry(driver: Any) -> dict[str, Any]:
    """Client options for one immediate retry, of the kind ``driver`` (``redis`` or
    ``redis.asyncio``) expects: redis-py 8 warns when an asyncio client is given the sync
    ``Retry``. Before redis-py 6 the retry applied only to the errors named in
    ``retry_on_error`` (none by default); from 6 its own supported errors decide."""
    if driver is redis:
        options: dict[str, Any] = {"retry": redis.retry.Retry(NoBackoff(), 1)}
    else:
        options = {"retry": redis.asyncio.retry.Retry(NoBackoff(), 1)}
    if VERSION < (6, 0):
        options["retry_on_error"] = [redis.ConnectionError, redis.TimeoutError]
    return options


# redis-py 8 made PubSubWorkerThread.stop() join the thread (no timeout: until the thread's
# blocking read returns, up to RQ's 60 s); before, stop() only cleared the running flag.
_STOP_TAKES_TIMEOUT = "timeout" in inspect.signature(PubSubWorkerThread.stop).parameters


def stop_pubsub_thread(thread: threading.Thread) -> None:
    """Tell a ``PubSub.run_in_thread`` thread to end after its current read, without waiting
    for that read (the caller then wakes it with an UNSUBSCRIBE and joins it briefly)."""
    if _STOP_TAKES_TIMEOUT:
        thread.stop(timeout=0)  # type: ignore[attr-defined]
    else:
        thread.stop()  # type: ignore[attr-defined]


# redis-py < 6 (or so): the hiredis parser, redis-py's default when hiredis is installed, has
# no push handler; only the pure-Python RESP3 parser delivers CLIENT TRACKING's pushes.
_DEFAULT_PARSER_PUSHES = hasattr(DefaultParser, "set_invalidation_push_handler")


def tracking_connection_options() -> dict[str, Any]:
    """Extra options for a sync RESP3 connection that must receive invalidation pushes."""
    return {} if _DEFAULT_PARSER_PUSHES else {"parser_class": _RESP3Parser}
