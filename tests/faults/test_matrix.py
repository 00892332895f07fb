"""The fault matrix: for each way a Redis server fails, a mixed workload in three processes
(sync with the L1 near cache, sync without, async with) on a private server, then the
invariants:

- no exception reaches a caller;
- no stale read beyond the fault's documented bound (docs/reliability.md), nor, for a change
  its process made in fallback, later than ``REPLAY_BOUND`` after that process was back on
  Redis (on a loaded machine a command can time out after the fault too: an outage of that
  process, whose changes wait for its own return);
- every process is back on Redis within 5 s of the fault ending, and of any outage of its own;
- no key without a TTL is left in the namespace.

The table it prints (``pytest tests/faults -s``) is the one in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests._servers import PrivateRedis, PrivateSentinel
from tests.faults import _workload
from tests.faults._proxy import ResettingProxy

pytestmark = pytest.mark.slow

MODES = ("sync+l1", "sync", "async+l1")  # one process each
PROCESSES = len(MODES)
NAMESPACE = "faults"
BACK_WITHIN = 5.0
# Pending changes reach Redis this long after their process is back on it (and no earlier
# than the fault ends: a process is back within BACK_WITHIN of that, or of an outage of its
# own that began later).
REPLAY_BOUND = 2.0
# Across processes, an L1 entry lives until Redis's invalidation push arrives: milliseconds
# (docs/cache.md), more on a loaded machine. Always allowed, whatever the fault.
L1_PUSH_BOUND = 1.0


@dataclass
class Servers:
    """What a fault acts on; ``url`` is what the workload connects to."""

    url: str
    redis: PrivateRedis
    proxy: ResettingProxy | None = None
    replica: PrivateRedis | None = None
    sentinel: PrivateSentinel | None = None

    def raw(self) -> redis.Redis:
        """A client of the current primary."""
        if self.sentinel is not None:
            sentinel = redis.Redis(port=self.sentinel.port)
            # The raw command: redis-py 6.4-7.x's sentinel_get_master_addr_by_name passes
            # once=True, which only a Sentinel-aware client's parser takes.
            host, port = sentinel.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.sentinel.name
            )
            sentinel.close()
            return redis.Redis(host=host, port=int(port))
        return redis.Redis(port=self.redis.port)


@dataclass
class Fault:
    name: str
    inject: Callable[[Servers], Any]
    recover: Callable[[Servers], None]
    hold: float  # how long the fault lasts (the experiment's parameter, not a wait)
    # "none": never a stale read; "recovery": none later than REPLAY_BOUND after the fault
    # ends; "ttl": none later than the entries' TTL after it (changes lost by a failover).
    bound: str
    setup: str = "plain"


def _pid(servers: Servers) -> int:
    process = servers.redis._process
    assert process is not None
    return process.pid


def _restart(servers: Servers) -> None:
    servers.redis.start()


def _cont(servers: Servers) -> None:
    os.kill(_pid(servers), signal.SIGCONT)


def _config(**values: object) -> Callable[[Servers], None]:
    def apply(servers: Servers) -> None:
        client = servers.raw()
        for name, value in values.items():
            client.config_set(name.replace("_", "-"), value)  # type: ignore[arg-type]
        client.close()

    return apply


def _command(*args: object) -> Callable[[Servers], None]:
    def apply(servers: Servers) -> None:
        client = servers.raw()
        client.execute_command(*args)
        client.close()

    return apply


class _Garbage:
    """Another client writing bytes perfkit did not write over the workload's keys."""

    def __init__(self) -> None:
        self.stop = False

    def inject(self, servers: Servers) -> None:
        import threading

        def write() -> None:
            client = servers.raw()
            n = 0
            while not self.stop:
                owner, i = n % PROCESSES, n % _workload.KEYS_PER_ROLE
                for role in _workload.ROLES:
                    name = _workload.key_name(owner, role, i)
                    # Random: a foreign client does not bring back a generation by chance.
                    client.set(f"{NAMESPACE}:{name}", b"\xff" + os.urandom(8), ex=30)
                    tag = f"{NAMESPACE}:__perfkit__:tag:item:{name}"
                    client.set(tag, b"\xfe" + os.urandom(8), ex=30)
                client.set(f"{NAMESPACE}:".encode() + bytes([0xC0 + n % 32, n % 256]), b"x", ex=30)
                n += 1
                time.sleep(0.002)
            client.close()

        self.thread = threading.Thread(target=write, daemon=True)
        self.thread.start()

    def recover(self, servers: Servers) -> None:
        self.stop = True
        self.thread.join()


