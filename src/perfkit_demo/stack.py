"""The servers and processes a demo or bench run needs, and what it must undo.

:class:`Stack` takes PostgreSQL and Redis from the command line or the environment, or
starts embedded ones (and says which); it loads the marketplace data when the database
lacks it, starts worker and server subprocesses, and stops everything it started — and
nothing else — in reverse order on :meth:`Stack.close`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from perfkit._errors import ConfigError
from perfkit.embedded import EmbeddedPostgres, EmbeddedRedis, postgres_answers, redis_answers
from perfkit.settings import check_database_url, check_redis_url, redacted_url

__all__ = ["Stack", "examples_path", "import_marketplace", "listen", "marketplace_module"]

_ROOT = Path(__file__).resolve().parents[2]


def examples_path() -> Path:
    """The directory holding the ``marketplace`` package: the source checkout's
    ``examples`` when perfkit runs from one, else the copy installed with the wheel."""
    for found in (_ROOT / "examples", Path(__file__).resolve().parent / "_examples"):
        if (found / "marketplace" / "__init__.py").is_file():
            return found
    raise ConfigError(
        "perfkit demo and perfkit bench need examples/marketplace, which is neither in a "
        f"source checkout at {_ROOT} nor installed with perfkit: reinstall perfkit"
    )


def import_marketplace() -> None:
    """Make ``import marketplace`` work in this process."""
    path = str(examples_path())
    if path not in sys.path:
        sys.path.insert(0, path)


def marketplace_module(name: str) -> Any:
    """The module ``marketplace.<name>`` of the example app (untyped for perfkit's mypy:
    the example lives outside the package)."""
    import_marketplace()
    return importlib.import_module(f"marketplace.{name}")


def _not_answering(server: str, url: str, source: str, instead: str) -> ConfigError:
    return ConfigError(
        f"no {server} answers at {redacted_url(url)} ({source}): start it, fix the URL, "
        f"or unset it to use {instead}"
    )


def _said(server: str, given: tuple[str, str] | None) -> str | None:
    """The given server's URL, once its line says where it came from."""
    if given is None:
        return None
    url, source = given
    say(f"{server}: {redacted_url(url)} ({source})")
    return url


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the app's server (``ConfigError`` naming the
    address if it cannot be had), taken before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror} (--host, --port)"
        ) from exc
    return sock


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps the demo data between runs."""
    return Path(tempfile.gettempdir()) / f"perfkit-demo-{os.getuid()}"


def say(message: str) -> None:
    """A line on stdout, at once (the tests read it from a pipe)."""
    print(message, flush=True)


# Redis URLs a plain client can PING (not redis+sentinel:// or redis+cluster://).
_PLAIN = ("redis://", "rediss://", "unix://")


def _given(option: str | None, flag: str, variable: str) -> tuple[str, str] | None:
    """The URL of the command line's ``flag``, else of the environment's ``variable``, and
    which of the two it is (None: neither; the run starts an embedded server)."""
    if option:
        return option, flag
    value = os.environ.get(variable, "").strip()
    return (value, variable) if value else None


class Stack:
    """PostgreSQL, Redis and subprocesses for one run; a context manager.

    ``database_url`` / ``redis_url`` (``--database-url`` / ``--redis-url``; without one,
    DATABASE_URL / REDIS_URL): use those servers, refused at once if they do not answer.
    Without either, start embedded ones, PostgreSQL on ``data_dir`` so its data survives
    the run. Each server's line says where it came from.
    """

    def __init__(
        self,
        *,
        database_url: str | None,
        redis_url: str | None,
        data_dir: Path | None = None,
    ) -> None:
        database = _given(database_url, "--database-url", "DATABASE_URL")
        redis = _given(redis_url, "--redis-url", "REDIS_URL")
        if redis is not None:
            check_redis_url(*redis)
        if database is not None:
            check_database_url(*database)
        # Checked before anything starts: on a Redis that does not answer, the app would
        # run on its memory fallback and the worker would exit.
        if redis is not None and redis[0].startswith(_PLAIN) and not redis_answers(redis[0]):
            raise _not_answering("Redis", *redis, "an embedded Valkey")
        if database is not None and not postgres_answers(database[0]):
            raise _not_answering("PostgreSQL", *database, "an embedded PostgreSQL")
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self.data_dir = data_dir or default_data_dir()
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            self.database_url = _said("PostgreSQL", database) or self._embedded_postgres()
            self.redis_url = _said("Redis", redis) or self._embedded_redis()
        except BaseException:
            self.close()
            raise

    def _embedded_postgres(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o755)  # embedded_postgres runs the server as its own user as root
        server = EmbeddedPostgres(self.data_dir / "pgdata")
        self._undo.append(("embedded PostgreSQL", server.stop))
        say(f"PostgreSQL: embedded, data in {server.data_dir} (pid {self.postgres_pid()})")
        return server.url

    def _embedded_redis(self) -> str:
        server = EmbeddedRedis()
        self._undo.append(("embedded Valkey", server.stop))
        say(f"Redis: embedded Valkey at {server.url}")
        return server.url

    def postgres_pid(self) -> int | None:
        """The embedded PostgreSQL's postmaster pid (None when not embedded or stopped)."""
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment of a worker or server subprocess of this run."""
        path = os.pathsep.join(filter(None, [str(examples_path()), os.environ.get("PYTHONPATH")]))
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "PYTHONPATH": path,
            **extra,
        }

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``command`` in a session of its own (a terminal's Ctrl-C reaches only this
        process, which stops its children in order); stopped by :meth:`close`."""
        process = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603 (our own argv)
        self.processes.append(process)
        self._undo.append((name, lambda: stop_process(process)))
        return process

    def worker(self, **env: str) -> subprocess.Popen[bytes]:
        """Start ``perfkit worker --import marketplace.jobs`` on this run's Redis.

        The worker reads the Redis URL from REDIS_URL in its environment: a URL on its
        command line (which may hold a password) would show in ``ps`` to every user."""
        command = [sys.executable, "-m", "perfkit.cli", "worker", "--import", "marketplace.jobs"]
        # --quiet: this run said which Redis it uses; the worker would say "(REDIS_URL)".
        command += ["--log-level", "WARNING", "--quiet"]
        return self.spawn("worker", command, self.environment(**env))

    def close(self) -> None:
        """Stop what this run started, newest first; report but survive a failing step."""
        while self._undo:
            name, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:
                print(f"warning: stopping {name} failed: {exc}", file=sys.stderr)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM (``kill``, ``timeout``, a service manager) stops the run as Ctrl-C
    does, raised as ``KeyboardInterrupt`` where it lands, so whatever was started is stopped
    in order. (Its default action ends the process at once, leaving the embedded servers and
    the worker running; uvicorn re-raises it after its own shutdown.)"""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM ``process`` (a warm shutdown for workers and servers), SIGKILL after
    ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url`` answers 200 (ConfigError after ``timeout`` or if ``process`` dies)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise ConfigError(f"the server exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise ConfigError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def ensure_data(
    database_url: str, sf: float | None, seed: int, *, progress: bool = True
) -> dict[str, str]:
    """Load the marketplace when the database has none (or, with ``sf``, another scale);
    returns the load's metadata."""
    datagen = marketplace_module("datagen")
    meta: dict[str, str] | None = datagen.loaded_meta(database_url)
    wanted = 0.1 if sf is None else sf
    if meta is not None and (sf is None or (float(meta["sf"]) == sf and int(meta["seed"]) == seed)):
        say(f"Data: SF {float(meta['sf']):g} already loaded ({meta['loaded_at']})")
        return meta
    if meta is not None:
        say(f"Data: SF {float(meta['sf']):g} seed {meta['seed']} loaded; reloading SF {wanted:g}")
    datagen.load(database_url, sf=wanted, seed=seed, progress=progress)
    found: dict[str, str] | None = datagen.loaded_meta(database_url)
    if found is None:
        raise ConfigError("the data load did not complete")
    return found
