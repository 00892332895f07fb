"""PerfkitCache against Django's documented cache behaviour: the cases of Django's own
backend tests (tests/cache/tests.py, BaseCacheTests) that apply to a Redis backend,
adapted (short float timeouts polled instead of sleeps), plus the a* methods."""

import pickle
import warnings

from django.core.cache import CacheKeyWarning, cache, caches
from django.http import HttpResponse
from django.middleware.cache import FetchFromCacheMiddleware, UpdateCacheMiddleware
from django.test import RequestFactory, SimpleTestCase, TestCase

from shop.models import Poll, expensive_calculation
from shop.tests._support import eventually


def f():
    return 42


class C:
    def m(n):
        return 24


class Unpicklable:
    def __getstate__(self):
        raise pickle.PickleError()


class CacheTestsMixin:
    def tearDown(self):
        for alias in ("default", "prefix", "v2", "custom_key", "custom_key2", "msgspec"):
            caches[alias].clear()


class BackendTests(CacheTestsMixin, SimpleTestCase):
    def test_simple(self):
        cache.set("key", "value")
        self.assertEqual(cache.get("key"), "value")

    def test_default_used_when_none_is_set(self):
        cache.set("key_default_none", None)
        self.assertIsNone(cache.get("key_default_none", default="default"))

    def test_add(self):
        self.assertIs(cache.add("addkey1", "value"), True)
        self.assertIs(cache.add("addkey1", "newvalue"), False)
        self.assertEqual(cache.get("addkey1"), "value")

    def test_prefix(self):
        cache.set("somekey", "value")
        self.assertIs(caches["prefix"].has_key("somekey"), False)
        caches["prefix"].set("somekey", "value2")
        self.assertEqual(cache.get("somekey"), "value")
        self.assertEqual(caches["prefix"].get("somekey"), "value2")

    def test_non_existent(self):
        self.assertIsNone(cache.get("does_not_exist"))
        self.assertEqual(cache.get("does_not_exist", "bang!"), "bang!")

    def test_get_many(self):
        cache.set_many({"a": "a", "b": "b", "c": "c", "d": "d"})
        self.assertEqual(cache.get_many(["a", "c", "d"]), {"a": "a", "c": "c", "d": "d"})
        self.assertEqual(cache.get_many(["a", "b", "e"]), {"a": "a", "b": "b"})
        self.assertEqual(cache.get_many(iter(["a", "b", "e"])), {"a": "a", "b": "b"})
        cache.set_many({"x": None, "y": 1})
        self.assertEqual(cache.get_many(["x", "y"]), {"x": None, "y": 1})

    def test_delete(self):
        cache.set_many({"key1": "spam", "key2": "eggs"})
        self.assertEqual(cache.get("key1"), "spam")
        self.assertIs(cache.delete("key1"), True)
        self.assertIsNone(cache.get("key1"))
        self.assertEqual(cache.get("key2"), "eggs")

    def test_delete_nonexistent(self):
        self.assertIs(cache.delete("nonexistent_key"), False)

    def test_has_key(self):
        cache.set("hello1", "goodbye1")
        self.assertIs(cache.has_key("hello1"), True)
        self.assertIs(cache.has_key("goodbye1"), False)
        cache.set("no_expiry", "here", None)
        self.assertIs(cache.has_key("no_expiry"), True)
        cache.set("null", None)
        self.assertIs(cache.has_key("null"), True)

    def test_in(self):
        cache.set("hello2", "goodbye2")
        self.assertIn("hello2", cache)
        self.assertNotIn("goodbye2", cache)
        cache.set("null", None)
        self.assertIn("null", cache)

    def test_incr(self):
        cache.set("answer", 41)
        self.assertEqual(cache.incr("answer"), 42)
        self.assertEqual(cache.get("answer"), 42)
        self.assertEqual(cache.incr("answer", 10), 52)
        self.assertEqual(cache.get("answer"), 52)
        self.assertEqual(cache.incr("answer", -10), 42)
        with self.assertRaises(ValueError):
            cache.incr("does_not_exist")
        with self.assertRaises(ValueError):
            cache.incr("does_not_exist", -1)
        cache.set("null", None)
        with self.assertRaises(TypeError):
            cache.incr("null")

    def test_decr(self):
        cache.set("answer", 43)
        self.assertEqual(cache.decr("answer"), 42)
        self.assertEqual(cache.get("answer"), 42)
        self.assertEqual(cache.decr("answer", 10), 32)
        self.assertEqual(cache.get("answer"), 32)
        self.assertEqual(cache.decr("answer", -10), 42)
        with self.assertRaises(ValueError):
            cache.decr("does_not_exist")
        cache.set("null", None)
        with self.assertRaises(TypeError):
            cache.decr("null")

    def test_incr_keeps_the_timeout(self):
        cache.set("counter", 1, 1)
        self.assertEqual(cache.incr("counter"), 2)
        eventually(lambda: not cache.has_key("counter"))

    def test_close(self):
        self.assertTrue(hasattr(cache, "close"))
        cache.close()
        cache.set("after_close", 1)
        self.assertEqual(cache.get("after_close"), 1)

    def test_data_types(self):
        tests = {
            "string": "this is a string",
            "int": 42,
            "bool": True,
            "list": [1, 2, 3, 4],
            "tuple": (1, 2, 3, 4),
            "dict": {"A": 1, "B": 2},
            "function": f,
            "class": C,
        }
        for key, value in tests.items():
            with self.subTest(key=key):
                cache.set(key, value)
                self.assertEqual(cache.get(key), value)

    def test_expiration(self):
        cache.set("expire1", "very quickly", 0.3)
        cache.set("expire2", "very quickly", 0.3)
        cache.set("expire3", "very quickly", 0.3)
        # All three expired (on a loaded machine the later sets expire a little later).
        eventually(lambda: all(cache.get(key) is None for key in ("expire1", "expire2", "expire3")))
        self.assertIs(cache.add("expire2", "newvalue"), True)
        self.assertEqual(cache.get("expire2"), "newvalue")
        self.assertIs(cache.has_key("expire3"), False)

    def test_touch(self):
        cache.set("expire1", "very quickly", timeout=1)
        self.assertIs(cache.touch("expire1", timeout=60), True)
        self.assertGreater(
            cache.service.client.pttl(cache.service._key(cache.make_key("expire1"))), 30_000
        )
        self.assertIs(cache.touch("expire1", timeout=0.3), True)
        eventually(lambda: not cache.has_key("expire1"))
        cache.set("expire1", "very quickly", timeout=1)
        self.assertIs(cache.touch("expire1"), True)  # the default timeout: 300 s
        self.assertIs(cache.touch("expire1", timeout=None), True)
        self.assertEqual(
            cache.service.client.pttl(cache.service._key(cache.make_key("expire1"))), -1
        )
        self.assertIs(cache.touch("nonexistent"), False)
        cache.set("expire2", "x")
        self.assertIs(cache.touch("expire2", timeout=0), True)
        self.assertIs(cache.has_key("expire2"), False)

    def test_unicode(self):
        stuff = {
            "ascii": "ascii_value",
            "unicode_ascii": "Iñtërnâtiônàlizætiøn1",
            "Iñtërnâtiônàlizætiøn": "Iñtërnâtiônàlizætiøn2",
            "ascii2": {"x": 1},
        }
        for key, value in stuff.items():
            with self.subTest(key=key):
                cache.delete(key)
                cache.add(key, value)
                self.assertEqual(cache.get(key), value)
                cache.delete(key)
                cache.set_many({key: value})
                self.assertEqual(cache.get(key), value)

    def test_binary_string(self):
        from zlib import compress, decompress

        value = "value_to_be_compressed"
        compressed = compress(value.encode())
        cache.set("binary1", compressed)
        self.assertEqual(value, decompress(cache.get("binary1")).decode())
        cache.add("binary1-add", compressed)
        self.assertEqual(value, decompress(cache.get("binary1-add")).decode())
        cache.set_many({"binary1-set_many": compressed})
        self.assertEqual(value, decompress(cache.get("binary1-set_many")).decode())

    def test_set_many(self):
        cache.set_many({"key1": "spam", "key2": "eggs"})
        self.assertEqual(cache.get("key1"), "spam")
        self.assertEqual(cache.get("key2"), "eggs")

    def test_set_many_returns_empty_list_on_success(self):
        self.assertEqual(cache.set_many({"key1": "spam", "key2": "eggs"}), [])

    def test_set_many_empty_data(self):
        self.assertEqual(cache.set_many({}), [])

    def test_set_many_expiration(self):
        cache.set_many({"key1": "spam", "key2": "eggs"}, 1)
        # Stored with the timeout, then gone once it passed.
        self.assertGreater(cache.service.client.pttl(cache.service._key(cache.make_key("key1"))), 0)
        eventually(lambda: cache.get("key1") is None and cache.get("key2") is None)

    def test_delete_many(self):
        cache.set_many({"key1": "spam", "key2": "eggs", "key3": "ham"})
        cache.delete_many(["key1", "key2"])
        self.assertIsNone(cache.get("key1"))
        self.assertIsNone(cache.get("key2"))
        self.assertEqual(cache.get("key3"), "ham")

    def test_delete_many_no_keys(self):
        self.assertIsNone(cache.delete_many([]))

    def test_clear(self):
        cache.set_many({"key1": "spam", "key2": "eggs"})
        cache.clear()
        self.assertIsNone(cache.get("key1"))
        self.assertIsNone(cache.get("key2"))

    def test_clear_leaves_other_namespaces_alone(self):
        client = cache.service.client
        client.set("not-perfkit:keep", b"1")
        try:
            cache.set("key1", "spam")
            cache.clear()
            self.assertEqual(client.get("not-perfkit:keep"), b"1")
        finally:
            client.delete("not-perfkit:keep")

    def test_long_timeout(self):
        # Beyond memcached's 30-day relative limit: still a relative timeout here.
        cache.set("key1", "eggs", 60 * 60 * 24 * 30 + 1)
        self.assertEqual(cache.get("key1"), "eggs")
        self.assertIs(cache.add("key2", "ham", 60 * 60 * 24 * 30 + 1), True)
        self.assertEqual(cache.get("key2"), "ham")
        cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, 60 * 60 * 24 * 30 + 1)
        self.assertEqual(cache.get("key3"), "sausage")
        self.assertEqual(cache.get("key4"), "lobster bisque")

    def test_forever_timeout(self):
        cache.set("key1", "eggs", None)
        self.assertEqual(cache.get("key1"), "eggs")
        self.assertIs(cache.add("key2", "ham", None), True)
        self.assertEqual(cache.get("key2"), "ham")
        self.assertIs(cache.add("key1", "new eggs", None), False)
        self.assertEqual(cache.get("key1"), "eggs")
        cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, None)
        self.assertEqual(cache.get("key3"), "sausage")
        self.assertEqual(cache.get("key4"), "lobster bisque")
        cache.set("key5", "belgian fries", timeout=1)
        self.assertIs(cache.touch("key5", timeout=None), True)
        self.assertEqual(cache.get("key5"), "belgian fries")
        # TIMEOUT=None in CACHES: no expiry by default
        caches["forever"].set("key6", "x")
        full = cache.service._key(caches["forever"].make_key("key6"))
        self.assertEqual(cache.service.client.pttl(full), -1)

    def test_zero_timeout(self):
        cache.set("key1", "eggs", 0)
        self.assertIsNone(cache.get("key1"))
        self.assertIs(cache.add("key2", "ham", 0), True)
        self.assertIsNone(cache.get("key2"))
        cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, 0)
        self.assertIsNone(cache.get("key3"))
        self.assertIsNone(cache.get("key4"))
        cache.set("key5", "belgian fries", timeout=5)
        self.assertIs(cache.touch("key5", timeout=0), True)
        self.assertIsNone(cache.get("key5"))

    def test_negative_timeout_is_not_cached(self):
        cache.set("key1", "eggs", -1)
        self.assertIsNone(cache.get("key1"))
        cache.set("key2", "old")
        cache.set("key2", "new", -5)  # replaces by removing
        self.assertIsNone(cache.get("key2"))

    def test_float_timeout(self):
        cache.set("key1", "spam", 100.2)
        self.assertEqual(cache.get("key1"), "spam")
        ttl = cache.service.client.pttl(cache.service._key(cache.make_key("key1")))
        self.assertTrue(99_000 < ttl <= 100_200, ttl)

    def test_get_backend_timeout_method(self):
        self.assertEqual(cache.get_backend_timeout(10), 10)
        self.assertEqual(cache.get_backend_timeout(-10), 0)
        self.assertIsNone(cache.get_backend_timeout(None))
        self.assertEqual(cache.get_backend_timeout(), 300)  # TIMEOUT's default

    def test_default_far_future_timeout(self):
        far = 60 * 60 * 24 * 365 * 50  # 50 years: still relative, still cached
        cache.set("far", "future", far)
        self.assertEqual(cache.get("far"), "future")
        self.assertIs(cache.add("far2", "future", far), True)
        self.assertEqual(cache.get_many(["far", "far2"]), {"far": "future", "far2": "future"})

    def test_default_timeout_comes_from_caches(self):
        caches["short"].set("key1", "spam")
        self.assertEqual(caches["short"].get("key1"), "spam")
        eventually(lambda: caches["short"].get("key1") is None)

    def test_invalid_key_characters(self):
        key = "key with spaces and 清"
        self._assert_key_warning(key, "Cache key contains characters that will cause errors")

    def test_invalid_key_length(self):
        key = "a" * 251
        self._assert_key_warning(key, "Cache key will cause errors if used with memcached")

    def _assert_key_warning(self, key, message):
        for operation in (
            lambda: cache.set(key, "value"),
            lambda: cache.get(key),
            lambda: cache.add(key, "value"),
            lambda: cache.has_key(key),
            lambda: cache.delete(key),
            lambda: cache.get_many([key]),
            lambda: cache.set_many({key: "v"}),
            lambda: cache.delete_many([key]),
            lambda: cache.touch(key),
        ):
            with self.subTest(operation=operation), warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                operation()
                self.assertTrue(
                    any(
                        issubclass(w.category, CacheKeyWarning) and message in str(w.message)
                        for w in seen
                    ),
                    [str(w.message) for w in seen],
                )

    def test_cache_versioning_get_set(self):
        cache.set("answer1", 42)
        self.assertEqual(cache.get("answer1"), 42)
        self.assertEqual(cache.get("answer1", version=1), 42)
        self.assertIsNone(cache.get("answer1", version=2))
        self.assertIsNone(caches["v2"].get("answer1"))
        self.assertEqual(caches["v2"].get("answer1", version=1), 42)
        self.assertIsNone(caches["v2"].get("answer1", version=2))
        cache.set("answer2", 42, version=2)
        self.assertIsNone(cache.get("answer2"))
        self.assertEqual(cache.get("answer2", version=2), 42)
        self.assertEqual(caches["v2"].get("answer2"), 42)
        caches["v2"].set("answer3", 42)
        self.assertIsNone(cache.get("answer3"))
        self.assertEqual(cache.get("answer3", version=2), 42)
        caches["v2"].set("answer4", 42, version=1)
        self.assertEqual(cache.get("answer4"), 42)
        self.assertIsNone(caches["v2"].get("answer4"))

    def test_cache_versioning_add(self):
        self.assertIs(cache.add("answer1", 42, version=2), True)
        self.assertIs(cache.add("answer1", 37, version=2), False)
        self.assertIs(cache.add("answer1", 37, version=1), True)
        self.assertEqual(cache.get("answer1", version=1), 37)
        self.assertEqual(cache.get("answer1", version=2), 42)
        self.assertIs(caches["v2"].add("answer2", 42), True)
        self.assertIs(caches["v2"].add("answer2", 37, version=1), True)
        self.assertEqual(caches["v2"].get("answer2"), 42)
        self.assertEqual(caches["v2"].get("answer2", version=1), 37)

    def test_cache_versioning_has_key(self):
        cache.set("answer1", 42)
        self.assertIs(cache.has_key("answer1"), True)
        self.assertIs(cache.has_key("answer1", version=1), True)
        self.assertIs(cache.has_key("answer1", version=2), False)
        self.assertIs(caches["v2"].has_key("answer1"), False)
        self.assertIs(caches["v2"].has_key("answer1", version=1), True)

    def test_cache_versioning_delete(self):
        cache.set("answer1", 37, version=1)
        cache.set("answer1", 42, version=2)
        self.assertIs(cache.delete("answer1"), True)
        self.assertIsNone(cache.get("answer1", version=1))
        self.assertEqual(cache.get("answer1", version=2), 42)
        caches["v2"].set("answer3", 37, version=1)
        caches["v2"].set("answer3", 42, version=2)
        self.assertIs(caches["v2"].delete("answer3", version=1), True)
        self.assertIsNone(caches["v2"].get("answer3", version=1))
        self.assertEqual(caches["v2"].get("answer3", version=2), 42)

    def test_cache_versioning_incr_decr(self):
        cache.set("answer1", 37, version=1)
        cache.set("answer1", 42, version=2)
        self.assertEqual(cache.incr("answer1"), 38)
        self.assertEqual(cache.get("answer1", version=1), 38)
        self.assertEqual(cache.get("answer1", version=2), 42)
        self.assertEqual(cache.decr("answer1", version=2), 41)
        self.assertEqual(caches["v2"].incr("answer1"), 42)
        self.assertEqual(caches["v2"].get("answer1", version=1), 38)

    def test_cache_versioning_get_set_many(self):
        cache.set_many({"ford1": 37, "arthur1": 42})
        self.assertEqual(cache.get_many(["ford1", "arthur1"]), {"ford1": 37, "arthur1": 42})
        self.assertEqual(cache.get_many(["ford1", "arthur1"], version=2), {})
        self.assertEqual(caches["v2"].get_many(["ford1", "arthur1"]), {})
        self.assertEqual(
            caches["v2"].get_many(["ford1", "arthur1"], version=1), {"ford1": 37, "arthur1": 42}
        )
        caches["v2"].set_many({"ford3": 37, "arthur3": 42})
        self.assertEqual(cache.get_many(["ford3", "arthur3"]), {})
        self.assertEqual(
            cache.get_many(["ford3", "arthur3"], version=2), {"ford3": 37, "arthur3": 42}
        )

    def test_cache_versioning_delete_many(self):
        cache.set_many({"ford1": 37, "arthur1": 42}, version=1)
        cache.set_many({"ford1": 1, "arthur1": 2}, version=2)
        cache.delete_many(["ford1", "arthur1"], version=2)
        self.assertEqual(cache.get_many(["ford1", "arthur1"]), {"ford1": 37, "arthur1": 42})
        self.assertEqual(cache.get_many(["ford1", "arthur1"], version=2), {})

    def test_incr_version(self):
        cache.set("answer", 42, version=2)
        self.assertIsNone(cache.get("answer"))
        self.assertEqual(cache.get("answer", version=2), 42)
        self.assertEqual(cache.incr_version("answer", version=2), 3)
        self.assertIsNone(cache.get("answer", version=2))
        self.assertEqual(cache.get("answer", version=3), 42)
        self.assertEqual(caches["v2"].incr_version("answer", version=3), 4)
        self.assertEqual(caches["v2"].get("answer", version=4), 42)
        with self.assertRaises(ValueError):
            cache.incr_version("does_not_exist")
        cache.set("null", None)
        self.assertEqual(cache.incr_version("null"), 2)

    def test_decr_version(self):
        cache.set("answer", 42, version=2)
        self.assertEqual(cache.decr_version("answer", version=2), 1)
        self.assertEqual(cache.get("answer"), 42)
        self.assertIsNone(cache.get("answer", version=2))
        with self.assertRaises(ValueError):
            cache.decr_version("does_not_exist", version=2)

    def test_custom_key_func(self):
        cache.set("answer1", 42)
        self.assertIsNone(caches["custom_key"].get("answer1"))
        self.assertIsNone(caches["custom_key2"].get("answer1"))
        caches["custom_key"].set("answer2", 42)
        self.assertIsNone(cache.get("answer2"))
        self.assertEqual(caches["custom_key"].get("answer2"), 42)
        self.assertEqual(caches["custom_key2"].get("answer2"), 42)

    def test_cache_write_unpicklable_object(self):
        # cache_page's middleware stores whole responses: needs SERIALIZER="pickle".
        fetch = FetchFromCacheMiddleware(lambda request: HttpResponse())
        request = RequestFactory().get("/cache/test")
        request._cache_update_cache = True
        self.assertIsNone(fetch.process_request(request))
        content = "Testing cookie serialization."

        def get_response(req):
            response = HttpResponse(content)
            response.set_cookie("foo", "bar")
            return response

        update = UpdateCacheMiddleware(get_response)
        response = update(request)
        cached = fetch.process_request(request)
        self.assertIsNotNone(cached)
        self.assertEqual(cached.content, content.encode())
        self.assertEqual(cached.cookies, response.cookies)

    def test_add_fail_on_pickleerror(self):
        with self.assertRaises(pickle.PickleError):
            cache.add("unpicklable", Unpicklable())

    def test_set_fail_on_pickleerror(self):
        with self.assertRaises(pickle.PickleError):
            cache.set("unpicklable", Unpicklable())

    def test_get_or_set(self):
        self.assertIsNone(cache.get("projector"))
        self.assertEqual(cache.get_or_set("projector", 42), 42)
        self.assertEqual(cache.get("projector"), 42)
        self.assertIsNone(cache.get_or_set("null", None))
        # Previous get_or_set() stores None in the cache.
        self.assertIsNone(cache.get("null", "default"))

    def test_get_or_set_callable(self):
        def my_callable():
            return "value"

        self.assertEqual(cache.get_or_set("mykey", my_callable), "value")
        self.assertEqual(cache.get_or_set("mykey", my_callable()), "value")
        self.assertIsNone(cache.get_or_set("null", lambda: None))
        self.assertIsNone(cache.get("null", "default"))

    def test_get_or_set_version(self):
        msg = "get_or_set() missing 1 required positional argument: 'default'"
        self.assertEqual(cache.get_or_set("brian", 1979, version=2), 1979)
        with self.assertRaisesMessage(TypeError, msg):
            cache.get_or_set("brian")
        with self.assertRaisesMessage(TypeError, msg):
            cache.get_or_set("brian", version=1)
        self.assertIsNone(cache.get("brian", version=1))
        self.assertEqual(cache.get_or_set("brian", 42, version=1), 42)
        self.assertEqual(cache.get_or_set("brian", 1979, version=2), 1979)
        self.assertIsNone(cache.get("brian", version=3))

    def test_get_or_set_racing(self):
        # Another process adds the key between get() and add(): its value wins.
        original_add = cache.add

        def racing_add(key, value, timeout=None, version=None):
            cache.set(key, "theirs", version=version)
            return original_add(key, value, timeout, version)

        cache.add = racing_add
        try:
            self.assertEqual(cache.get_or_set("key", "mine"), "theirs")
        finally:
            del cache.add


