"""Fixtures for the job tests: a private Redis per test, in-process and subprocess workers.

RQ's keys (``rq:*``) are global within a Redis DB, so each test gets a redis-server of
its own (``private_redis``) instead of a namespace on the shared one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

import perfkit._compat.rq
from perfkit import Perfkit, Settings
from perfkit.jobs import JobService, allow_jobs, make_worker
from perfkit.jobs.worker import ForkingJobWorker, JobWorker
from tests._servers import PrivateRedis
from tests.jobs import _processors  # noqa: F401  (registers the test processors)

# In-process workers run the test module's plain functions too, as `perfkit worker
# --import tests.jobs._processors` does.
allow_jobs("tests.jobs._processors")

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "admin-token-" + uuid.uuid4().hex
AUTH = {"authorization": f"Bearer {TOKEN}"}

StartWorker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def conn(private_redis: PrivateRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_redis.url)
    yield client
    client.close()


@pytest.fixture
def service(conn: redis.Redis) -> JobService:
    """A job service reporting on the tests' queue."""
    return JobService(conn, queues=("testq",))


@pytest.fixture(params=[True, False], ids=["rq-internals", "rq-public"])
def rq_internals(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """In-process workers use RQ 3's internals (perfkit._compat.rq), or only its public API."""
    monkeypatch.setattr(perfkit._compat.rq, "INTERNALS", request.param)
    return bool(request.param)


@pytest.fixture
def admin(conn: redis.Redis, private_redis: PrivateRedis) -> Iterator[httpx.Client]:
    """The admin API (WSGI, in-process) of a kit whose job service reports on testq;
    send ``AUTH`` headers."""
    settings = Settings(redis_url=private_redis.url, perfkit_admin_token=TOKEN)
    kit = Perfkit(jobs=JobService(conn, queues=("testq",)), settings=settings, fleet=False)
    transport = httpx.WSGITransport(app=kit.wsgi_admin())
    with httpx.Client(transport=transport, base_url="http://admin") as client:
        yield client


def run_burst(
    conn: redis.Redis, queues: list[str] | None = None, *, with_scheduler: bool = False
) -> JobWorker | ForkingJobWorker:
    """Run an in-process non-forking worker until its queues are empty; returns it."""
    worker = make_worker(conn, queues or ["testq"], heartbeat_interval=1, maintenance_interval=1)
    worker.work(burst=True, logging_level="WARNING", with_scheduler=with_scheduler)
    return worker


@pytest.fixture
def start_worker(private_redis: PrivateRedis) -> Iterator[StartWorker]:
    """Start ``perfkit worker`` subprocesses on the private Redis; stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        *arguments: str, queues: tuple[str, ...] = ("testq",), defaults: bool = False
    ) -> subprocess.Popen[bytes]:
        """``defaults``: the worker's default intervals (else 1 s heartbeat and maintenance)."""
        # The URL travels in the environment, as perfkit demo passes it.
        env = dict(os.environ, PYTHONPATH=str(ROOT), REDIS_URL=private_redis.url)
        command = [sys.executable, "-m", "perfkit.cli", "worker", *queues]
        command += ["--import", "tests.jobs._processors"]
        if not defaults:
            command += ["--heartbeat-interval", "1", "--maintenance-interval", "1"]
        command += ["--log-level", "WARNING", *arguments]
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``condition`` until it is truthy; returns when (monotonic). Fails after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
