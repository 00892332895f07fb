"""The limits' Redis calls for a runner on redis.asyncio: take, extend and free a job's slots.

A runner calls :func:`acquire` when it has taken a job from its queue (False: the job was
parked, take the next one), :func:`refresh` with each heartbeat, :func:`release` when the
job has ended whatever the outcome, and :func:`release_due` now and then (the wake-up pass).
A job without limits costs none of them a round trip. The sync twin is ``_gate.py``; what
needs no I/O is in :mod:`perfkit.jobs.limits`.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio
from rq.job import Job

from perfkit.jobs.limits import (
    Bucket,
    Call,
    acquire_call,
    admit_call,
    buckets_of,
    refresh_call,
    release_call,
    release_due_call,
)

__all__ = ["acquire", "admit", "refresh", "release", "release_due"]


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _run(connection: redis.asyncio.Redis, call: Call) -> Any:
    script, keys, args = call
    return await connection.register_script(script)(keys=keys, args=args)


async def admit(
    pipeline: redis.asyncio.client.Pipeline, job_id: str, queue_key: str, buckets: list[Bucket]
) -> None:
    """Queue on ``pipeline``, after the job's push on its queue: keep it there with a
    reservation in each bucket, or take it off and park it (a bucket is full or has jobs
    waiting)."""
    script, keys, args = admit_call(job_id, queue_key, buckets, _now_ms())
    # EVAL, not a registered script: redis-py checks a pipeline's scripts with SCRIPT EXISTS
    # before it runs them, a round trip more per enqueue. Redis caches the compiled script.
    await pipeline.eval(script, len(keys), *keys, *args)


async def acquire(connection: redis.asyncio.Redis, job: Job, lease: float) -> bool:
    """Take the job's slots (leased for ``lease`` seconds) and say True: run it; or park
    it on its first full bucket and say False: it is out of its queue until a slot frees."""
    buckets = buckets_of(job.meta)
    if not buckets:
        return True
    return bool(await _run(connection, acquire_call(job.id, buckets, _now_ms(), lease)))


async def refresh(connection: redis.asyncio.Redis, job: Job, lease: float) -> None:
    """Extend the running job's Concurrency leases by ``lease`` seconds from now."""
    call = refresh_call(job.id, buckets_of(job.meta), _now_ms(), lease)
    if call is not None:
        await _run(connection, call)


async def release(connection: redis.asyncio.Redis, job: Job) -> None:
    """Free the ended job's slots and hand them to the jobs parked on them."""
    buckets = buckets_of(job.meta)
    if buckets:
        await _run(connection, release_call(job.id, buckets, _now_ms()))


async def release_due(connection: redis.asyncio.Redis) -> float | None:
    """Put back in their queues the parked jobs whose bucket has room again (a Rate window
    moved on, a dead worker's lease expired); returns in how many seconds the next such
    moment is due (None: nothing waits)."""
    due = await _run(connection, release_due_call(_now_ms()))
    if due is None:
        return None
    return max(0.0, (float(due) - _now_ms()) / 1000)
