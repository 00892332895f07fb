from __future__ import annotations

import pytest

from perfkit import ConfigError
from perfkit.jobs.retry import retry_intervals, rq_retry


def test_exponential_backoff_doubles_from_the_base_delay() -> None:
    assert retry_intervals(3, "exponential", 1.0) == [1, 2, 4]
    assert retry_intervals(5, "exponential", 1.0) == [1, 2, 4, 8, 16]
    assert retry_intervals(3, "exponential", 0.5) == [1, 1, 2]  # whole seconds, rounded up


def test_fixed_backoff_repeats_the_base_delay() -> None:
    assert retry_intervals(3, "fixed", 2.0) == [2, 2, 2]


def test_zero_base_delay_retries_at_once_and_zero_attempts_means_none() -> None:
    assert retry_intervals(3, "exponential", 0) == [0, 0, 0]
    assert retry_intervals(0, "exponential", 1.0) == []
    assert rq_retry(0, "exponential", 1.0) is None


def test_rq_retry_gets_one_interval_per_retry() -> None:
    # RQ repeats the *first* interval when the list is shorter than max: never rely on it.
    retry = rq_retry(4, "exponential", 1.0)
    assert retry is not None
    assert (retry.max, retry.intervals) == (4, [1, 2, 4, 8])


@pytest.mark.parametrize(
    ("attempts", "backoff", "base"), [(-1, "fixed", 1.0), (3, "linear", 1.0), (3, "fixed", -1)]
)
def test_bad_retry_settings_are_refused(attempts: int, backoff: str, base: float) -> None:
    with pytest.raises(ConfigError):
        retry_intervals(attempts, backoff, base)  # type: ignore[arg-type]