_garbage = _Garbage()

FAULTS = [
    Fault("SIGKILL + restart", lambda s: s.redis.kill(), _restart, 2.0, "recovery"),
    Fault("SIGSTOP 5 s", lambda s: os.kill(_pid(s), signal.SIGSTOP), _cont, 5.0, "recovery"),
    Fault("CLIENT PAUSE 3 s", _command("CLIENT", "PAUSE", 3000, "ALL"), lambda s: None, 3.0,
          "recovery"),
    Fault("maxmemory + noeviction", _config(maxmemory_policy="noeviction", maxmemory=1),
          _config(maxmemory=0), 3.0, "none"),
    Fault("READONLY (replica of a dead primary)", _command("REPLICAOF", "127.0.0.1", 1),
          _command("REPLICAOF", "NO", "ONE"), 3.0, "recovery"),
    Fault("connections reset (TCP proxy)", lambda s: _reset(s, True), lambda s: _reset(s, False),
          2.0, "recovery", setup="proxy"),
    Fault("garbage bytes from another client", _garbage.inject, _garbage.recover, 3.0, "none"),
    Fault("Sentinel failover (primary killed)", lambda s: s.redis.kill(), lambda s: None, 0.0,
          "ttl", setup="sentinel"),
]  # fmt: skip


def _reset(servers: Servers, refusing: bool) -> None:
    assert servers.proxy is not None
    servers.proxy.refusing = refusing
    if refusing:
        servers.proxy.reset()


@contextlib.contextmanager
def _servers(setup: str) -> Iterator[Servers]:
    primary = PrivateRedis()
    closers: list[Any] = [primary]
    try:
        if setup == "proxy":
            proxy = ResettingProxy(primary.port)
            closers.append(proxy)
            yield Servers(proxy.url, primary, proxy=proxy)
        elif setup == "sentinel":
            replica = PrivateRedis(["--replicaof", "127.0.0.1", str(primary.port)])
            sentinel = PrivateSentinel(primary)
            closers += [replica, sentinel]
            sentinel.wait_for_replicas(1)
            yield Servers(sentinel.url, primary, replica=replica, sentinel=sentinel)
        else:
            yield Servers(primary.url, primary)
    finally:
        for closer in reversed(closers):
            closer.close()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def _wait_recovered(fault: Fault, servers: Servers) -> None:
    """The fault is over when the servers say so (the sentinel promoted the replica)."""
    if fault.setup == "sentinel":
        assert servers.replica is not None

        def promoted() -> bool:
            try:
                client = servers.raw()
                port = client.connection_pool.connection_kwargs["port"]
                client.close()
            except redis.RedisError:
                return False
            return bool(port == servers.replica.port)  # type: ignore[union-attr]

        _wait(promoted, 30, "sentinel failover")


