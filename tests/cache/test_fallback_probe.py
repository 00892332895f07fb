"""A change racing a recovery probe made by another thread: it still reaches Redis.

Hand-written, not generated: it is about RedisService's threads, and drives the fallback's
steps by hand to make the interleaving deterministic. The rest of the fallback tests come from
``test_fallback_async.py``."""

from __future__ import annotations

import time

import pytest

from perfkit.cache import RedisService
from tests._servers import PrivateRedis
from tests.cache.conftest import TEST_SETTINGS


@pytest.mark.parametrize("operation", ["set", "delete", "invalidate_tags"])
def test_change_recorded_as_a_probe_recovers_still_reaches_redis(
    private_redis: PrivateRedis, operation: str
) -> None:
    """A thread chooses memory (fallback), then another thread's probe finds Redis back,
    replays the pending changes and leaves fallback, and only then is the first thread's
    change recorded in memory: it must still reach Redis before the call returns (it was
    left in the pending record, which nothing replays once out of fallback, and other
    processes read the value it replaced until the key changed again)."""
    import redis

    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    other = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    other.set("k", "old", tags=["t"])
    # Deterministic: no background worker, and no probe due until the interleaving below.
    cache._replaying = True
    cache._fall_back(redis.ConnectionError("simulated outage"))
    cache._next_probe = time.monotonic() + 60
    memory = cache._memory
    record = getattr(memory, operation)

    def recorded_after_a_probe(*args: object) -> object:
        # What another thread's probe does in between: Redis is back.
        cache._probe_soon()
        assert not cache._use_memory()
        assert not cache.fallback_active
        return record(*args)

    setattr(memory, operation, recorded_after_a_probe)
    if operation == "set":
        cache.set("k", "new", tags=["t"])
    elif operation == "delete":
        cache.delete("k")
    else:
        cache.invalidate_tags(["t"])
    setattr(memory, operation, record)
    # Another process no longer reads the value the change replaced.
    assert other.get("k", "miss") in ("miss", "new")
    assert not memory.pending
    cache._replaying = False
    cache.close()
    other.close()
