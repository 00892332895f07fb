"""An interrupted test run (SIGTERM, Ctrl-C) stops at once and leaves no server behind.

Each test runs a small pytest session of tests/_interrupted.py in a subprocess, waits
until its tests report what they started, interrupts it and watches it stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Starting the session (imports, servers) takes a while on two busy cores; stopping must not.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def _interrupted_run(
    tmp_path: Path, sig: signal.Signals, *tests: str
) -> tuple[dict[str, int], str]:
    """Run ``tests`` of tests/_interrupted.py, send ``sig`` once they reported, and return
    their report and the session's output once it stopped."""
    report = tmp_path / "report.json"
    output = tmp_path / "output.txt"
    env = dict(os.environ, PERFKIT_INTERRUPT_REPORT=str(report))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    # Its own basetemp: a session on the default one makes /tmp/pytest-of-<user> 0700 again,
    # which embedded PostgreSQL's system user (as root) cannot then traverse.
    command += ["--basetemp", str(tmp_path / "inner")]
    command += [f"tests/_interrupted.py::{test}" for test in tests]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not report.exists():
                assert process.poll() is None, output.read_text()
                assert time.monotonic() < deadline, "the tests never reported"
                time.sleep(0.1)
            process.send_signal(sig)
            start = time.monotonic()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the run was still going {STOP_TIMEOUT} s after {sig.name}")
            print(f"stopped {time.monotonic() - start:.1f} s after {sig.name}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return json.loads(report.read_text()), output.read_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone too (it only waits for its parent to reap it).
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.slow
def test_sigterm_stops_a_run_after_an_in_process_worker_took_over_sigterm(
    tmp_path: Path,
) -> None:
    _, output = _interrupted_run(
        tmp_path,
        signal.SIGTERM,
        "test_an_in_process_worker_ran",
        "test_then_the_run_waits",
        "test_and_waits_again",
    )
    assert "1 passed" in output, output


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_that_an_in_process_worker_took_stops_the_run_after_that_test(
    tmp_path: Path, sig: signal.Signals
) -> None:
    _, output = _interrupted_run(
        tmp_path, sig, "test_a_signal_reaches_an_in_process_worker", "test_and_waits_again"
    )
    assert "a signal reached an in-process RQ worker" in output, output


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_run_leaves_no_server_or_worker_behind(
    tmp_path: Path, sig: signal.Signals
) -> None:
    started, output = _interrupted_run(tmp_path, sig, "test_with_servers_running")
    assert set(started) == {"redis", "postgres", "worker"}
    deadline = time.monotonic() + 10
    while (left := {name: pid for name, pid in started.items() if _alive(pid)}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not left, f"left running: {left}\n{output}"
