"""Job metrics recorded by real ``perfkit worker`` processes (one forking, one not),
merged in Redis, read by JobService, the admin ``jobs`` route and the exposition
(promtool-clean), and recorded through OpenTelemetry where the job ends."""

from __future__ import annotations

import os
import re
import signal

import httpx
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from rq.command import send_stop_job_command

import perfkit.otel
from perfkit.jobs import JobService
from perfkit.jobs.serializer import JobSerializer
from tests.jobs._processors import Block, Flaky, Mark, Once, Picky
from tests.jobs.conftest import AUTH, StartWorker, run_burst, wait_for
from tests.metrics.test_prometheus import promtool_check


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of ``name`` with exactly ``labels`` in an exposition."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    assert found is not None, f"{name}{{{wanted}}} not in the exposition"
    return float(found.group(1))


def test_outcomes_durations_and_waits_of_two_workers_reach_every_view(
    conn: redis.Redis, start_worker: StartWorker, admin: httpx.Client
) -> None:
    service = JobService(conn, queues=("testq",), retry_base_delay=0)
    for n in range(4):
        service.enqueue("test.record", Mark(key="ran", tag=str(n)))
    service.enqueue("test.record", Mark(key="ran", tag="later"), delay=1)
    service.enqueue("test.flaky", Flaky(key="flaky", fail_times=1), retries=2)  # retried, then ok
    service.enqueue("test.picky", Picky(key="picky", error="KeyError"))  # not retried: failed
    service.queue("testq").enqueue("os.getcwd")  # forged: refused
    workers = [start_worker(), start_worker("--fork")]
    # 5 record runs, flaky's 2 (retried, finished), picky's 1, the refused one.
    ended = lambda: sum(sum(m.outcomes.values()) for m in service.job_metrics())  # noqa: E731
    wait_for(lambda: ended() == 9, 60, "every run to be counted")
    for worker in workers:
        worker.terminate()
        worker.wait(10)

    by_function = {(m.function, m.queue): m for m in service.job_metrics()}
    record = by_function[("test.record", "testq")]
    assert record.outcomes["finished"] == 5
    assert by_function[("test.flaky", "testq")].outcomes | {} == {
        "finished": 1, "failed": 0, "retried": 1, "refused": 0, "canceled": 0,
    }  # fmt: skip
    assert by_function[("test.picky", "testq")].outcomes["failed"] == 1
    assert by_function[("(refused)", "testq")].outcomes["refused"] == 1
    assert record.duration_p95 is not None and 0 < record.duration_p95 < 5
    assert record.wait_p50 is not None and record.wait_p50 >= 0

    text = admin.get("metrics", headers=AUTH).text
    assert _sample(text, "perfkit_jobs_total", function="test.record", queue="testq",
                   outcome="finished") == 5  # fmt: skip
    assert _sample(text, "perfkit_jobs_total", function="test.flaky", queue="testq",
                   outcome="retried") == 1  # fmt: skip
    assert _sample(text, "perfkit_job_duration_seconds_count", function="test.record",
                   queue="testq", outcome="finished") == 5  # fmt: skip
    # Every run waited in the queue, the delayed one counted from when it was due.
    assert _sample(text, "perfkit_job_queue_wait_seconds_count", function="test.record",
                   queue="testq") == 5  # fmt: skip
    returncode, problems = promtool_check(text)
    assert returncode == 0, problems

    jobs = admin.get("jobs", headers=AUTH).json()
    shown = {(m["function"], m["queue"]): m for m in jobs["metrics"]}
    assert shown[("test.record", "testq")]["outcomes"]["finished"] == 5
    dashboard = admin.get("dashboard", headers=AUTH).json()
    assert dashboard["jobs"]["metrics"] == jobs["metrics"]


def test_job_metrics_are_recorded_through_opentelemetry_where_the_job_ends(
    conn: redis.Redis,
) -> None:
    reader = InMemoryMetricReader()
    perfkit.otel.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        JobService(conn, queues=("testq",)).enqueue("test.record", Mark(key="k", tag="t"))
        run_burst(conn)
    finally:
        perfkit.otel.uninstrument()
    data = reader.get_metrics_data()
    assert data is not None
    found = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    [point] = found["perfkit_jobs"].data.data_points
    assert point.value == 1
    assert dict(point.attributes) == {"function": "test.record", "queue": "testq",
                                      "outcome": "finished"}  # fmt: skip
    [duration] = found["perfkit_job_duration_seconds"].data.data_points
    assert duration.count == 1 and duration.sum > 0
    assert found["perfkit_job_queue_wait_seconds"].data.data_points[0].count == 1


def test_a_forked_horse_records_its_jobs(conn: redis.Redis, start_worker: StartWorker) -> None:
    service = JobService(conn, queues=("testq",))
    for n in range(2):
        service.enqueue("test.record", Mark(key="ran", tag=str(n)))
    assert start_worker("--fork", "--burst").wait(30) == 0
    [record] = service.job_metrics()
    assert (record.function, record.outcomes["finished"]) == ("test.record", 2)


def test_a_horse_that_dies_with_its_job_is_counted_by_its_worker(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=0)
    start_worker("--fork")
    stopped = service.enqueue("test.block", Block(key="stop"))
    wait_for(lambda: conn.get("stop:attempts") == b"1", 30, "the job to start")
    send_stop_job_command(conn, stopped, serializer=JobSerializer)
    service.enqueue("test.once", Once(key="kill", seconds=60))
    wait_for(lambda: conn.llen("kill:pids") == 1, 30, "the second job to start")
    os.kill(int(conn.lindex("kill:pids", 0) or 0), signal.SIGKILL)
    wait_for(lambda: len(service.job_metrics()) == 2, 30, "both runs to be counted")
    by_function = {m.function: m for m in service.job_metrics()}
    assert by_function["test.block"].outcomes["canceled"] == 1
    assert by_function["test.once"].outcomes["failed"] == 1
    assert sum(sum(m.outcomes.values()) for m in by_function.values()) == 2
