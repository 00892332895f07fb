"""Processors the job tests run, importable by worker subprocesses (``--import``)."""

from __future__ import annotations

import builtins
import os
import time

import msgspec
import redis
import rq

from perfkit.jobs import processor, report_progress


def _redis() -> redis.Redis:
    job = rq.get_current_job()
    if job is None:
        raise RuntimeError("test processors run inside RQ jobs only")
    return job.connection


class Mark(msgspec.Struct, kw_only=True):
    key: str
    tag: str
    count: int = 0


@processor("test.record", queue="testq")
def record(payload: Mark) -> str:
    """Append ``tag`` to the list ``key``: the order jobs ran in."""
    _redis().rpush(payload.key, payload.tag)
    return payload.tag


class Flaky(msgspec.Struct, kw_only=True):
    key: str
    fail_times: int = 1_000_000


@processor("test.flaky", queue="testq")
def flaky(payload: Flaky) -> int:
    """Record the attempt's time in ``key``; fail the first ``fail_times`` attempts."""
    conn = _redis()
    attempt = conn.rpush(payload.key, repr(time.time()))
    if attempt <= payload.fail_times:
        raise RuntimeError(f"attempt {attempt} failed on purpose")
    return attempt


class Block(msgspec.Struct, kw_only=True):
    key: str
    block_attempts: int = 1
    seconds: float = 60.0


@processor("test.block", queue="testq")
def block(payload: Block) -> int:
    """Count the attempt in ``key:attempts``; the first ``block_attempts`` hang."""
    conn = _redis()
    attempt = int(conn.incr(f"{payload.key}:attempts"))
    if attempt <= payload.block_attempts:
        time.sleep(payload.seconds)
    conn.rpush(f"{payload.key}:done", attempt)
    return attempt


class Hold(msgspec.Struct, kw_only=True):
    key: str


@processor("test.hold", queue="testq")
def hold(payload: Hold) -> None:
    """Mark ``key:held`` and wait until something is pushed on ``key:release``."""
    conn = _redis()
    conn.set(f"{payload.key}:held", 1)
    conn.blpop([f"{payload.key}:release"], timeout=30)


def plain_add(numbers: list[int]) -> int:
    """A plain (non-processor) job function."""
    return sum(numbers)


class Once(msgspec.Struct, kw_only=True):
    key: str
    seconds: float = 6.0


@processor("test.once", queue="testq")
def once(payload: Once) -> int:
    """Count attempts and completions; the first attempt takes ``seconds``.

    ``key:pids`` lists the process of each attempt (a forked horse's pid)."""
    conn = _redis()
    attempt = int(conn.incr(f"{payload.key}:attempts"))
    conn.rpush(f"{payload.key}:pids", os.getpid())
    if attempt == 1:
        time.sleep(payload.seconds)
    return int(conn.incr(f"{payload.key}:completed"))


class Picky(msgspec.Struct, kw_only=True):
    key: str
    error: str


@processor("test.picky", queue="testq", no_retry_on=LookupError)
def picky(payload: Picky) -> None:
    """Count the attempt in ``key``, then raise ``error`` (a builtin exception's name)."""
    _redis().incr(payload.key)
    raise getattr(builtins, payload.error)(f"{payload.error} on purpose")


class Tick(msgspec.Struct, kw_only=True):
    key: str


@processor("test.tick", queue="testq")
def tick(payload: Tick) -> None:
    """Append the running job's id to ``key``."""
    job = rq.get_current_job()
    _redis().rpush(payload.key, job.id if job else "?")


class Progress(msgspec.Struct, kw_only=True):
    key: str


@processor("test.progress", queue="testq")
def progress(payload: Progress) -> None:
    """Report half done, mark ``key:held``, wait for ``key:release``, report done."""
    conn = _redis()
    report_progress(0.5, "half way")
    conn.set(f"{payload.key}:held", 1)
    conn.blpop([f"{payload.key}:release"], timeout=30)
    report_progress(1.0, "done")
