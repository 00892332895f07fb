"""What PerfkitCache adds to Django's API (tags, stampede protection, msgspec values, the
memory fallback), the database statements timed into perfkit's QueryStats, pool stats, and
the admin mounted in urls.py."""

import threading
import time

from django.core.cache import cache, caches
from django.db import ProgrammingError, connection
from django.test import Client, SimpleTestCase, TestCase, TransactionTestCase

from perfkit._errors import ConfigError
from perfkit.cache import cached_query
from perfkit.contrib.django.cache import PerfkitCache
from perfkit.contrib.django.db import QueryTimer, get_query_stats, pool_stats
from shop.kit import ADMIN_TOKEN
from shop.models import Book
from shop.tests._support import eventually


class PerfkitAdditionsTests(SimpleTestCase):
    def tearDown(self):
        cache.clear()
        caches["msgspec"].clear()

    def test_tags_invalidate_every_tagged_value(self):
        cache.set("p1", "one", tags=["products"])
        cache.set_many({"p2": "two", "p3": "three"}, tags=["products", "shelf:3"])
        cache.set("other", "kept")
        cache.invalidate_tags(["products"])
        self.assertEqual(cache.get_many(["p1", "p2", "p3", "other"]), {"other": "kept"})

    def test_get_or_load_runs_the_loader_once_for_concurrent_misses(self):
        calls = []
        gate = threading.Barrier(8)
        entered = []
        results = []

        def loader():
            calls.append(1)
            # A slow query: every caller misses while it runs.
            eventually(lambda: len(entered) == 8)
            time.sleep(0.2)
            return {"value": 42}

        def worker():
            gate.wait()
            entered.append(1)
            results.append(cache.get_or_load("hot", loader, 60))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(results, [{"value": 42}] * 8)
        self.assertEqual(len(calls), 1)

    def test_get_or_load_with_tags(self):
        self.assertEqual(cache.get_or_load("t", lambda: 1, tags=["t"]), 1)
        self.assertEqual(cache.get_or_load("t", lambda: 2, tags=["t"]), 1)
        cache.invalidate_tags(["t"])
        self.assertEqual(cache.get_or_load("t", lambda: 3, tags=["t"]), 3)

    def test_cached_query_on_the_backends_service(self):
        calls = []

        @cached_query(ttl=60, tags=["card:{card_id}"], cache=cache.service)
        def card(card_id: int) -> dict:
            calls.append(card_id)
            return {"id": card_id}

        self.assertEqual(card(1), {"id": 1})
        self.assertEqual(card(1), {"id": 1})
        cache.invalidate_tags(["card:1"])  # through Django's cache object
        self.assertEqual(card(1), {"id": 1})
        self.assertEqual(calls, [1, 1])

    def test_msgspec_serializer_stores_data_not_pickles(self):
        mp = caches["msgspec"]
        mp.set("data", {"a": [1, 2], "b": None})
        self.assertEqual(mp.get("data"), {"a": [1, 2], "b": None})
        raw = mp.service.client.get(mp.service._key(mp.make_key("data")))
        self.assertNotIn(b"\x80\x05", raw[:3])  # no pickle header
        self.assertIs(mp.add("n", 1), True)
        self.assertEqual(mp.incr("n", 2), 3)
        with self.assertRaisesMessage(TypeError, "'msgspec' cannot cache a shop.models.Book"):
            mp.set("model", Book(title="x", price_cents=1))

    def test_atomic_writes_are_seen_at_once_through_the_l1_near_cache(self):
        near = caches["l1"]
        self.assertTrue(near.service.wait_l1_ready(10))
        near.set("n", 1)
        self.assertEqual(near.get("n"), 1)
        self.assertEqual(near.get("n"), 1)  # now served from process memory
        self.assertEqual(near.incr("n"), 2)
        self.assertEqual(near.get("n"), 2)
        self.assertIs(near.add("n", 5), False)
        near.touch("n", 0)  # removes it
        self.assertIsNone(near.get("n"))
        near.clear()

    def test_the_fallback_serves_from_memory_while_redis_is_down(self):
        down = caches["down"]
        down.set("k", {"v": 1})
        self.assertEqual(down.get("k"), {"v": 1})
        self.assertTrue(down.service.fallback_active)
        self.assertIs(down.add("k", 2), False)
        self.assertIs(down.add("new", 2), True)
        self.assertEqual(down.incr("new", 3), 5)
        self.assertIs(down.touch("k", 10), True)
        self.assertIs(down.delete("k"), True)
        self.assertIsNone(down.get("k"))
        self.assertEqual(down.get_or_load("g", lambda: "loaded"), "loaded")

    def test_bad_configuration_is_named(self):
        with self.assertRaisesMessage(ConfigError, "unknown keys ['MAX_CONNECTIONS']"):
            PerfkitCache("redis://127.0.0.1:6379/9", {"OPTIONS": {"MAX_CONNECTIONS": 3}})
        with self.assertRaisesMessage(ConfigError, "CACHES LOCATION='nonsense'"):
            PerfkitCache("nonsense", {})
        with self.assertRaisesMessage(ConfigError, "OPTIONS['SERIALIZER']='json'"):
            PerfkitCache("redis://127.0.0.1:6379/9", {"OPTIONS": {"SERIALIZER": "json"}})

    def test_one_service_per_configuration(self):
        self.assertIs(caches["default"].service, caches["prefix"].service)
        results = []
        thread = threading.Thread(target=lambda: results.append(caches["default"].service))
        thread.start()
        thread.join()
        self.assertIs(results[0], cache.service)