class ModelInstanceTests(CacheTestsMixin, TestCase):
    def test_cache_read_for_model_instance(self):
        expensive_calculation.num_runs = 0
        Poll.objects.all().delete()
        my_poll = Poll.objects.create(question="Well?")
        self.assertEqual(Poll.objects.count(), 1)
        pub_date = my_poll.answer
        cache.set("question", my_poll)
        cached_poll = cache.get("question")
        self.assertEqual(cached_poll.answer, pub_date)
        # the default callable ran when the instance was created only
        self.assertEqual(expensive_calculation.num_runs, 1)

    def test_cache_write_for_model_instance_with_deferred(self):
        expensive_calculation.num_runs = 0
        Poll.objects.all().delete()
        Poll.objects.create(question="What?")
        self.assertEqual(expensive_calculation.num_runs, 1)
        defer_qs = Poll.objects.defer("question")
        self.assertEqual(defer_qs.count(), 1)
        cache.set("deferred_queryset", defer_qs)
        self.assertEqual(expensive_calculation.num_runs, 1)

    def test_cache_read_for_model_instance_with_deferred(self):
        expensive_calculation.num_runs = 0
        Poll.objects.all().delete()
        Poll.objects.create(question="What?")
        defer_qs = Poll.objects.defer("question")
        cache.set("deferred_queryset", defer_qs)
        runs_before_cache_read = expensive_calculation.num_runs
        cache.get("deferred_queryset")
        self.assertEqual(expensive_calculation.num_runs, runs_before_cache_read)


