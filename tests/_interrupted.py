"""Test runs that tests/test_interrupt.py starts in a subprocess and interrupts.

Not collected by a normal run (the file name does not start with ``test_``); each test
writes what it started to ``$PERFKIT_INTERRUPT_REPORT`` (JSON) and then waits to be
interrupted.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import redis

from perfkit.jobs import JobService
from tests._servers import PrivateRedis, RestartablePostgres
from tests.jobs._processors import Block
from tests.jobs.conftest import StartWorker, run_burst
from tests.jobs.conftest import start_worker as start_worker  # the fixture, for this module

WAIT = 120.0


def _report(**started: object) -> None:
    path = Path(os.environ["PERFKIT_INTERRUPT_REPORT"])
    path.with_suffix(".tmp").write_text(json.dumps(started))
    path.with_suffix(".tmp").rename(path)


def _wait() -> None:
    time.sleep(WAIT)


def test_an_in_process_worker_ran(private_redis: PrivateRedis) -> None:
    """A burst worker in this process installs RQ's SIGTERM handler."""
    conn = redis.Redis.from_url(private_redis.url)
    run_burst(conn)
    conn.close()


def test_a_signal_reaches_an_in_process_worker(private_redis: PrivateRedis) -> None:
    """The signal comes while RQ's handlers are this process's (a job is running)."""
    conn = redis.Redis.from_url(private_redis.url)
    JobService(conn, queues=("testq",)).enqueue("test.block", Block(key="b", seconds=3))

    def report_once_running() -> None:
        while not conn.get("b:attempts"):
            time.sleep(0.01)
        _report()

    threading.Thread(target=report_once_running, daemon=True).start()
    run_burst(conn)
    conn.close()


def test_then_the_run_waits() -> None:
    _report()
    _wait()


def test_and_waits_again() -> None:
    _wait()


def test_with_servers_running(
    private_redis: PrivateRedis,
    private_postgres: RestartablePostgres,
    request: pytest.FixtureRequest,
) -> None:
    start: StartWorker = request.getfixturevalue("start_worker")
    worker = start()
    postmaster = (private_postgres.embedded.data_dir / "postmaster.pid").read_text().split()[0]
    assert private_redis._process is not None
    _report(
        redis=private_redis._process.pid,
        postgres=int(postmaster),
        worker=worker.pid,
    )
    _wait()
