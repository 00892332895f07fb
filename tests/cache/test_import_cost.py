"""Importing the cache costs what a sync application uses: the async service (and what it
alone needs) is imported on first use."""

from __future__ import annotations

import json
import subprocess
import sys

# The modules a sync-only user must not pay for, unless redis-py itself imports them with
# ``import redis`` (redis-py 8 imports redis.asyncio, redis.cluster and redis.sentinel from
# its package ``__init__``; perfkit cannot avoid those, and adds none of them).
REDIS_EXTRAS = ("redis.asyncio", "redis.cluster", "redis.sentinel")
ASYNC_ONLY = ("perfkit.cache._aio", "perfkit.cache._batch")


def _loaded(code: str) -> list[str]:
    """The modules of REDIS_EXTRAS and ASYNC_ONLY in ``sys.modules`` after running ``code``
    in a fresh interpreter."""
    wanted = json.dumps([*REDIS_EXTRAS, *ASYNC_ONLY])
    script = f"{code}\nimport sys\nprint(sorted(m for m in {wanted} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return list(json.loads(out.stdout.strip().replace("'", '"')))


def test_a_sync_user_loads_no_async_module_beyond_what_redis_itself_imports(
    redis_url: str,
) -> None:
    by_redis = _loaded("import redis")
    sync_use = _loaded(
        "import perfkit.cache\n"
        f"cache = perfkit.cache.RedisService({redis_url!r}, namespace='import-cost')\n"
        "cache.set('k', 1)\n"
        "assert cache.get('k') == 1\n"
        "cache.close()"
    )
    assert [m for m in sync_use if m not in by_redis] == []
    assert not set(ASYNC_ONLY) & set(sync_use)


def test_the_async_service_loads_on_first_use() -> None:
    assert set(ASYNC_ONLY) <= set(
        _loaded("import perfkit.cache\nassert perfkit.cache.AsyncRedisService.__name__")
    )
    assert set(ASYNC_ONLY) <= set(_loaded("from perfkit.cache import AsyncRedisService"))
