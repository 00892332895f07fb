"""One value per process in a Redis hash, a liveness key per process, and the folding of
the processes gone into one ``retired`` value: what the multi-process exposition
(:mod:`perfkit.metrics.aggregate`) and the fleet view (:mod:`perfkit.metrics.fleet`) share.

Keys, for a hash ``<key>``:

- ``<key>``, field ``<process>``: the process's last value, msgpack;
- ``<key>``, field ``retired``: the totals of the processes folded away;
- ``<key>:alive:<process>``: ``1``, expiring ``ttl`` seconds after the process's last publish.

A read costs two round trips whatever the number of processes (HGETALL, then MGET of the
liveness keys). A fold reads again inside a WATCH/MULTI transaction on the hash, so that
two readers cannot fold a process twice (redis-py runs it again when the hash changed
meanwhile). What is folded, and into what, is the caller's: the aggregate folds every dead
process, the fleet only those gone for a while.

Another program's bytes in the hash are skipped, never fatal: counted and logged once per
field by :class:`SkippedEntries`.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec
import structlog

__all__ = [
    "RETIRED",
    "AsyncProcessStore",
    "Entries",
    "ProcessName",
    "ProcessStore",
    "Publisher",
    "SkippedEntries",
    "alive_key",
]

RETIRED = "retired"
"""The field holding the folded totals of the processes gone."""

T = TypeVar("T")
_log = structlog.get_logger("perfkit.metrics")
_encoder = msgspec.msgpack.Encoder()
# Field names logged as unreadable, per reader: bounded (a hash full of junk must not
# grow a reader's memory), reset wholesale when full.
_LOGGED_CAP = 1024


def alive_key(key: str, process: str) -> str:
    """The liveness key of ``process`` in the hash ``key``."""
    return f"{key}:alive:{process}"


class Entries(NamedTuple, Generic[T]):
    """A read of the hash: the live processes' values, the dead processes' (field ->
    value, ``None`` when unreadable: folded away like the others) and the retired totals."""

    live: list[T]
    dead: dict[str, T | None]
    retired: T | None


Fold = Callable[[Entries[T]], tuple[list[str], T] | None]
"""Given a read, the dead fields to fold and the new retired value (``None``: nothing to
fold)."""


class _ProcessHash(Generic[T]):
    """The part of the sync and async stores that does no I/O."""

    def __init__(
        self,
        client: Any,
        key: str,
        ttl: float,
        decoder: msgspec.msgpack.Decoder[T],
        skipped: SkippedEntries,
    ) -> None:
        self.client = client
        self.key = key
        self.ttl = ttl
        self.decoder = decoder
        self.skipped = skipped

    def alive_key(self, process: str) -> str:
        """The liveness key of ``process``."""
        return alive_key(self.key, process)

    def _decoded(self, raw: Mapping[Any, bytes]) -> dict[str, T | None]:
        """The values of a HGETALL by field name: decoded, or ``None`` for a value that does
        not decode. A field name that is not UTF-8 is left out. Both are counted and
        logged by ``skipped``."""
        values: dict[str, T | None] = {}
        for field, value in raw.items():
            try:
                name = field.decode() if isinstance(field, bytes) else field
            except UnicodeDecodeError:
                self.skipped.skip(repr(field), "field name not UTF-8")
                continue
            try:
                values[name] = self.decoder.decode(value)
            except msgspec.DecodeError:  # ValidationError too: the wrong shape
                self.skipped.skip(name, "value not perfkit's encoding")
                values[name] = None
        return values

    def _alive_keys(self, values: dict[str, T | None]) -> list[str]:
        return [self.alive_key(field) for field in values if field != RETIRED]

    @staticmethod
    def _split(values: dict[str, T | None], alive: list[Any]) -> Entries[T]:
        processes = [field for field in values if field != RETIRED]
        live: list[T] = []
        dead: dict[str, T | None] = {}
        for process, flag in zip(processes, alive, strict=True):
            value = values[process]
            if flag is None:
                dead[process] = value
            elif value is not None:
                live.append(value)
        return Entries(live, dead, values.get(RETIRED))

    def _queue_fold(self, pipe: Any, entries: Entries[T], fold: Fold[T]) -> T | None:
        """Queue (after MULTI) the folding ``fold`` asks for; returns the new retired value."""
        planned = fold(entries)
        if planned is None:
            return None
        gone, retired = planned
        pipe.multi()
        pipe.hset(self.key, RETIRED, _encoder.encode(retired))
        pipe.hdel(self.key, *gone)
        return retired


class ProcessStore(_ProcessHash[T]):
    """The hash of ``key`` through a sync ``redis.Redis`` ``client`` (see the module doc).

    ``decoder`` reads a value; ``skipped`` counts the values it could not read.
    """

    def publish(self, process: str, value: T) -> None:
        """Write ``process``'s value and refresh its liveness key (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.key, process, _encoder.encode(value))
        pipe.set(self.alive_key(process), b"1", px=int(self.ttl * 1000))
        pipe.execute()

    def leave(self, process: str) -> None:
        """Drop ``process``'s liveness key: the next fold may take its value."""
        self.client.delete(self.alive_key(process))

    def read(self) -> Entries[T]:
        """Every process's value, split into live, dead and retired."""
        return self._read(self.client)

    def fold(self, fold: Fold[T]) -> T | None:
        """Fold what ``fold`` chooses of a fresh read into the retired value, atomically;
        returns that value (``None`` when there was nothing to fold)."""
        folded: list[T | None] = []

        def run(pipe: Any) -> None:
            folded.append(self._queue_fold(pipe, self._read(pipe), fold))

        self.client.transaction(run, self.key)
        return folded[-1]

    def _read(self, client: Any) -> Entries[T]:
        values = self._decoded(client.hgetall(self.key))
        keys = self._alive_keys(values)
        return self._split(values, list(client.mget(keys)) if keys else [])


