"""What @cached_query checks where a function is decorated: the ttl, and the kind of service
for the kind of function.

Hand-written: each test is about one decoration, not about a service's operations (those are
generated from ``test_decorator_async.py``)."""

from __future__ import annotations

import pytest

from perfkit.cache import RedisService, cached_query


def test_wrong_kind_of_service_is_refused(cache: RedisService) -> None:
    with pytest.raises(TypeError, match="AsyncRedisService"):

        @cached_query(cache=cache)
        async def fetch() -> int:
            return 1


@pytest.mark.parametrize("ttl", [-1, "300", True, float("nan"), float("inf")])
def test_bad_ttl_is_refused_where_the_function_is_decorated(ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl must be a number of seconds"):
        cached_query(ttl=ttl)  # type: ignore[arg-type]
