"""One exposition for several worker processes, through Redis.

Each process runs a :class:`SnapshotPusher`: every ``interval`` seconds it writes its whole
registry as one msgpack value into the hash ``<namespace>:metrics`` (field = the process)
and refreshes a liveness key ``<namespace>:metrics:alive:<process>`` with a TTL. A scrape
(:class:`SnapshotStore`, or :class:`AsyncSnapshotStore` in an async app) reads the hash
once and merges it: one HGETALL however many processes, instead of one file per pid.

A process whose liveness key expired is folded into the ``retired`` field (its counters
and histograms only; gauges of the dead make no sense), in a WATCH/MULTI transaction so
that two scrapes cannot fold it twice. Totals therefore never go down when workers are
recycled, and the hash holds one field per live process plus one. The hash, the liveness
keys and the fold are :mod:`perfkit.metrics._store`'s, shared with the fleet view.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import structlog

from perfkit._errors import ConfigError
from perfkit.metrics._store import (
    RETIRED,
    AsyncProcessStore,
    Entries,
    ProcessName,
    ProcessStore,
    Publisher,
    SkippedEntries,
    alive_key,
)
from perfkit.metrics.exposition import render
from perfkit.metrics.registry import MetricsRegistry
from perfkit.metrics.snapshot import MetricSnapshot, ProcessSnapshot, Sample, merge

__all__ = ["AsyncSnapshotStore", "SnapshotPusher", "SnapshotStore"]

_log = structlog.get_logger("perfkit.metrics")
_decoder = msgspec.msgpack.Decoder(ProcessSnapshot)


class _Keys:
    """The namespace, the TTL and the count of unreadable entries the pusher and the
    stores share."""

    def __init__(self, namespace: str, ttl: float) -> None:
        if not namespace:
            raise ConfigError("namespace must not be empty")
        if ttl <= 0:
            raise ConfigError(f"ttl must be positive, got {ttl}")
        self.namespace = namespace
        self.ttl = ttl
        self.hash_key = f"{namespace}:metrics"
        # Another program's bytes in the hash are skipped, never fatal: counted in
        # ``skipped_total`` (exported by collect()), logged once per field.
        self.skipped_total = _SkipCount()
        self.skipped = SkippedEntries(self.skipped_total, "metrics.snapshot_unreadable")

    def alive_key(self, process: str) -> str:
        """The liveness key of ``process``."""
        return alive_key(self.hash_key, process)

    def _merged(self, entries: Entries[ProcessSnapshot]) -> list[MetricSnapshot]:
        retired = [entries.retired] if entries.retired is not None else []
        skipped = MetricSnapshot(
            "perfkit_metrics_entries_skipped_total",
            "counter",
            "Entries of the metrics hash a scrape skipped (not UTF-8, not perfkit's encoding).",
            (),
            [Sample((), float(self.skipped_total.value))],
        )
        return [*merge([*entries.live, *retired]), skipped]


def _fold(entries: Entries[ProcessSnapshot]) -> tuple[list[str], ProcessSnapshot] | None:
    """Every dead process into the retired totals: counters and histograms, not gauges."""
    if not entries.dead:
        return None
    parts = [s for s in (entries.retired, *entries.dead.values()) if s is not None]
    kept = [m for m in merge(parts) if m.kind != "gauge"]
    return list(entries.dead), ProcessSnapshot(RETIRED, time.time(), kept)


class _SkipCount:
    """The stores' count of skipped entries (they have no registry of their own)."""

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


class SnapshotPusher(_Keys):
    """Pushes this process's registry to Redis every ``interval`` seconds, in a thread.

    ``client`` is a sync ``redis.Redis``. ``ttl`` (default three intervals) is how long a
    process counts as alive after its last push. Start it in each worker after the fork
    (a registry inherited from a preloading master would be counted twice).
    """

    def __init__(
        self,
        registry: MetricsRegistry,
        client: Any,
        *,
        namespace: str = "perfkit",
        interval: float = 5.0,
        ttl: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ConfigError(f"interval must be positive, got {interval}")
        super().__init__(namespace, ttl if ttl is not None else 3 * interval)
        self.registry = registry
        self.client = client
        self.interval = interval
        self._store = ProcessStore(client, self.hash_key, self.ttl, _decoder, self.skipped)
        self._name = ProcessName()
        self._publisher = Publisher(
            self.push, interval, name="perfkit-metrics-push", event="metrics.push_failed"
        )

    @property
    def process(self) -> str:
        """This process's field name: host, pid and a random suffix (pids get reused)."""
        return self._name()

    def push(self) -> None:
        """Write the registry's snapshot now and refresh the liveness key."""
        process = self.process
        self._store.publish(
            process, ProcessSnapshot(process, time.time(), self.registry.snapshot())
        )

    def start(self) -> None:
        """Start pushing in a daemon thread (no-op when already started)."""
        if self._publisher.thread is None:
            self._publisher.start()

    def stop(self, *, retire: bool = True) -> None:
        """Stop the thread; push a last snapshot and, with ``retire``, drop the liveness key
        so that the next scrape folds this process into the retired totals."""
        self._publisher.stop()
        try:
            self.push()
            if retire:
                self._store.leave(self.process)
        except Exception as exc:
            _log.warning("metrics.push_failed", error=repr(exc))


class SnapshotStore(_Keys):
    """Reads and merges every process's snapshot (sync ``redis.Redis`` client)."""

    def __init__(self, client: Any, *, namespace: str = "perfkit", ttl: float = 15.0) -> None:
        super().__init__(namespace, ttl)
        self.client = client
        self._store = ProcessStore(client, self.hash_key, ttl, _decoder, self.skipped)

    def collect(self) -> list[MetricSnapshot]:
        """The merged metrics of the live processes plus the retired totals."""
        entries = self._store.read()
        if entries.dead:
            entries = entries._replace(retired=self._store.fold(_fold) or entries.retired)
        return self._merged(entries)

    def exposition(self) -> str:
        """The Prometheus text format of :meth:`collect`."""
        return render(self.collect())

    def processes(self) -> list[str]:
        """The processes that pushed and are still alive."""
        return [snapshot.process for snapshot in self._store.read().live]


class AsyncSnapshotStore(_Keys):
    """:class:`SnapshotStore` for async apps (``redis.asyncio.Redis`` client)."""

    def __init__(self, client: Any, *, namespace: str = "perfkit", ttl: float = 15.0) -> None:
        super().__init__(namespace, ttl)
        self.client = client
        self._store = AsyncProcessStore(client, self.hash_key, ttl, _decoder, self.skipped)

    async def collect(self) -> list[MetricSnapshot]:
        """The merged metrics of the live processes plus the retired totals."""
        entries = await self._store.read()
        if entries.dead:
            entries = entries._replace(retired=await self._store.fold(_fold) or entries.retired)
        return self._merged(entries)

    async def exposition(self) -> str:
        """The Prometheus text format of :meth:`collect`."""
        return render(await self.collect())

    async def processes(self) -> list[str]:
        """The processes that pushed and are still alive."""
        return [snapshot.process for snapshot in (await self._store.read()).live]