class AsyncTests(CacheTestsMixin, SimpleTestCase):
    async def test_async_methods(self):
        self.assertIs(await cache.aadd("akey", "value"), True)
        self.assertIs(await cache.aadd("akey", "other"), False)
        self.assertEqual(await cache.aget("akey"), "value")
        await cache.aset("akey", "new", 60)
        self.assertEqual(await cache.aget("akey"), "new")
        self.assertIs(await cache.ahas_key("akey"), True)
        self.assertIs(await cache.atouch("akey", 30), True)
        await cache.aset_many({"a": 1, "b": 2})
        self.assertEqual(await cache.aget_many(["a", "b", "c"]), {"a": 1, "b": 2})
        self.assertEqual(await cache.aincr("a", 5), 6)
        self.assertEqual(await cache.adecr("a"), 5)
        self.assertEqual(await cache.aget_or_set("c", lambda: 3), 3)
        self.assertEqual(await cache.aincr_version("b"), 2)
        self.assertEqual(await cache.aget("b", version=2), 2)
        self.assertEqual(await cache.adecr_version("b", version=2), 1)
        self.assertIs(await cache.adelete("akey"), True)
        await cache.adelete_many(["a", "b"])
        self.assertEqual(await cache.aget_many(["a", "b"]), {})
        await cache.aclear()
        self.assertIsNone(await cache.aget("c"))
        await cache.aclose()
