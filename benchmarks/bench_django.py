"""Django cache backend benchmarks (issue 25), measured in one run against the same Redis.

    python benchmarks/bench_django.py [--redis-url URL] [--runs 3] [--rounds 30] [--batch 300]

1. ``await cache.aget(key)`` (a hit) on PerfkitCache (native, on the event loop's
   AsyncRedisService) vs Django's ``RedisCache.aget`` (Django runs the sync ``get`` in a
   thread): the ratio of RedisCache's time to PerfkitCache's (above 1: perfkit is faster).
2. The cost of signing per ``get`` (a hit, sync): PerfkitCache's signed pickle vs the same
   service returning an unsigned pickle (``pickle.loads(service.get(...))``, the key made
   by Django as the backend's): the ratio, and the difference in microseconds; and the
   verification alone (``load`` of a signed value vs ``pickle.loads``, no Redis).

Rounds alternate the two contenders (the order swapped every round); each row gives the
median, over the runs, of the median ratio of adjacent rounds, and in brackets the runs'
spread. The value is a small dict (a product card). Uses DB 12 and namespaces of its own
(RedisCache's keys under a prefix of its own), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests._servers
from _common import redis_server

VALUE = {"id": 42, "title": "A lamp with a long name", "price_cents": 12900, "tags": ["a", "b"]}


def configure(url: str, run: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench-" + run,
        CACHES={
            "perfkit": {
                "BACKEND": "perfkit.contrib.django.cache.PerfkitCache",
                "LOCATION": url,
                "OPTIONS": {"NAMESPACE": f"bench-django-{run}"},
            },
            "redis": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": f"bench-django-redis-{run}",
            },
        },
    )
    django.setup()


def paired_ratio(baseline: list[float], contender: list[float]) -> float:
    """Median over adjacent rounds of baseline time / contender time."""
    return statistics.median(b / c for b, c in zip(baseline, contender, strict=True))


def rounds_sync(
    calls: dict[str, Callable[[], Any]], rounds: int, batch: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for index in range(rounds + 1):  # the first round warms up
        for name in names if index % 2 else names[::-1]:
            call = calls[name]
            start = time.perf_counter()
            for _ in range(batch):
                call()
            if index:
                samples[name].append((time.perf_counter() - start) / batch)
    return samples


async def rounds_async(
    calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int, batch: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for index in range(rounds + 1):
        for name in names if index % 2 else names[::-1]:
            call = calls[name]
            start = time.perf_counter()
            for _ in range(batch):
                await call()
            if index:
                samples[name].append((time.perf_counter() - start) / batch)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    with redis_server(args.redis_url, 12) as url:
        configure(url, run)
        from django.core.cache import caches

        perfkit, redis_cache = caches["perfkit"], caches["redis"]
        perfkit.set("card", VALUE, 600)
        redis_cache.set("card", VALUE, 600)
        # The same value, pickled without a signature, through the same service.
        service = perfkit.service
        # (Its key made by Django as the backend's are, so that only the signature differs.)
        unsigned_name = perfkit.make_and_validate_key("unsigned-card")
        service.set(unsigned_name, pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL), 600)
        # The values alone: verifying and unpickling vs unpickling (no Redis, no keys).
        full = service._key(perfkit.make_and_validate_key("card"))
        values = perfkit._shared.values
        signed_bytes = values.dump(VALUE, full)
        pickled = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)

        async def aget_rows() -> list[tuple[float, float, float]]:
            assert await perfkit.aget("card") == VALUE == await redis_cache.aget("card")
            results = []
            for _ in range(args.runs):
                samples = await rounds_async(
                    {
                        "perfkit": lambda: perfkit.aget("card"),
                        "redis": lambda: redis_cache.aget("card"),
                    },
                    args.rounds,
                    args.batch,
                )
                results.append(
                    (
                        paired_ratio(samples["redis"], samples["perfkit"]),
                        statistics.median(samples["perfkit"]),
                        statistics.median(samples["redis"]),
                    )
                )
            return results

        aget = asyncio.run(aget_rows())
        signing = []
        for _ in range(args.runs):
            samples = rounds_sync(
                {
                    "signed": lambda: perfkit.get("card"),
                    "unsigned": lambda: pickle.loads(service.get(unsigned_name)),
                },
                args.rounds,
                args.batch,
            )
            signing.append(
                (
                    paired_ratio(samples["signed"], samples["unsigned"]),
                    statistics.median(samples["signed"]) - statistics.median(samples["unsigned"]),
                    statistics.median(samples["signed"]),
                )
            )
        load = []
        for _ in range(args.runs):
            samples = rounds_sync(
                {
                    "signed": lambda: values.load(signed_bytes, full),
                    "unsigned": lambda: pickle.loads(pickled),
                },
                args.rounds,
                args.batch * 10,
            )
            load.append(
                statistics.median(samples["signed"]) - statistics.median(samples["unsigned"])
            )
        perfkit.clear()
        redis_cache.delete("card")

    def row(name: str, values: list[float], unit: str = "x", scale: float = 1.0) -> str:
        scaled = sorted(v * scale for v in values)
        return (
            f"{name:<58} {statistics.median(scaled):7.2f}{unit} [{scaled[0]:.2f}-{scaled[-1]:.2f}]"
        )

    print(row("aget hit: RedisCache time / PerfkitCache time", [r[0] for r in aget]))
    print(row("  PerfkitCache.aget (us)", [r[1] for r in aget], "", 1e6))
    print(row("  RedisCache.aget (us)", [r[2] for r in aget], "", 1e6))
    print(row("get hit: signed pickle time / unsigned pickle time", [r[0] for r in signing]))
    print(row("  signing cost per get (us)", [r[1] for r in signing], "", 1e6))
    print(row("  PerfkitCache.get, signed (us)", [r[2] for r in signing], "", 1e6))
    print(row("verifying the signature alone, per value (us)", load, "", 1e6))


if __name__ == "__main__":
    main()
