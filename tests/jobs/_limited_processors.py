"""Processors with limits, importable by worker subprocesses (``--import``).

Each run records ``<start> <end> <tenant> <job id>`` (times from Redis's clock, in µs) in
the list ``<key>:runs``, so that a test reads how many ran at once per tenant and when.
"""

from __future__ import annotations

import time

import msgspec
import redis
import rq

from perfkit.jobs import processor
from perfkit.jobs.limits import Concurrency, Rate


class Work(msgspec.Struct, kw_only=True):
    key: str
    tenant_id: str
    seconds: float = 0.0


def _clock(conn: redis.Redis) -> int:
    seconds, micros = conn.time()
    return int(seconds) * 1_000_000 + int(micros)


def _run(payload: Work) -> None:
    job = rq.get_current_job()
    if job is None:
        raise RuntimeError("test processors run inside RQ jobs only")
    conn = job.connection
    started = _clock(conn)
    conn.rpush(f"{payload.key}:started", f"{payload.tenant_id} {job.id}")
    if payload.seconds:
        time.sleep(payload.seconds)
    conn.rpush(f"{payload.key}:runs", f"{started} {_clock(conn)} {payload.tenant_id} {job.id}")


@processor("limits.two_per_tenant", queue="testq", limits=[Concurrency(2, key="{tenant_id}")])
def two_per_tenant(payload: Work) -> None:
    """At most two at once per tenant."""
    _run(payload)


@processor("limits.five_per_second", queue="testq", limits=[Rate(5, per=1.0, key="{tenant_id}")])
def five_per_second(payload: Work) -> None:
    """At most five starts per second per tenant."""
    _run(payload)


@processor("limits.unlimited", queue="testq")
def unlimited(payload: Work) -> None:
    """No limit of its own (limits given at enqueue)."""
    _run(payload)


def unlimited_plain(numbers: list[int]) -> int:
    """A plain (non-processor) job function."""
    return sum(numbers)


@processor("limits.fails_once", queue="testq", limits=[Concurrency(1, key="{tenant_id}")])
def fails_once(payload: Work) -> None:
    """Fail the first attempt; run after that."""
    job = rq.get_current_job()
    if job is None:
        raise RuntimeError("test processors run inside RQ jobs only")
    if int(job.connection.incr(f"{payload.key}:attempts")) == 1:
        raise RuntimeError("first attempt fails on purpose")
    _run(payload)
