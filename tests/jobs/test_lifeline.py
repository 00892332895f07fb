"""At most one execution: a forked horse (and the scheduler) die with their worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import redis

from perfkit.jobs import JobService
from tests.jobs._processors import Once
from tests.jobs.conftest import StartWorker, wait_for


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_sigkill_of_a_forking_worker_kills_its_horse_and_the_job_completes_once(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, retry_attempts=2)
    # The first attempt takes 6 s: long enough for a surviving horse to finish it after
    # the retry started, which is the double run this guards against.
    service.enqueue("test.once", Once(key="pay", seconds=6))
    doomed = start_worker("--fork")
    wait_for(lambda: conn.llen("pay:pids") == 1, 20, "the horse to start the job")
    first_started = time.monotonic()
    horse = int(conn.lindex("pay:pids", 0) or 0)
    children = [child.pid for child in psutil.Process(doomed.pid).children(recursive=True)]
    assert horse in children and horse != doomed.pid
    os.kill(doomed.pid, signal.SIGKILL)  # the parent only, as the OOM killer would
    doomed.wait(5)
    # The horse and the scheduler process go with it.
    wait_for(lambda: all(_gone(pid) for pid in children), 5, "the worker's children to die")
    start_worker("--fork")
    wait_for(lambda: conn.get("pay:completed") == b"1", 30, "the retry to complete")
    # Past the moment the first attempt would have completed had its horse survived.
    wait_for(lambda: time.monotonic() > first_started + 6 + 2, 20, "the first attempt's end")
    assert conn.get("pay:completed") == b"1"
    assert conn.get("pay:attempts") == b"2"


_ORPHAN = textwrap.dedent(
    """
    import os, sys, time
    from perfkit.jobs.lifeline import die_with_parent
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        mechanism = die_with_parent(parent, use_prctl=sys.argv[1] == "prctl")
        print(os.getpid(), mechanism, flush=True)
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("mechanism", ["prctl", "watch"])
def test_a_child_dies_with_its_parent(mechanism: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, mechanism], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        pid, used = process.stdout.readline().split()
        assert used == mechanism
        assert not _gone(int(pid))
        process.kill()  # SIGKILL: the parent gets no chance to clean up
        process.wait(5)
        wait_for(lambda: _gone(int(pid)), 5, f"the child to die ({mechanism})")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
