"""One exposition for several worker processes, through Redis.

Each process runs a :class:`SnapshotPusher`: every ``interval`` seconds it writes its whole
registry as one msgpack value into the hash ``<namespace>:metrics`` (field = the process)
and refreshes a liveness key ``<namespace>:metrics:alive:<process>`` with a TTL. A scrape
(:class:`SnapshotStore`, or :class:`AsyncSnapshotStore` in an async app) reads the hash
once and merges it: one HGETALL however many processes, instead of one file per pid.

A process whose liveness key expired is folded into the ``retired`` field (its counters
and histograms only; gauges of the dead make no sense), in a WATCH/MULTI transaction so
that two scrapes cannot fold it twice. Totals therefore never go down when workers are
recycled, and the hash holds one field per live process plus one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec
import structlog

from perfkit._errors import ConfigError
from perfkit.metrics.exposition import render
from perfkit.metrics.registry import MetricsRegistry
from perfkit.metrics.snapshot import (
    MetricSnapshot,
    ProcessName,
    ProcessSnapshot,
    Sample,
    SkippedEntries,
    merge,
    read_entries,
)

__all__ = ["AsyncSnapshotStore", "SnapshotPusher", "SnapshotStore"]

RETIRED = "retired"

_log = structlog.get_logger("perfkit.metrics")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ProcessSnapshot)


class _Keys:
    """Key names and the merge/fold arithmetic shared by the pusher and the stores."""

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
        return f"{self.hash_key}:alive:{process}"

    def _entries(self, raw: dict[Any, bytes]) -> dict[str, ProcessSnapshot | None]:
        return read_entries(raw, _decoder, self.skipped)

    def _split(
        self, entries: dict[str, ProcessSnapshot | None], alive: list[Any]
    ) -> tuple[list[ProcessSnapshot], dict[str, ProcessSnapshot | None], ProcessSnapshot | None]:
        """Live snapshots, dead processes (field -> snapshot) and the retired snapshot."""
        processes = [f for f in entries if f != RETIRED]
        live: list[ProcessSnapshot] = []
        gone: dict[str, ProcessSnapshot | None] = {}
        for process, flag in zip(processes, alive, strict=True):
            snapshot = entries[process]
            if flag is None:
                gone[process] = snapshot
            elif snapshot is not None:
                live.append(snapshot)
        return live, gone, entries.get(RETIRED)

    def _alive_keys(self, entries: dict[str, ProcessSnapshot | None]) -> list[str]:
        return [self.alive_key(f) for f in entries if f != RETIRED]

    def _skipped_metric(self) -> MetricSnapshot:
        return MetricSnapshot(
            "perfkit_metrics_entries_skipped_total",
            "counter",
            "Entries of the metrics hash a scrape skipped (not UTF-8, not perfkit's encoding).",
            (),
            [Sample((), float(self.skipped_total.value))],
        )

    def _fold_queued(
        self, pipe: Any, entries: dict[str, ProcessSnapshot | None], alive: list[Any]
    ) -> ProcessSnapshot | None:
        """Queue (after MULTI) the folding of the dead processes into ``retired``."""
        _, gone, retired = self._split(entries, alive)
        if not gone:
            return None
        parts = [s for s in (retired, *gone.values()) if s is not None]
        kept = [m for m in merge(parts) if m.kind != "gauge"]
        folded = ProcessSnapshot(RETIRED, time.time(), kept)
        pipe.multi()
        pipe.hset(self.hash_key, RETIRED, _encoder.encode(folded))
        pipe.hdel(self.hash_key, *gone)
        return folded

    def _merged(
        self, live: list[ProcessSnapshot], retired: ProcessSnapshot | None
    ) -> list[MetricSnapshot]:
        merged = merge([*live, *([retired] if retired is not None else [])])
        return [*merged, self._skipped_metric()]


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
        self._name = ProcessName()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def process(self) -> str:
        """This process's field name: host, pid and a random suffix (pids get reused)."""
        return self._name()

    def push(self) -> None:
        """Write the registry's snapshot now and refresh the liveness key."""
        process = self.process
        snapshot = ProcessSnapshot(process, time.time(), self.registry.snapshot())
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.hash_key, process, _encoder.encode(snapshot))
        pipe.set(self.alive_key(process), b"1", px=int(self.ttl * 1000))
        pipe.execute()

    def start(self) -> None:
        """Start pushing in a daemon thread (no-op when already started)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="perfkit-metrics-push", daemon=True)
        self._thread.start()

    def stop(self, *, retire: bool = True) -> None:
        """Stop the thread; push a last snapshot and, with ``retire``, drop the liveness key
        so that the next scrape folds this process into the retired totals."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join()
        try:
            self.push()
            if retire:
                self.client.delete(self.alive_key(self.process))
        except Exception as exc:
            _log.warning("metrics.push_failed", error=repr(exc))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.push()
            except Exception as exc:
                # Redis away: keep counting locally, the next push carries the totals.
                _log.warning("metrics.push_failed", error=repr(exc))
            self._stop.wait(self.interval)