ROWS: list[dict[str, Any]] = []


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.split(" (")[0] for f in FAULTS])
def test_fault(fault: Fault) -> None:
    ctx = multiprocessing.get_context("spawn")
    slots = _workload.slots(PROCESSES)
    shared = _workload.Shared(
        versions=ctx.Array("q", slots, lock=False),  # type: ignore[arg-type]
        done=ctx.Array("q", slots, lock=False),  # type: ignore[arg-type]
        done_at=ctx.Array("d", slots * _workload.HISTORY, lock=False),  # type: ignore[arg-type]
        done_pending=ctx.Array("b", slots * _workload.HISTORY, lock=False),  # type: ignore[arg-type]
        recovered_at=ctx.Value("d", 0.0),  # type: ignore[arg-type]
        back_at=ctx.Array("d", PROCESSES, lock=False),  # type: ignore[arg-type]
        stop=ctx.Event(),
    )
    out = ctx.Queue()
    with _servers(fault.setup) as servers:
        workers = [
            ctx.Process(
                target=_workload.run,
                args=(index, PROCESSES, servers.url, NAMESPACE, mode, shared, out),
            )
            for index, mode in enumerate(MODES)
        ]
        for worker in workers:
            worker.start()
        try:
            # Warm: every process's writers have gone round their keys.
            _wait(lambda: min(shared.done) > 0, 60, "workload start")
            injected = time.monotonic()
            fault.inject(servers)
            time.sleep(fault.hold)  # the fault's duration
            fault.recover(servers)
            _wait_recovered(fault, servers)
            shared.recovered_at.value = recovered = time.monotonic()
            _wait(lambda: min(shared.back_at) > 0, 30, "back on Redis")
            # Keep the workload going past the bound, then stop it.
            tail = _workload.TTL if fault.bound == "ttl" else REPLAY_BOUND
            end = time.monotonic() + tail + 1.0
            _wait(lambda: time.monotonic() > end, tail + 5, "tail")
        finally:
            shared.stop.set()
            results = [out.get(timeout=60) for _ in workers]
            for worker in workers:
                worker.join(30)
        # What is left in the namespace once every entry could have expired.
        client = servers.raw()
        permanent = [
            key
            for key in client.scan_iter(match=f"{NAMESPACE}:*".encode())
            if client.pttl(key) == -1
        ]
        client.close()

    limit = {
        "none": injected,
        "recovery": recovered + REPLAY_BOUND,
        "ttl": recovered + _workload.TTL + REPLAY_BOUND,
    }[fault.bound]
    results.sort(key=lambda result: int(result["index"]))
    stale = [(item, result["mode"]) for result in results for item in result["stale"]]
    # Stale reads the near cache's push delay explains are within bound at any time.
    counted = [
        item for item, mode in stale if not (mode.endswith("+l1") and item[1] <= L1_PUSH_BOUND)
    ]
    # Each process's outages: the fault's, and any other (a timeout on a loaded machine).
    outages = [result["outages"] for result in results]

    def allowed_until(start: float, age: float, writer: int, pending: bool, memory: bool) -> float:
        """The latest a stale read may begin: the fault's bound; for a change its process
        made in fallback, also up to REPLAY_BOUND after that process was back on Redis; for
        a read in the reader's own outage, whenever its memory entry is within
        CACHE_FALLBACK_TTL (no older than that)."""
        fault_limit = -float("inf") if fault.bound == "none" else limit
        if memory and age <= _workload.FALLBACK_TTL:
            return float("inf")
        if not pending:
            return fault_limit
        returned = start - age
        ends = [end for begin, end in outages[writer] if end is not None and end >= returned]
        if not ends:  # never back: the outage assertion below fails too
            return fault_limit
        return max(fault_limit, float(min(ends)) + REPLAY_BOUND)

    beyond = [
        (item[0], item[1], MODES[item[2]], item[3], item[4])
        for item in counted
        if item[0] > allowed_until(*item)
    ]
    # How long each outage lasted past the fault's end (or its own start, if later).
    outage_lengths = [
        [None if end is None else end - max(begin, recovered) for begin, end in process]
        for process in outages
    ]
    exceptions: dict[str, int] = {}
    for result in results:
        for name, count in result["exceptions"].items():
            exceptions[name] = exceptions.get(name, 0) + count
    back = [result["back"] for result in results]
    row = {
        "fault": fault.name,
        "ops": sum(result["ops"] for result in results),
        "exceptions": sum(exceptions.values()),
        "stale": [sum(1 for _, m in stale if m == mode) for mode in MODES],
        "beyond": len(beyond),
        "max_age": max((item[1] for item, _ in stale), default=0.0),
        # How long after the fault ended the last stale read began (the replay's bound).
        "last_after": max((item[0] - recovered for item in counted), default=None),
        "back": back,
        "permanent": len(permanent),
    }
    ROWS.append(row)
    tracebacks = [result["traceback"] for result in results if result["traceback"]]
    assert not exceptions, (exceptions, tracebacks[:1])
    # (read start, age, writer's mode, change pending in the writer?, reader in fallback?)
    assert not beyond, (fault.bound, recovered, beyond[:5], outages)
    assert all(b is not None and b <= BACK_WITHIN for b in back), back
    assert all(
        length is not None and length <= BACK_WITHIN
        for process in outage_lengths
        for length in process
    ), (recovered, outages)
    assert not permanent, permanent[:10]


def table(rows: list[dict[str, Any]]) -> str:
    """The matrix as a Markdown table."""
    lines = [
        f"| fault | calls | exceptions | stale reads ({' / '.join(MODES)}) | beyond the bound "
        "| oldest stale read | last stale read after the fault (L1 push delay aside) "
        f"| back on Redis ({' / '.join(MODES)}) | keys without TTL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        back = " / ".join("-" if b is None else f"{b:.2f} s" for b in row["back"])
        after = row["last_after"]
        last = "none" if after is None else "during" if after <= 0 else f"{after:.2f} s"
        lines.append(
            f"| {row['fault']} | {row['ops']} | {row['exceptions']} "
            f"| {' / '.join(map(str, row['stale']))} | {row['beyond']} "
            f"| {row['max_age']:.2f} s | {last} | {back} "
            f"| {row['permanent']} |"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def print_matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if ROWS:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print("\n\nRedis fault matrix (docs/reliability.md)\n" + table(ROWS) + "\n")