class AsyncProcessStore(_ProcessHash[T]):
    """:class:`ProcessStore`'s reads through a ``redis.asyncio.Redis`` ``client`` (async
    apps only read: the publishers are threads)."""

    async def read(self) -> Entries[T]:
        """Every process's value, split into live, dead and retired."""
        return await self._read(self.client)

    async def fold(self, fold: Fold[T]) -> T | None:
        """Fold what ``fold`` chooses of a fresh read into the retired value, atomically;
        returns that value (``None`` when there was nothing to fold)."""
        folded: list[T | None] = []

        async def run(pipe: Any) -> None:
            folded.append(self._queue_fold(pipe, await self._read(pipe), fold))

        await self.client.transaction(run, self.key)
        return folded[-1]

    async def _read(self, client: Any) -> Entries[T]:
        values = self._decoded(await client.hgetall(self.key))
        keys = self._alive_keys(values)
        return self._split(values, list(await client.mget(keys)) if keys else [])


class Publisher:
    """Calls ``publish`` every ``interval`` seconds in a daemon thread named ``name``.

    A failing call (Redis away) is logged as ``event``, with ``error`` telling the
    exception; the process keeps counting locally and the next call carries the totals.
    When to start and what to do on stopping are the caller's.
    """

    def __init__(
        self,
        publish: Callable[[], None],
        interval: float,
        *,
        name: str,
        event: str,
        error: Callable[[Exception], str] = repr,
    ) -> None:
        self.publish = publish
        self.interval = interval
        self.name = name
        self.event = event
        self.error = error
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start the thread."""
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def stop(self) -> threading.Thread | None:
        """Stop the thread and wait for it; returns it (``None``: it was not started)."""
        thread, self.thread = self.thread, None
        self._stop.set()
        if thread is not None:
            thread.join()
        return thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish()
            except Exception as exc:
                _log.warning(self.event, error=self.error(exc))
            self._stop.wait(self.interval)


class ProcessName:
    """This process's field name in a shared hash (``name()``): host, pid and a random
    suffix, since pids get reused; made anew in a forked child. Every thread gets the same
    name, however many ask first at once."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}  # pid -> name: one entry per fork generation

    def __call__(self) -> str:
        pid = os.getpid()
        name = self._names.get(pid)
        if name is None:
            # Two threads can both get here (a fleet publisher's first publish, a request
            # reading the fleet): setdefault is atomic, so both return the first one's
            # name. Each returning its own made one process two fields, counted twice.
            candidate = f"{socket.gethostname()}:{pid}:{secrets.token_hex(3)}"
            name = self._names.setdefault(pid, candidate)
        return name


class SkippedEntries:
    """Counts the entries of a shared hash a reader could not read (another program's
    bytes, another perfkit version's), logging each field once as ``event``.

    ``counter`` is a registry counter (``inc()``) the skips are added to.
    """

    def __init__(self, counter: Any, event: str) -> None:
        self.counter = counter
        self.event = event
        self._logged: set[str] = set()

    def skip(self, field: str, reason: str) -> None:
        """Count one skipped entry; log it the first time this field is skipped."""
        self.counter.inc()
        if field in self._logged:
            return
        if len(self._logged) >= _LOGGED_CAP:
            self._logged.clear()
        self._logged.add(field)
        _log.warning(self.event, field=field, reason=reason)
