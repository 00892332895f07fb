"""The errors rule (perfkit/_errors.py): bad input is a ValueError/TypeError within PerfkitError,
and a part's own error class stays catchable where callers already catch it."""

from __future__ import annotations

import pytest
import redis

from perfkit import (
    ArgumentError,
    ArgumentTypeError,
    JobArgumentError,
    JobError,
    PerfkitError,
    QueryError,
)
from perfkit.cache import RedisService
from perfkit.jobs import JobService
from perfkit.queries import KeysetPagination


def test_a_bad_cache_argument_is_a_value_error_within_perfkit(redis_url: str) -> None:
    cache = RedisService(redis_url, namespace="errors-rule")
    try:
        with pytest.raises(ArgumentError, match="ttl must be") as info:
            cache.set("k", 1, ttl=-1)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, PerfkitError)
        with pytest.raises(ArgumentTypeError, match="cache key") as type_info:
            cache.get(42)  # type: ignore[arg-type]
        assert isinstance(type_info.value, TypeError)
    finally:
        cache.close()


def noop() -> None:
    """A module-level function a job can name."""


def test_a_bad_job_argument_is_both_a_job_error_and_a_value_error(
    redis_url: str,
) -> None:
    service = JobService(redis.Redis.from_url(redis_url))
    with pytest.raises(JobArgumentError, match="delay must be") as info:
        service.enqueue(noop, queue="errors-rule", delay=-1)
    assert isinstance(info.value, JobError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="priority must be"):
        service.enqueue(noop, queue="errors-rule", priority=3)


def test_a_bad_pagination_cursor_is_a_value_error() -> None:
    paginator = KeysetPagination("items", ["id"])
    with pytest.raises(QueryError, match="bad pagination cursor") as info:
        paginator.decode_cursor("not-a-cursor")
    assert isinstance(info.value, ValueError)
