"""Django's own cache tests (BaseCacheTests, vendored in test_django.py) against PerfkitCache
on the same private Redis as Django's RedisCacheTests: at the backend's defaults, and with
SERIALIZER="msgspec" (less the tests that cache what only pickle can, each marked)."""

import os
import unittest

from django.test import TestCase, override_settings

from cachesuite import test_django
from cachesuite.test_django import BaseCacheTests, caches_setting_for_tests, redis_excluded_caches

PERFKIT = {
    "BACKEND": "perfkit.contrib.django.cache.PerfkitCache",
    "LOCATION": os.environ.get("PK_SUITE_REDIS_URL"),
    "OPTIONS": {"NAMESPACE": "suite"},
}


def needs_pickle(test, why):
    """``test``, skipped: it caches values only pickle returns unchanged (msgspec refuses
    them with a TypeError)."""
    return unittest.skip(f"needs pickle: {why}")(test)


@unittest.skipUnless(PERFKIT["LOCATION"], "PK_SUITE_REDIS_URL not set")
@override_settings(CACHES=caches_setting_for_tests(base=PERFKIT, exclude=redis_excluded_caches))
class PerfkitCacheTests(BaseCacheTests, TestCase):
    """At the defaults: any picklable value, signed."""

    # The one test of RedisCacheTests that is not about RedisCache's internals.
    test_get_backend_timeout_method = test_django.RedisCacheTests.test_get_backend_timeout_method


@unittest.skipUnless(PERFKIT["LOCATION"], "PK_SUITE_REDIS_URL not set")
@override_settings(
    CACHES=caches_setting_for_tests(
        base={**PERFKIT, "OPTIONS": {"NAMESPACE": "suite-msgspec", "SERIALIZER": "msgspec"}},
        exclude=redis_excluded_caches,
    )
)
class PerfkitMsgspecCacheTests(BaseCacheTests, TestCase):
    """SERIALIZER="msgspec": JSON-shaped values only."""

    test_get_backend_timeout_method = test_django.RedisCacheTests.test_get_backend_timeout_method

    test_data_types = needs_pickle(
        BaseCacheTests.test_data_types, "caches a tuple, a function and a class"
    )
    test_cache_read_for_model_instance = needs_pickle(
        BaseCacheTests.test_cache_read_for_model_instance, "caches a model instance"
    )
    test_cache_write_for_model_instance_with_deferred = needs_pickle(
        BaseCacheTests.test_cache_write_for_model_instance_with_deferred, "caches a queryset"
    )
    test_cache_read_for_model_instance_with_deferred = needs_pickle(
        BaseCacheTests.test_cache_read_for_model_instance_with_deferred, "caches a queryset"
    )
    test_cache_write_unpicklable_object = needs_pickle(
        BaseCacheTests.test_cache_write_unpicklable_object, "cache_page caches an HttpResponse"
    )
    test_add_fail_on_pickleerror = needs_pickle(
        BaseCacheTests.test_add_fail_on_pickleerror, "expects pickle's PickleError"
    )
    test_set_fail_on_pickleerror = needs_pickle(
        BaseCacheTests.test_set_fail_on_pickleerror, "expects pickle's PickleError"
    )
