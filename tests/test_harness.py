"""The fixtures hand out real, working servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import psycopg
import pytest
import redis

from perfkit.embedded import EmbeddedPostgres, EmbeddedRedis, redis_answers
from tests._servers import PrivateRedis


def test_redis_fixture_is_a_real_server(redis_client: redis.Redis, namespace: str) -> None:
    redis_client.set(f"{namespace}:k", b"v")
    assert redis_client.get(f"{namespace}:k") == b"v"
    assert redis_client.connection_pool.connection_kwargs.get("db") != 0


def test_database_fixture_is_a_real_server_with_own_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None and schema[0].startswith("pktest_")
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_private_redis_can_be_killed_and_restarted(private_redis: PrivateRedis) -> None:
    assert redis_answers(private_redis.url)
    private_redis.kill()
    assert not redis_answers(private_redis.url, timeout=0.2)
    private_redis.start()
    assert redis_answers(private_redis.url)


def test_embedded_redis_starts_and_stops() -> None:
    server = EmbeddedRedis()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
    finally:
        server.stop()
    assert not redis_answers(server.url, timeout=0.2)


@pytest.mark.slow
def test_embedded_postgres_starts_and_stops() -> None:
    server = EmbeddedPostgres()
    try:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not server.data_dir.exists()


@pytest.mark.slow
def test_embedded_postgres_stops_though_a_killed_holder_is_still_listed(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # as root, embedded_postgres runs the server as its own user
    data_dir = tmp_path / "pgdata"
    EmbeddedPostgres(data_dir).stop()  # initialized, then stopped
    # A process that used the data directory and was killed without cleaning up.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (data_dir / ".handle_pids.json").write_text(json.dumps([gone.pid]))
    server = EmbeddedPostgres(data_dir)
    with psycopg.connect(server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    assert not (data_dir / "postmaster.pid").exists()  # stopped, not left running


def test_an_embedded_redis_interrupted_while_starting_is_not_left_running(
    tmp_path: Path,
) -> None:
    # A "server" that never answers, so that the interrupt lands in the wait for it.
    pid_file = tmp_path / "pid"
    binary = tmp_path / "silent-server"
    binary.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    binary.chmod(0o755)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # Python swallows what a finalizer raises (the wait loop drops redis-py clients,
        # whose parser has a __del__): a tick that lands in one waits for the next.
        caller = frame
        while caller is not None:
            if caller.f_code.co_name == "__del__":
                return
            caller = caller.f_back
        if pid_file.exists() and pid_file.read_text().strip():
            signal.setitimer(signal.ITIMER_REAL, 0)  # once, as one Ctrl-C
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    try:
        with pytest.raises(KeyboardInterrupt):
            EmbeddedRedis(binary=str(binary))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pid = int(pid_file.read_text())
    left_running = Path(f"/proc/{pid}").exists()  # killed and reaped, or still there
    if left_running:
        os.kill(pid, signal.SIGKILL)
    assert not left_running