class SnapshotStore(_Keys):
    """Reads and merges every process's snapshot (sync ``redis.Redis`` client)."""

    def __init__(self, client: Any, *, namespace: str = "perfkit", ttl: float = 15.0) -> None:
        super().__init__(namespace, ttl)
        self.client = client

    def collect(self) -> list[MetricSnapshot]:
        """The merged metrics of the live processes plus the retired totals."""
        entries = self._entries(self.client.hgetall(self.hash_key))
        live, dead, retired = self._split(entries, self._alive(self.client, entries))
        if dead:
            retired = self._retire() or retired
        return self._merged(live, retired)

    def exposition(self) -> str:
        """The Prometheus text format of :meth:`collect`."""
        return render(self.collect())

    def processes(self) -> list[str]:
        """The processes that pushed and are still alive."""
        entries = self._entries(self.client.hgetall(self.hash_key))
        return [p.process for p in self._split(entries, self._alive(self.client, entries))[0]]

    def _alive(self, client: Any, entries: dict[str, ProcessSnapshot | None]) -> list[Any]:
        keys = self._alive_keys(entries)
        return list(client.mget(keys)) if keys else []

    def _retire(self) -> ProcessSnapshot | None:
        folded: list[ProcessSnapshot | None] = []

        def fold(pipe: Any) -> None:
            entries = self._entries(pipe.hgetall(self.hash_key))
            folded.append(self._fold_queued(pipe, entries, self._alive(pipe, entries)))

        self.client.transaction(fold, self.hash_key)
        return folded[-1]


class AsyncSnapshotStore(_Keys):
    """:class:`SnapshotStore` for async apps (``redis.asyncio.Redis`` client)."""

    def __init__(self, client: Any, *, namespace: str = "perfkit", ttl: float = 15.0) -> None:
        super().__init__(namespace, ttl)
        self.client = client

    async def collect(self) -> list[MetricSnapshot]:
        """The merged metrics of the live processes plus the retired totals."""
        entries = self._entries(await self.client.hgetall(self.hash_key))
        live, dead, retired = self._split(entries, await self._alive(self.client, entries))
        if dead:
            retired = await self._retire() or retired
        return self._merged(live, retired)

    async def exposition(self) -> str:
        """The Prometheus text format of :meth:`collect`."""
        return render(await self.collect())

    async def processes(self) -> list[str]:
        """The processes that pushed and are still alive."""
        entries = self._entries(await self.client.hgetall(self.hash_key))
        alive = await self._alive(self.client, entries)
        return [p.process for p in self._split(entries, alive)[0]]

    async def _alive(self, client: Any, entries: dict[str, ProcessSnapshot | None]) -> list[Any]:
        keys = self._alive_keys(entries)
        return list(await client.mget(keys)) if keys else []

    async def _retire(self) -> ProcessSnapshot | None:
        folded: list[ProcessSnapshot | None] = []

        async def fold(pipe: Any) -> None:
            entries = self._entries(await pipe.hgetall(self.hash_key))
            folded.append(self._fold_queued(pipe, entries, await self._alive(pipe, entries)))

        await self.client.transaction(fold, self.hash_key)
        return folded[-1]
