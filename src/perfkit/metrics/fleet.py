"""The fleet view: the numbers of every app process (workers, hosts) merged into one,
whichever process answers.

Each process runs a :class:`Fleet` publisher (a daemon thread :meth:`Fleet.start` starts;
:class:`~perfkit.Perfkit` starts it with the kit). Every ``interval`` seconds it writes its
:class:`ProcessState` — the registry's metrics, the last hour of trend buckets, its
slowest requests and its top statements — as one msgpack value into the hash
``<namespace>:__perfkit__:fleet`` (field = the process) and refreshes the liveness key
``<namespace>:__perfkit__:fleet:alive:<process>`` with a ``ttl`` (3 intervals).

A read (:meth:`Fleet.read`) costs two round trips whatever the number of processes
(HGETALL, then MGET of the liveness keys) and merges O(processes) states: counters and
histograms are summed, percentiles come from the summed histograms, gauges combine by
their declared mode, trends per minute, statements by fingerprint id. The answering
process puts its own live numbers in place of what it last published, so the view is at
most ``interval`` old for the others and current for itself.

A process whose liveness key expired (it exited, or was killed) leaves the live list at
once, and its totals stay: its counters, histograms, trends and statements (the gauges of
the dead make no sense). Its state is kept as it is for ``retire_after`` seconds (5
minutes) — so a process that only stalled, and publishes again, replaces its own numbers
instead of being counted twice — and then folded into the ``retired`` field, in a
WATCH/MULTI transaction so that two readers cannot fold it twice. The hash therefore holds
the live processes, those gone in the last minutes, and one more. The hash, the liveness
keys and the fold are :mod:`perfkit.metrics._store`'s, shared with the multi-process
exposition (:mod:`perfkit.metrics.aggregate`).

The fleet merges statement statistics, so this module imports :mod:`perfkit.queries`
(and psycopg); ``import perfkit.metrics`` does not import it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import structlog

from perfkit._errors import ConfigError
from perfkit.metrics._store import (
    RETIRED,
    Entries,
    ProcessName,
    ProcessStore,
    Publisher,
    SkippedEntries,
)
from perfkit.metrics.monitor import PerformanceMonitor
from perfkit.metrics.requests import RequestSummary, SlowRequest, summarize
from perfkit.metrics.snapshot import MetricSnapshot, ProcessSnapshot, merge
from perfkit.metrics.system import process_start_time, resident_memory
from perfkit.metrics.trends import TrendBucket, TrendPoint, merge_buckets, merge_trends
from perfkit.queries._merge import (
    QueryExport,
    merge_query_exports,
    query_snapshot,
)
from perfkit.queries._nplusone import NPlusOne, merge_n_plus_one
from perfkit.queries._stats import QueryStatsSnapshot

__all__ = ["Fleet", "FleetProcess", "FleetView", "ProcessState"]

# What one process publishes is bounded: this many statements (by total time), the last
# hour of trend buckets and its slowest requests.
TOP_STATEMENTS = 100
TREND_BUCKETS = 60
SLOWEST = 10

_log = structlog.get_logger("perfkit.metrics")


class FleetProcess(msgspec.Struct, frozen=True, kw_only=True):
    """One live process of the fleet: where it runs, since when, its load and memory.

    ``published`` is when these numbers were taken (unix time); ``requests`` are the
    requests it finished since it started.
    """

    process: str
    host: str
    pid: int
    started: float
    uptime_s: float
    requests: int
    in_flight: int
    rss_bytes: int
    published: float


class ProcessState(msgspec.Struct, array_like=True, frozen=True):
    """Everything one process publishes (also the folded totals of retired processes)."""

    info: FleetProcess
    metrics: list[MetricSnapshot]
    trends: list[TrendBucket]
    slowest: list[SlowRequest]
    queries: QueryExport | None = None


_decoder = msgspec.msgpack.Decoder(ProcessState)


class FleetView:
    """The merged numbers of the live processes plus the retired totals.

    ``scope`` is ``"fleet"`` when the view is the fleet's: this process publishes, or
    other processes' numbers are in it; ``"process"`` when it holds only this process's
    numbers (no Redis, Redis away, or a process neither publishing nor seeing others).
    """

    def __init__(
        self,
        monitor: PerformanceMonitor,
        live: list[ProcessState],
        retired: ProcessState | None,
        *,
        scope: Literal["fleet", "process"],
    ) -> None:
        self.monitor = monitor
        self.live = live
        self.retired = retired
        self.scope = scope
        self._all = [*live, *([retired] if retired is not None else [])]
        self._metrics: list[MetricSnapshot] | None = None

    @property
    def processes(self) -> list[FleetProcess]:
        """The live processes, oldest first."""
        return sorted((state.info for state in self.live), key=lambda p: p.started)

    @property
    def metrics(self) -> list[MetricSnapshot]:
        """Every metric merged (see :func:`perfkit.metrics.snapshot.merge`)."""
        if self._metrics is None:
            self._metrics = merge(
                ProcessSnapshot(s.info.process, s.info.published, s.metrics) for s in self._all
            )
        return self._metrics

    def requests(self) -> RequestSummary:
        """The request totals of the fleet (p95 from the merged duration histogram)."""
        return summarize(self.metrics, in_flight=sum(s.info.in_flight for s in self.live))

    def slowest(self, limit: int = SLOWEST) -> list[SlowRequest]:
        """The slowest recent slow requests of the live processes, slowest first."""
        found = [request for state in self.live for request in state.slowest]
        return sorted(found, key=lambda r: r.duration_ms, reverse=True)[:limit]

    def trend_points(self, *, last: int | None = None) -> list[TrendPoint]:
        """The trends of the fleet, merged per bucket, oldest first."""
        trends = self.monitor.trends
        return merge_trends(
            [state.trends for state in self._all],
            trends.bounds,
            trends.bucket_seconds,
            history=trends.history,
            last=last,
        )

    def queries(self, top: int) -> QueryStatsSnapshot | None:
        """The statement statistics of the fleet, merged by fingerprint; ``None`` when no
        process has a pool."""
        exports = [state.queries for state in self._all if state.queries is not None]
        if not exports:
            return None
        return query_snapshot(merge_query_exports(exports, top))

    def n_plus_one(self, top: int = 20) -> list[NPlusOne]:
        """The fleet's N+1 findings, merged by route and fingerprint, the ``top`` with
        most statements."""
        exports = [state.queries.n_plus_one for state in self._all if state.queries is not None]
        return merge_n_plus_one(exports, top)


class Fleet:
    """Publishes this process's state and reads the fleet's (see the module doc).

    ``client`` is a sync ``redis.Redis`` (``None``: no fleet, every view is this process's
    own). ``queries`` returns this process's statement export (the kit passes its pool's).
    Start it in each worker after the fork: a preloading master (gunicorn ``--preload``)
    must not start it before forking (see docs/deployment.md).
    """

    def __init__(
        self,
        monitor: PerformanceMonitor,
        client: Any,
        *,
        namespace: str,
        interval: float = 2.0,
        ttl: float | None = None,
        queries: Callable[[], QueryExport] | None = None,
        retire_after: float = 300.0,
    ) -> None:
        if retire_after < 0:
            raise ConfigError(f"fleet retire_after must be >= 0, got {retire_after}")
        if not namespace:
            raise ConfigError("fleet namespace must not be empty")
        if interval <= 0:
            raise ConfigError(f"fleet interval must be positive, got {interval}")
        self.ttl = ttl if ttl is not None else 3 * interval
        if self.ttl <= interval:
            raise ConfigError(f"fleet ttl ({self.ttl}) must be longer than the interval")
        self.monitor = monitor
        self.client = client
        self.interval = interval
        self.queries = queries
        self.retire_after = retire_after
        self.hash_key = f"{namespace}:__perfkit__:fleet"
        # Another program's bytes in the hash (or another perfkit version's, during a
        # deploy) are skipped, never fatal: counted here, logged once per field.
        self.skipped = SkippedEntries(
            monitor.registry.counter(
                "perfkit_fleet_entries_skipped_total",
                "Entries of the fleet hash a read skipped (not UTF-8, not perfkit's encoding).",
            ),
            "metrics.fleet_state_unreadable",
        )
        self._store = ProcessStore(client, self.hash_key, self.ttl, _decoder, self.skipped)
        self._name = ProcessName()
        self._publisher = Publisher(
            self.publish,
            interval,
            name="perfkit-fleet",
            event="metrics.fleet_publish_failed",
            error=lambda exc: type(exc).__name__,
        )

    @property
    def process(self) -> str:
        """This process's field name: host, pid and a random suffix (pids get reused)."""
        return self._name()

    def alive_key(self, process: str) -> str:
        """The liveness key of ``process`` (expires ``ttl`` after its last publish)."""
        return self._store.alive_key(process)

    # -- this process -----------------------------------------------------------------------

    def state(self) -> ProcessState:
        """This process's numbers now (what it publishes, and answers with for itself)."""
        monitor = self.monitor
        metrics = monitor.registry.snapshot()
        started = process_start_time()
        now = time.time()
        info = FleetProcess(
            process=self.process,
            host=socket.gethostname(),
            pid=os.getpid(),
            started=started,
            uptime_s=now - started,
            requests=summarize(metrics, in_flight=0).requests,
            in_flight=sum(monitor.requests.in_flight().values()),
            rss_bytes=resident_memory(),
            published=now,
        )
        return ProcessState(
            info=info,
            metrics=metrics,
            trends=monitor.trends.export(last=TREND_BUCKETS),
            slowest=monitor.requests.slowest(SLOWEST),
            queries=self.queries() if self.queries is not None else None,
        )

    def publish(self) -> None:
        """Write this process's state now and refresh its liveness key (one round trip)."""
        if self.client is None:
            return
        state = self.state()
        self._store.publish(state.info.process, state)

    def start(self) -> None:
        """Publish every ``interval`` in a daemon thread (no-op without a client or when
        already started in this process)."""
        if self.client is None or self._publishing():
            return
        self._publisher.start()

    def stop(self) -> None:
        """Stop publishing: a last publish, then the liveness key is dropped so that the
        next read folds this process into the retired totals."""
        if self._publisher.stop() is None:
            return
        try:
            self.publish()
            self._store.leave(self.process)
        except Exception as exc:
            _log.warning("metrics.fleet_publish_failed", error=type(exc).__name__)

    # -- the fleet --------------------------------------------------------------------------

    def local(self) -> FleetView:
        """A view of this process alone (what the admin answers while Redis is away)."""
        return FleetView(self.monitor, [self.state()], None, scope="process")

    def read(self) -> FleetView:
        """The fleet's view: the live processes' states (this one's live), plus the retired
        totals. Raises redis-py's errors when Redis is away."""
        local = self.state()
        if self.client is None:
            return FleetView(self.monitor, [local], None, scope="process")
        live, dead, retired = self._store.read()
        if self._stale(dead):
            # Folded by this reader or a concurrent one: read what the fold left.
            self._store.fold(self._fold)
            live, dead, retired = self._store.read()
        own = local.info.process
        # This process's live numbers replace whatever it published (even if its liveness
        # key expired while its thread stalled): never counted twice.
        dead.pop(own, None)
        gone = [s for s in (retired, *dead.values()) if s is not None]
        others = [state for state in live if state.info.process != own]
        totals = _retired(gone) if gone else None
        # Only this process's numbers, and it does not publish them: not a fleet's view.
        scope: Literal["fleet", "process"] = (
            "fleet" if self._publishing() or others or totals is not None else "process"
        )
        return FleetView(self.monitor, [local, *others], totals, scope=scope)

    def _publishing(self) -> bool:
        """Whether this process's publisher thread runs (started here, not in a parent
        before a fork)."""
        thread = self._publisher.thread
        return thread is not None and thread.is_alive()

    def _stale(self, dead: dict[str, ProcessState | None]) -> list[str]:
        """The dead processes gone for longer than ``retire_after`` (by their last publish)."""
        oldest = time.time() - self.retire_after
        own = self.process  # a reader never folds itself: its live numbers count already
        return [
            p for p, s in dead.items() if p != own and (s is None or s.info.published <= oldest)
        ]

    def _fold(self, entries: Entries[ProcessState]) -> tuple[list[str], ProcessState] | None:
        """The processes dead for longer than ``retire_after`` into the retired totals."""
        stale = self._stale(entries.dead)
        if not stale:
            return None
        states = [s for s in (entries.retired, *(entries.dead[p] for p in stale)) if s is not None]
        return stale, _retired(states)


def _retired(states: list[ProcessState]) -> ProcessState:
    """The totals of ``states`` as one state: counters, histograms, trends, statements."""
    metrics = merge(ProcessSnapshot(s.info.process, s.info.published, s.metrics) for s in states)
    exports = [s.queries for s in states if s.queries is not None]
    now = time.time()
    info = FleetProcess(
        process=RETIRED,
        host="",
        pid=0,
        started=min(s.info.started for s in states),
        uptime_s=0.0,
        requests=sum(s.info.requests for s in states),
        in_flight=0,
        rss_bytes=0,
        published=now,
    )
    return ProcessState(
        info=info,
        metrics=[m for m in metrics if m.kind != "gauge"],
        # The retired keep a day of minutes, as a process's own Trends does.
        trends=[b for _, b in sorted(merge_buckets(s.trends for s in states).items())][-24 * 60 :],
        slowest=[],
        queries=merge_query_exports(exports, TOP_STATEMENTS) if exports else None,
    )
