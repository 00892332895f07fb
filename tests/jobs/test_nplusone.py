"""A job run is a unit of work: its N+1 is found by a real (in-process) RQ worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from perfkit.jobs import JobService, allow_jobs
from perfkit.queries import NPlusOneDetector, get_n_plus_one_detector, set_n_plus_one_detector
from tests.jobs import _nplusone_jobs
from tests.jobs.conftest import run_burst

allow_jobs("tests.jobs._nplusone_jobs")


@pytest.fixture
def detector() -> Iterator[NPlusOneDetector]:
    before = get_n_plus_one_detector()
    fresh = NPlusOneDetector(threshold=10)
    set_n_plus_one_detector(fresh)
    yield fresh
    set_n_plus_one_detector(before)


def test_a_job_runs_n_plus_one_is_reported_under_its_function(
    conn: redis.Redis, service: JobService, database_url: str, detector: NPlusOneDetector
) -> None:
    service.enqueue(_nplusone_jobs.load_names, database_url, queue="testq")
    run_burst(conn)
    (found,) = detector.findings()
    assert found.kind == "job"
    assert found.route == "tests.jobs._nplusone_jobs.load_names"
    assert found.max_count == 12
    lines = Path(_nplusone_jobs.__file__).read_text().splitlines()
    assert found.call_site is not None
    assert found.call_site.file == _nplusone_jobs.__file__
    assert found.call_site.line == next(i for i, t in enumerate(lines, 1) if "# N+1 job" in t)
    assert detector.by_route() == {"tests.jobs._nplusone_jobs.load_names": 1}
