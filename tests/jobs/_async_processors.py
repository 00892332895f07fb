"""Async (and cooperative) processors of the async-job and cancel tests, importable by
worker subprocesses (``--import tests.jobs._async_processors``)."""

from __future__ import annotations

import asyncio
import time

import msgspec
import redis
import rq

from perfkit.jobs import check_cancelled, processor, report_progress
from perfkit.jobs.limits import Concurrency


def _redis() -> redis.Redis:
    job = rq.get_current_job()
    if job is None:
        raise RuntimeError("test processors run inside RQ jobs only")
    return job.connection


class Nap(msgspec.Struct, kw_only=True):
    key: str
    seconds: float = 1.0


@processor("test.async_nap", queue="testq")
async def async_nap(payload: Nap) -> float:
    """Sleep ``seconds`` on the event loop, then push the end time on ``key``."""
    await asyncio.sleep(payload.seconds)
    _redis().rpush(payload.key, repr(time.time()))
    return payload.seconds


class Steps(msgspec.Struct, kw_only=True):
    key: str
    fail_times: int = 0
    hang_attempts: int = 0
    seconds: float = 60.0


@processor("test.async_steps", queue="testq")
async def async_steps(payload: Steps) -> int:
    """Count the attempt in ``key:attempts`` (and its pid in ``key:pids``); the first
    ``fail_times`` raise, the next ``hang_attempts`` sleep ``seconds``; then push the
    attempt on ``key:done``."""
    conn = _redis()
    attempt = int(conn.incr(f"{payload.key}:attempts"))
    conn.set(f"{payload.key}:started", repr(time.time()))
    try:
        if attempt <= payload.fail_times:
            raise RuntimeError(f"attempt {attempt} failed on purpose")
        if attempt <= payload.fail_times + payload.hang_attempts:
            await asyncio.sleep(payload.seconds)
    except asyncio.CancelledError:
        conn.set(f"{payload.key}:stopped", repr(time.time()))
        raise
    conn.rpush(f"{payload.key}:done", attempt)
    return attempt


class Loop(msgspec.Struct, kw_only=True):
    key: str
    seconds: float = 60.0
    check: bool = True


@processor("test.cooperative", queue="testq")
def cooperative(payload: Loop) -> None:
    """A sync job of small steps, calling check_cancelled() between them (if ``check``)."""
    conn = _redis()
    conn.set(f"{payload.key}:started", repr(time.time()))
    deadline = time.monotonic() + payload.seconds
    try:
        while time.monotonic() < deadline:
            if payload.check:
                check_cancelled()
            time.sleep(0.02)
    except BaseException:
        conn.set(f"{payload.key}:stopped", repr(time.time()))
        raise
    conn.rpush(f"{payload.key}:done", 1)


async def async_add(numbers: list[int]) -> int:
    """A plain (non-processor) async job function."""
    await asyncio.sleep(0)
    return sum(numbers)


class Gate(msgspec.Struct, kw_only=True):
    key: str
    tenant_id: str = "t"
    seconds: float = 60.0


@processor("test.async_progress", queue="testq")
async def async_progress(payload: Gate) -> None:
    """Report half done, then wait (up to ``seconds``) until ``key:go`` exists."""
    report_progress(0.5, "half way")
    conn = _redis()
    for _ in range(int(payload.seconds / 0.02)):  # a poll of the test's key, 50 a second
        if conn.exists(f"{payload.key}:go"):
            break
        await asyncio.sleep(0.02)
    conn.rpush(f"{payload.key}:done", 1)


@processor("test.async_one_per_tenant", queue="testq", limits=[Concurrency(1, key="{tenant_id}")])
async def async_one_per_tenant(payload: Gate) -> None:
    """At most one at once per tenant: note the start in ``key:started`` (a list), then
    sleep ``seconds``."""
    _redis().rpush(f"{payload.key}:started", repr(time.time()))
    await asyncio.sleep(payload.seconds)