class DatabaseTimingTests(TransactionTestCase):
    def setUp(self):
        get_query_stats().reset()

    def test_statements_are_timed_by_fingerprint_without_parameters(self):
        self.assertTrue(any(isinstance(w, QueryTimer) for w in connection.execute_wrappers))
        Book.objects.create(title="hunter2-secret", price_cents=4242)
        for _ in range(3):
            list(Book.objects.filter(title="hunter2-secret"))
        snapshot = get_query_stats().stats()
        selects = [s for s in snapshot.by_fingerprint if s.fingerprint.startswith("SELECT")]
        self.assertEqual(len(selects), 1, [s.fingerprint for s in snapshot.by_fingerprint])
        self.assertEqual(selects[0].count, 3)
        self.assertEqual(selects[0].rows, 3)
        self.assertIn('"shop_book"', selects[0].fingerprint)
        self.assertNotIn("hunter2", repr(snapshot))
        self.assertNotIn("4242", repr(snapshot))

    def test_a_failing_statement_is_an_error(self):
        with self.assertRaises(ProgrammingError), connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM shop_book")
        snapshot = get_query_stats().stats()
        self.assertEqual(snapshot.errors, 1)

    def test_pool_stats_when_djangos_pool_is_on(self):
        Book.objects.count()
        stats = pool_stats()
        self.assertIsNotNone(stats)
        self.assertEqual((stats.name, stats.max_size), ("default", 4))
        self.assertGreaterEqual(stats.size, 1)
        self.assertGreaterEqual(stats.connections, 1)


class ViewAndAdminTests(TestCase):
    def tearDown(self):
        cache.clear()

    def test_view_caches_and_invalidates_by_tag(self):
        book = Book.objects.create(title="Dune", price_cents=1500)
        client = Client()
        first = client.get(f"/books/{book.id}/").json()
        Book.objects.filter(pk=book.id).update(price_cents=999)  # behind the cache's back
        self.assertEqual(client.get(f"/books/{book.id}/").json(), first)  # served cached
        client.post(f"/books/{book.id}/price/", {"price_cents": 1750})
        self.assertEqual(client.get(f"/books/{book.id}/").json()["price_cents"], 1750)

    def test_admin_is_mounted_through_urls(self):
        # CSRF checks on, as in a browser: the admin's bearer-token POSTs must pass them.
        client = Client(enforce_csrf_checks=True)
        self.assertEqual(client.get("/api/admin/performance/cache").status_code, 401)
        auth = {"HTTP_AUTHORIZATION": f"Bearer {ADMIN_TOKEN}"}
        cache.set("x", 1)
        cache.get("x")
        report = client.get("/api/admin/performance/cache", **auth)
        self.assertEqual(report.status_code, 200)
        self.assertGreaterEqual(report.json()["metrics"]["hits"], 1)
        dashboard = client.get("/api/admin/performance/", **auth)
        self.assertEqual(dashboard.status_code, 200)
        self.assertIn("text/html", dashboard["Content-Type"])
        # Django's statements are the kit's database, with Django's pool.
        Book.objects.count()
        queries = client.get("/api/admin/performance/queries", **auth).json()
        self.assertGreaterEqual(queries["queries"]["count"], 1)
        self.assertEqual(queries["pool"]["name"], "default")
        invalidated = client.post(
            "/api/admin/performance/cache/invalidate",
            data='{"tags": ["products"]}',
            content_type="application/json",
            **auth,
        )
        self.assertEqual(invalidated.status_code, 200, invalidated.content)
