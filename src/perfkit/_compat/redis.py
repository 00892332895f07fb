"""redis-py across its supported releases (pyproject.toml: ``redis>=6.4,<9``: from 6.2 the
hiredis parser delivers the invalidation pushes L1 needs; before, L1 recovered too slowly from
a reset connection, tests/faults/test_matrix.py).

- :func:`direct_pool`: the pool a cache service may send its hit-path MGET on itself
  (``get_connection()`` without a command name, as every supported release has it); None
  means the public ``execute_command``. Reads ``_single_connection_client`` (private) of a
  sync client.
- :func:`on_invalidation`: the L1 near cache's tracking connection hands invalidation
  pushes to a handler on its parser (private ``Connection._parser``: redis-py 6-8 have no
  public per-connection hook); without it the near cache stays off.
- :func:`one_quick_retry`: the ``Retry`` class a client of each driver expects (8.x warns).
- :func:`checked_handshake`: a connection whose peer does not answer as Redis does fails
  with ``ConnectionError`` (redis-py lets an ``AttributeError`` escape from ``HELLO``, and
  on RESP2 reads nothing that could tell: a ``PING`` must be answered ``PONG``).
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
from redis.backoff import NoBackoff
from redis.client import PubSubWorkerThread

VERSION: tuple[int, int] = (
    int(redis.__version__.split(".")[0]),
    int(redis.__version__.split(".")[1]),
)


# Every supported release (>= 6.4) has the argument-less get_connection() the direct reads
# use, so this is a switch, not a version gate: False sends every cache read through
# execute_command, the public way, and the hit path's tests run both ways
# (tests/cache/conftest.py's read_lane).
DIRECT_READS = True


def direct_pool(client: Any) -> Any:
    """The connection pool a cache service may send its reads on itself, skipping redis-py's
    per-command layers (see ``AsyncRedisService._send_mget``); None, and so
    ``execute_command``, when :data:`DIRECT_READS` is off or the
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
    ``Retry``."""
    if driver is redis:
        return {"retry": redis.retry.Retry(NoBackoff(), 1)}
    return {"retry": redis.asyncio.retry.Retry(NoBackoff(), 1)}


def checked_handshake(driver: Any) -> dict[str, Any]:
    """Client options (``driver``: ``redis`` or ``redis.asyncio``) under which a connection
    whose peer does not answer as Redis does fails with ``redis.ConnectionError``.

    redis-py reads the reply to ``HELLO`` (RESP3) as a map and lets the ``AttributeError`` of
    any other reply escape; on RESP2 (redis-py 6's default) it reads nothing that could tell,
    and the first command's reply is whatever came back. Both happen with a peer that is not
    Redis, and with a socket connected to itself, which sends back what it is sent (Linux
    connects a socket to its own port when a client reconnects to a dead server whose port
    is in the ephemeral range and picks that very port: about once in 60,000 tries here).
    So the handshake's errors are connection errors, and a RESP2 connection's first command
    is a PING that must be answered PONG. Raised as it is, such an error reached the host
    app from a cache call and skipped the fallback to memory. Redis Cluster clients run
    their own hook: not for them."""
    return {"redis_connect_func": _handshake if driver is redis else _ahandshake}


def _handshake(connection: Any) -> None:
    try:
        connection.on_connect()
        if _resp2(connection):
            connection.send_command("PING")
            _expect_pong(connection.read_response())
    except redis.RedisError:
        raise
    except Exception as exc:
        raise _not_redis(exc) from exc


async def _ahandshake(connection: Any) -> None:
    try:
        await connection.on_connect()
        if _resp2(connection):
            await connection.send_command("PING")
            _expect_pong(await connection.read_response())
    except redis.RedisError:
        raise
    except Exception as exc:
        raise _not_redis(exc) from exc


def _resp2(connection: Any) -> bool:
    return str(getattr(connection, "protocol", 2)) != "3"


def _expect_pong(reply: object) -> None:
    if reply not in (b"PONG", "PONG"):
        raise ValueError("PING was not answered PONG")


def _not_redis(exc: Exception) -> redis.ConnectionError:
    # The type only: the error's text may quote what the peer sent.
    return redis.ConnectionError(
        f"the server's reply to the connection handshake is not Redis's ({type(exc).__name__})"
    )


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
