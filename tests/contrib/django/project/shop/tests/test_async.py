"""The backend's native async methods: Django's async views through an ASGI client, one
AsyncRedisService per event loop, closed when its loop shuts down."""

import asyncio
import threading

import httpx
from django.core.asgi import get_asgi_application
from django.core.cache import cache
from django.test import SimpleTestCase

from perfkit.cache import AsyncRedisService
from shop import views


class AsyncBackendTests(SimpleTestCase):
    def setUp(self):
        cache.clear()

    async def test_an_async_view_caches_through_the_loops_own_service(self):
        service = await cache.aservice()
        self.assertIsInstance(service, AsyncRedisService)
        before = (await service.stats()).hits
        sync_before = cache.service.stats().hits
        transport = httpx.ASGITransport(app=get_asgi_application())
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            first = await client.get("/async/books/7/")
            second = await client.get("/async/books/7/")
        self.assertEqual(first.status_code, 200)
        self.assertEqual(second.json(), first.json())  # served from the cache
        self.assertEqual(first.json()["render"], views.renders["async_page"])
        # The hit went through this loop's AsyncRedisService, not the sync one in a thread.
        self.assertGreaterEqual((await service.stats()).hits, before + 1)
        self.assertEqual(cache.service.stats().hits, sync_before)

    def test_each_event_loop_has_its_own_service_closed_with_it(self):
        async def use(key):
            await cache.aset(key, {"loop": key})
            self.assertEqual(await cache.aget(key), {"loop": key})
            return await cache.aservice()

        first = asyncio.run(use("a"))
        second = asyncio.run(use("b"))
        self.assertIsNot(first, second)
        self.assertTrue(first._closed)  # closed at its loop's shutdown
        self.assertTrue(second._closed)
        self.assertEqual(cache.get_many(["a", "b"]), {"a": {"loop": "a"}, "b": {"loop": "b"}})

    def test_loops_in_several_threads_at_once(self):
        errors = []

        def run(n):
            async def work():
                for i in range(20):
                    await cache.aset(f"t{n}:{i}", i)
                    if await cache.aget(f"t{n}:{i}") != i:
                        errors.append((n, i))

            try:
                asyncio.run(work())
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(cache.get("t3:19"), 19)

    async def test_async_get_or_load_with_a_coroutine_loader(self):
        runs = []

        async def load():
            runs.append(1)
            return {"loaded": True}

        self.assertEqual(await cache.aget_or_load("gl", load, 60, tags=["t"]), {"loaded": True})
        self.assertEqual(await cache.aget_or_load("gl", load, 60, tags=["t"]), {"loaded": True})
        self.assertEqual(len(runs), 1)
        await cache.ainvalidate_tags(["t"])
        self.assertIsNone(await cache.aget("gl"))
