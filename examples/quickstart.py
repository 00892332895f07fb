"""perfkit quickstart: the cache in one screen.

Uses Redis at REDIS_URL (or 127.0.0.1:6379); when none answers, starts an embedded Valkey
server (the ``embedded`` extra) and says so. Run: python examples/quickstart.py
"""

from __future__ import annotations

import os
import threading
import time

import msgspec

from perfkit import Settings
from perfkit.cache import RedisService, cached_query
from perfkit.embedded import EmbeddedRedis, redis_answers


class Product(msgspec.Struct):
    id: int
    name: str
    price: float


PRICES = {1: 19.0, 2: 42.0}
queries_run = 0


def main() -> None:
    settings = Settings.from_env()
    embedded = None
    url = settings.redis_url
    if not redis_answers(url):
        embedded = EmbeddedRedis()
        url = embedded.url
        print(f"No Redis at {settings.redis_url}: started an embedded Valkey at {url}")
    else:
        print(f"Using Redis at {url}")
    namespace = f"quickstart-{os.getpid()}"
    cache = RedisService(url, namespace=namespace, settings=settings)

    @cached_query(ttl=300, tags=["products", "product:{product_id}"], cache=cache)
    def get_product(product_id: int) -> Product:
        global queries_run
        queries_run += 1
        time.sleep(0.05)  # stands in for a slow database query
        return Product(id=product_id, name=f"product {product_id}", price=PRICES[product_id])

    try:
        started = time.perf_counter()
        get_product(1)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        product = get_product(1)
        warm = time.perf_counter() - started
        print(f"cold call {cold * 1000:.1f} ms, cached call {warm * 1000:.2f} ms -> {product}")

        PRICES[1] = 17.5
        cache.invalidate_tags(["product:1"])  # after a price update
        print(f"after invalidating tag product:1 -> {get_product(1)}")

        threads = [threading.Thread(target=get_product, args=(2,)) for _ in range(20)]
        before = queries_run
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"20 concurrent cold calls ran the query {queries_run - before} time(s)")

        metrics = cache.stats()
        print(
            f"hits={metrics.hits} misses={metrics.misses} hit_rate={metrics.hit_rate:.0%} "
            f"keys={metrics.keys} fallback_active={metrics.fallback_active}"
        )
    finally:
        cache.clear()
        cache.close()
        if embedded is not None:
            embedded.stop()
            print("Stopped the embedded Valkey.")


if __name__ == "__main__":
    main()
