"""redis-py across its supported releases (pyproject.toml: ``redis>=...,<9``)."""

from __future__ import annotations

import inspect
import threading
from typing import Any

import redis
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


def one_quick_retry(driver: Any) -> Any:
    """A ``Retry`` of one immediate retry, of the kind ``driver`` (``redis`` or
    ``redis.asyncio``) expects: redis-py 8 warns when an asyncio client is given the sync one."""
    if driver is redis:
        return redis.retry.Retry(NoBackoff(), 1)
    return redis.asyncio.retry.Retry(NoBackoff(), 1)


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


def on_invalidation_push(connection: Any, handler: Any) -> None:
    """Call ``handler`` with each invalidation push ``connection`` reads (its parser's
    handler slot: redis-py has no public way to it for a bare connection)."""
    connection._parser.set_invalidation_push_handler(handler)
