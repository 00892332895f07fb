# Generated from _aio.py by tools/async_to_sync.py: do not edit.
"""RedisService: the cache on redis-py (sync)."""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack, overload

import redis
import redis as driver

from perfkit import _telemetry
from perfkit._compat.redis import direct_pool
from perfkit._errors import CacheError
from perfkit.cache import _codec, _ops, _scripts
from perfkit.cache._background import Workers, spawn, stop
from perfkit.cache._base import (
    CLUSTER_SCHEME,
    CONNECTION_ERRORS,
    EXACT_KEY_COUNT_LIMIT,
    KEY_SAMPLE,
    REDIS_ERRORS,
    BaseCacheService,
    ReadPlan,
    SentinelURL,
    client_kwargs,
    log,
    new_generation,
    nonce,
    resolve_ttl,
    tag_ttl_ms,
    validate_tags,
)
from perfkit.cache._codec import MISSING, UNTAGGED, Entry, Payload
from perfkit.cache._fallback import Pending
from perfkit.cache._flight import Flights, call_loader
from perfkit.cache._near import NearCache
from perfkit.cache._stale import Refreshes, StaleOptions, StalePolicy
from perfkit.cache._stats import CacheStats
from perfkit.settings import Settings

_UNLINK_BATCH = 500
_STORE_BATCH = 500
# Followers of a loader whose value they may not serve try again (as leader) this often.
_FOLLOW_ATTEMPTS = 3
_SCAN_COUNT = 1000
# One claim script in this many also drops the locks whose deadline passed (of processes that
# died holding them: an expired lock is taken over anyway, this only bounds the set).
_SWEEP_EVERY = 64
# How often the background worker tries Redis while changes are pending: they reach Redis
# within about this (plus a round trip) of its return.
_REPLAY_EVERY = 0.25
_NO_TAGS = ReadPlan((), "")
_NO_PAIRS: list[tuple[str, bytes]] = []  # shared: never mutated
T = TypeVar("T")
D = TypeVar("D")


class RedisService(BaseCacheService):
    """A namespaced Redis cache with TTLs, tags, stampede protection and memory fallback.

    ``client`` is a Redis URL (``redis://``, ``rediss://``, ``unix://``;
    ``redis+sentinel://host:26379[,host:26379...]/service[/db]`` to follow a Sentinel-managed
    master; ``redis+cluster://host:port`` for a Redis Cluster), an existing client (not
    closed by :meth:`close`), or ``None`` for ``REDIS_URL``. ``namespace`` and
    ``default_ttl`` (seconds) default to the settings' ``CACHE_NAMESPACE`` and
    ``CACHE_DEFAULT_TTL``. ``l1``: ``True`` or a :class:`NearCache` for an in-process near
    cache kept consistent by Redis's invalidation pushes (see docs/cache.md).
    ``auto_pipeline``: coalesce the reads of concurrent tasks into one ``MGET`` (async
    service only; the sync service sends each thread's own, whatever its value).
    """

    def __init__(
        self,
        client: str | driver.Redis | driver.RedisCluster | None = None,
        *,
        namespace: str | None = None,
        default_ttl: int | None = None,
        settings: Settings | None = None,
        l1: NearCache | bool = False,
        auto_pipeline: bool = True,
    ) -> None:
        settings = settings if settings is not None else Settings.from_env(part="cache")
        sentinel: SentinelURL | None = None
        if isinstance(client, driver.Redis | driver.RedisCluster):
            connection = client
        else:
            url = settings.redis_url if client is None else client
            sentinel = SentinelURL.parse(url)
            if sentinel is not None:
                connection = sentinel.client(driver, settings)
            elif url.startswith(CLUSTER_SCHEME):
                connection = driver.RedisCluster.from_url(
                    "redis://" + url[len(CLUSTER_SCHEME) :],
                    **client_kwargs(settings, driver, cluster=True),
                )
            else:
                connection = driver.Redis.from_url(url, **client_kwargs(settings, driver))
        super().__init__(
            client=connection,
            owns_client=connection is not client,
            sentinel=sentinel,
            namespace=namespace,
            default_ttl=default_ttl,
            settings=settings,
        )
        self._store_tagged = connection.register_script(_scripts.STORE_TAGGED)
        self._release = connection.register_script(_scripts.RELEASE)
        self._claim_many = connection.register_script(_scripts.CLAIM_MANY)
        self._store_release = connection.register_script(_scripts.STORE_RELEASE_MANY)
        self._claims_sent = 0
        # Async only: the claims and releases of concurrent misses, one script call each.
        self._flights = Flights()
        self._pool = direct_pool(connection)
        self._replayer: Any = None
        self._refreshes = Refreshes()
        self._workers = Workers()
        self._start_l1(l1)

    @classmethod
    def from_env(cls, **kwargs: Any) -> RedisService:
        """A service configured from the environment (``REDIS_URL``, ``CACHE_*``)."""
        return cls(settings=Settings.from_env(part="cache"), **kwargs)

    def close(self) -> None:
        """Stop the L1 listener and the background worker, and close the client if the
        service created it."""
        self._closed = True
        self._stop_l1()
        stop(self._replayer)
        self._workers.stop()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RedisService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the operation pipeline -------------------------------------------------------------

    def _run(self, operation: _ops.Operation, call: Callable[..., T], *args: Any) -> T:
        """Run the public ``operation`` as ``call(*args)``: the one place that calls the
        telemetry hook around an operation (when one is subscribed; see ``_ops.py``)."""
        hook = _telemetry.cache_operation
        if hook is None:
            return call(*args)
        with hook(operation.span, operation.start(args)) as span:
            result = call(*args)
            for name, value in operation.outcome(result).items():
                span.set_attribute(name, value)
            return result

    def _apply(
        self,
        operation: _ops.Operation,
        on_redis: Callable[[], T],
        in_memory: Callable[[], T],
        refused: Callable[[], T],
    ) -> T:
        """The fallback and stats layers of ``operation`` (see ``_ops.py``): ``on_redis()``;
        while Redis is down, or when it goes down under that call, ``in_memory()`` (the
        memory store: never I/O), then for a change replayed later (``Down.REPLAY``) its
        replay at once if Redis is back meanwhile (``_settle``). A refusal (full,
        read-only...) is counted in ``errors``, logged and answered by ``refused()``. What
        ``on_redis`` or ``in_memory`` returned (a count) is added to ``operation.adds``."""
        if not self._use_memory():
            try:
                result = on_redis()
            except CONNECTION_ERRORS as exc:
                self._fall_back(exc)
            except REDIS_ERRORS as exc:
                self._error(operation.name, exc)
                return refused()
            else:
                self._add(operation, result)
                return result
        result = in_memory()
        self._add(operation, result)
        if operation.down is _ops.Down.REPLAY:
            self._settle()
        return result

    def _refuse(
        self,
        answer: T,
        keys: Sequence[str] = (),
        tags: Sequence[str] = (),
        patterns: Sequence[str] = (),
        everything: bool = False,
    ) -> T:
        """The ``answer`` to an operation Redis refused; what its change covers is blocked
        until the background worker applies it (``_block``)."""
        if keys or tags or patterns or everything:
            self._block(keys, tags, patterns, everything=everything)
        return answer

    # -- reading ----------------------------------------------------------------------------

    @overload
    def get(self, key: str, default: Any = None) -> Any: ...

    @overload
    def get(self, key: str, default: None = None, *, type: type[T]) -> T | None: ...

    @overload
    def get(self, key: str, default: D, *, type: type[T]) -> T | D: ...

    def get(self, key: str, default: Any = None, *, type: Any = None) -> Any:
        """The value at ``key``, or ``default`` when there is none (a cached None is None).

        ``type``: decode into it (``Product``, ``list[Product]``: a msgspec Struct, a
        dataclass, an attrs class, a pydantic model...); a value that does not fit it is a
        miss."""
        full = self._key(key)
        near = self._near
        # The fast lane of an L1 hit while no telemetry hook listens: _get's first step
        # inline (a call is a good part of an L1 hit). On a miss _get looks once more.
        if (
            near is not None
            and _telemetry.cache_operation is None
            and (self._fallback_since is None)
            and (not self._memory.blocking)
        ):
            value = near.get(full, type)
            if value is not MISSING:
                return value
        value = self._run(_ops.GET, self._get, full, key, type)
        return default if value is MISSING else value

    def _get(self, full: str, key: str, type_: Any) -> Any:
        """The value at ``full`` (from L1, else Redis), or MISSING."""
        value = self._near_get(full, type_)
        if value is not MISSING:
            return value
        start = time.perf_counter()
        epoch = self._near_epoch()
        entry = self._lookup_one(full, _NO_TAGS)
        value = MISSING if entry is None else self._accept(full, entry, type_, key, epoch)
        self._stats.lookup(value is not MISSING, time.perf_counter() - start)
        return value

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of those ``keys`` that are cached, in one round trip (missing omitted)."""
        names = keys if isinstance(keys, str) else list(keys)
        fulls = self._keys(names)  # refuses a lone string
        return self._run(_ops.GET_MANY, self._get_many, names, fulls)

    def _get_many(self, names: list[str], fulls: list[str]) -> dict[str, Any]:
        if not fulls:
            return {}
        start = time.perf_counter()
        found: dict[str, Any] = {}
        wanted: list[tuple[str, str]] = []
        for name, full in zip(names, fulls, strict=True):
            value = self._near_get(full, None)
            if value is MISSING:
                wanted.append((name, full))
            else:
                found[name] = value
        if wanted:
            epoch = self._near_epoch()
            entries = self._lookup([full for _, full in wanted])
            for (name, full), entry in zip(wanted, entries, strict=True):
                value = MISSING if entry is None else self._accept(full, entry, None, name, epoch)
                if value is not MISSING:
                    found[name] = value
        elapsed = (time.perf_counter() - start) / len(fulls)
        for name in names:
            self._stats.lookup(name in found, elapsed)
        return found

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value that may be served (its tags still current, and
        decodable: ``exists`` agrees with ``get``)."""
        return self._run(_ops.EXISTS, self._exists, self._key(key), key)

    def _exists(self, full: str, key: str) -> bool:
        entry = self._lookup_one(full, _NO_TAGS)
        return entry is not None and self._decode(entry[0], None, key) is not MISSING

    def _lookup(self, fulls: list[str]) -> list[Entry | None]:
        """Each key's payload and tag generations, or None when missing or guarded by a tag
        that moved on."""
        misses: list[Entry | None] = [None] * len(fulls)
        return self._apply(
            _ops.GET,
            functools.partial(self._read, fulls),
            lambda: [self._memory_entry(full) for full in fulls],
            functools.partial(self._refuse, misses),
        )

    def _read(self, fulls: list[str]) -> list[Entry | None]:
        epoch = self._near_epoch()
        return self._guard(fulls, self._mget(fulls), {}, epoch)

    def _lookup_one(self, full: str, plan: ReadPlan) -> Entry | None:
        """As :meth:`_lookup` for one key whose callers expect ``plan``'s tags: their
        generations come in the same MGET, so a tagged hit is one round trip like an
        untagged one. The read of every Redis hit: ``_apply``'s layers with ``GET``'s
        policy inline (a call and a closure are a good part of a hit); the pipeline test
        checks that both decide alike."""
        if self._fallback_since is not None and self._use_memory():
            return self._memory_entry(full)
        try:
            near = self._near
            epoch = 0 if near is None else near.epoch
            raw, *gens = self._mget([full, *plan.keys])
            if raw and near is None and (not self._memory.blocking):
                # The common cases, without parsing the header. (Only the near cache needs
                # the entry's tag pairs, and it is off.)
                if raw[0] == UNTAGGED:
                    return (memoryview(raw)[1:], _NO_PAIRS)
                header = plan.header(gens)
                if header is not None and raw.startswith(header):
                    return (memoryview(raw)[len(header) :], _NO_PAIRS)
            known = dict(zip(plan.tags, gens, strict=True))
            return self._guard([full], [raw], known, epoch)[0]
        except CONNECTION_ERRORS as exc:
            self._fall_back(exc)
            return self._memory_entry(full)
        except REDIS_ERRORS as exc:
            self._error("get", exc)
            return None

    def _guard(
        self, fulls: list[str], raws: list[bytes | None], known: dict[str, bytes | None], epoch: int
    ) -> list[Entry | None]:
        """The entries in ``raws`` (read at ``fulls``), or None where missing, not perfkit's,
        guarded by a tag that moved on, or covered by a refused change not applied yet.
        ``known``: tag generations already read; the others are read here."""
        entries: list[Entry | None] = [None] * len(raws)
        guarded: list[tuple[int, Entry]] = []
        blocking = self._memory.blocking
        for index, raw in enumerate(raws):
            entry = None if raw is None else _codec.split_entry(raw)
            if entry is None or (blocking and self._blocked(fulls[index], entry)):
                continue
            if entry[1]:
                guarded.append((index, entry))
            else:
                entries[index] = entry
        if guarded:
            unknown = list({tag for _, (_, pairs) in guarded for tag, _ in pairs} - known.keys())
            if unknown:
                gens = self._mget([self._tag_prefix + t for t in unknown])
                known.update(zip(unknown, gens, strict=True))
            for index, entry in guarded:
                # Current only if no tag was invalidated since the value was computed.
                if all((known[tag] == gen for tag, gen in entry[1])):
                    entries[index] = entry
        if known and self._near is not None:
            self._near.learn(known, epoch)
        return entries

    # -- writing ----------------------------------------------------------------------------

    def set(self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Cache ``value`` at ``key`` for ``ttl`` seconds (None: the default, 0: no expiry),
        guarded by ``tags``. A value msgspec cannot encode raises ``TypeError``; nothing is
        written then."""
        ttl_ms = resolve_ttl(ttl, self.default_ttl)
        self._run(_ops.SET, self._set_many, {key: value}, ttl_ms, validate_tags(tags))

    def set_many(
        self, mapping: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Cache every item of ``mapping`` in one round trip, as :meth:`set` does.

        All values are encoded first: if one cannot be, ``TypeError`` names it and nothing
        is written."""
        ttl_ms = resolve_ttl(ttl, self.default_ttl)
        self._run(_ops.SET_MANY, self._set_many, mapping, ttl_ms, validate_tags(tags))

    def _set_many(self, mapping: Mapping[str, Any], ttl_ms: int, tags: tuple[str, ...]) -> None:
        payloads = self._encode_many(mapping)
        if payloads:
            self._store(payloads, ttl_ms, tags, ())

    def _store(
        self, payloads: dict[str, bytes], ttl_ms: int, tags: Sequence[str], gens: Sequence[bytes]
    ) -> None:
        """Write encoded entries. ``gens``: the tag generations read before the values were
        computed (empty: take the current ones)."""
        # Refused (full, read-only...): the entries it replaces must not be served.
        self._apply(
            _ops.SET,
            functools.partial(self._write, payloads, ttl_ms, tags, gens),
            functools.partial(self._store_in_memory, payloads, ttl_ms, tags),
            functools.partial(self._drop_or_block, list(payloads)),
        )

    def _write(
        self, payloads: dict[str, bytes], ttl_ms: int, tags: Sequence[str], gens: Sequence[bytes]
    ) -> int:
        """:meth:`_store` on Redis; returns how many entries were written."""
        header = None
        if tags and self._cluster:
            # No script across slots: read (or make) the generations first. A value
            # computed before an invalidation may then be written, but readers
            # check the generations and never serve it.
            current = self._current_gens(tags, gens, ttl_ms)
            if current is None:
                return 0
            header = _codec.entry_prefix(list(zip(tags, current, strict=True)))
        # One round trip; tagged entries in several short scripts, so that a huge
        # batch neither blocks Redis for long nor outlasts the socket timeout.
        pipe = self._client.pipeline(transaction=False)
        items = list(payloads.items())
        chunks = [
            items[start : start + _STORE_BATCH] for start in range(0, len(items), _STORE_BATCH)
        ]
        for chunk in chunks:
            if tags and header is None:
                self._store_tagged(
                    keys=[full for full, _ in chunk],
                    args=self._store_args(
                        ttl_ms, tags, gens or [b""] * len(tags), [p for _, p in chunk]
                    ),
                    client=pipe,
                )
            else:
                prefix = header or _codec.entry_prefix([])
                for full, payload in chunk:
                    pipe.set(full, prefix + payload, px=ttl_ms or None)
        if header is not None:
            # The tags must outlive the entries (the script does this elsewhere).
            self._extend_tags(pipe, tags, ttl_ms)
        written = pipe.execute()
        self._near_evict(list(payloads))
        if tags and header is None:
            # A script writes nothing (0) when its generations were outdated.
            return sum((len(c) for c, ok in zip(chunks, written, strict=True) if ok))
        return len(items)

    def _extend_tags(self, pipe: Any, tags: Iterable[str], ttl_ms: int) -> None:
        """Queue on ``pipe`` what makes the generation keys of ``tags`` outlive an entry of
        ``ttl_ms`` (0: no expiry) written or touched under them."""
        for tag in tags:
            if ttl_ms:
                pipe.pexpire(self._tag_prefix + tag, tag_ttl_ms(ttl_ms), gt=True)
            else:
                pipe.persist(self._tag_prefix + tag)

    def delete(self, *keys: str) -> int:
        """Remove ``keys``; returns how many existed."""
        return self._run(_ops.DELETE, self._delete, self._keys(keys))

    def _delete(self, fulls: list[str]) -> int:
        if not fulls:
            return 0
        self._near_evict(fulls)
        return self._apply(
            _ops.DELETE,
            functools.partial(self._unlink_counted, fulls),
            functools.partial(self._memory.delete, fulls),
            functools.partial(self._refuse, 0, keys=fulls),
        )

    # -- expiry -----------------------------------------------------------------------------

    def touch(self, key: str, ttl: float | None = None) -> bool:
        """Keep ``key`` for ``ttl`` seconds from now (None: the default, 0: no expiry)
        without rewriting it; returns whether it existed. Its tags' generation keys are
        extended to outlive it. An entry written with a stale window keeps the freshness
        its value carries: ``touch`` changes when the key leaves Redis, not when it goes
        stale. While Redis is down it answers from the memory store (docs/cache.md)."""
        ttl_ms = resolve_ttl(ttl, self.default_ttl)
        return self._run(_ops.TOUCH, self._touch, self._key(key), ttl_ms)

    def _touch(self, full: str, ttl_ms: int) -> bool:
        return self._apply(
            _ops.TOUCH,
            functools.partial(self._expire, full, ttl_ms),
            lambda: self._memory.get(full) is not None,
            functools.partial(self._refuse, False),
        )

    def _expire(self, full: str, ttl_ms: int) -> bool:
        """Set the expiry of ``full`` (and of its tags' generation keys, which must outlive
        it): one round trip, two for a tagged entry."""
        pipe = self._client.pipeline(transaction=False)
        if ttl_ms:
            pipe.pexpire(full, ttl_ms)
        else:
            pipe.persist(full)
        pipe.get(full)
        raw = pipe.execute()[1]
        entry = None if raw is None else _codec.split_entry(raw)
        if entry is not None and entry[1]:
            pipe = self._client.pipeline(transaction=False)
            self._extend_tags(pipe, [tag for tag, _ in entry[1]], ttl_ms)
            pipe.execute()
        return raw is not None

    # -- invalidation -----------------------------------------------------------------------

    def invalidate_tags(self, tags: Iterable[str]) -> None:
        """Make every entry guarded by any of ``tags`` a miss, in O(1) per tag.

        After this returns, no reader in any process gets a value filled before it, even one
        whose loader started earlier and finishes later."""
        self._run(_ops.INVALIDATE_TAGS, self._invalidate_tags, validate_tags(tags))

    def _invalidate_tags(self, checked: tuple[str, ...]) -> None:
        if not checked:
            return
        if self._near is not None:
            self._near.forget_tags(list(checked))
        self._apply(
            _ops.INVALIDATE_TAGS,
            functools.partial(self._client.delete, *[self._tag_prefix + tag for tag in checked]),
            functools.partial(self._memory.invalidate_tags, checked),
            functools.partial(self._refuse, None, tags=checked),
        )

    def invalidate_pattern(self, pattern: str) -> int:
        """Delete the keys of this namespace matching the glob ``pattern`` (SCAN + UNLINK in
        batches); returns how many. Keys outside the namespace are never reached."""
        return self._run(_ops.INVALIDATE_PATTERN, self._invalidate_pattern, self._pattern(pattern))

    def _invalidate_pattern(self, full_pattern: str) -> int:
        if self._near is not None:
            self._near.evict_matching(full_pattern)
        return self._apply(
            _ops.INVALIDATE_PATTERN,
            functools.partial(self._unlink_matching, full_pattern, keep_internal=True),
            functools.partial(self._memory.invalidate_pattern, full_pattern),
            functools.partial(self._refuse, 0, patterns=[full_pattern]),
        )

    def clear(self) -> int:
        """Delete everything in this namespace, tag generations included; returns how many
        keys. Other namespaces are untouched."""
        return self._run(_ops.CLEAR, self._clear)

    def _clear(self) -> int:
        if self._near is not None:
            self._near.clear()
        return self._apply(
            _ops.CLEAR,
            functools.partial(self._unlink_matching, self._prefix + "*", keep_internal=False),
            self._drop_memory,
            functools.partial(self._refuse, 0, everything=True),
        )

    def _unlink_matching(self, full_pattern: str, *, keep_internal: bool) -> int:
        removed = 0
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=full_pattern, count=_SCAN_COUNT):
            if keep_internal and self._is_internal(key):
                continue
            batch.append(key)
            if len(batch) >= _UNLINK_BATCH:
                removed += self._client.unlink(*batch)
                batch.clear()
        if batch:
            removed += self._client.unlink(*batch)
        return removed

    def _unlink_counted(self, fulls: list[str]) -> int:
        """UNLINK ``fulls`` (one call); how many existed."""
        removed: int = self._client.unlink(*fulls)
        return removed

    def _unlink(self, fulls: list[str]) -> None:
        for start in range(0, len(fulls), _UNLINK_BATCH):
            self._client.unlink(*fulls[start : start + _UNLINK_BATCH])

    def _drop_or_block(self, fulls: list[str]) -> int:
        """After Redis refused to overwrite ``fulls``: delete the old entries (a full Redis
        still deletes), else block them until the background worker can. Nothing was
        written (0)."""
        try:
            self._unlink(fulls)
            self._near_evict(fulls)
        except REDIS_ERRORS:
            self._block(keys=fulls)
        return 0

    # -- get or load ------------------------------------------------------------------------

    @overload
    def get_or_set(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float | None = None,
        tags: Iterable[str] = (),
        *,
        type: None = None,
        **stale: Unpack[StaleOptions],
    ) -> T: ...

    @overload
    def get_or_set(
        self,
        key: str,
        loader: Callable[[], object],
        ttl: float | None = None,
        tags: Iterable[str] = (),
        *,
        type: type[T],
        **stale: Unpack[StaleOptions],
    ) -> T: ...

    def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
        tags: Iterable[str] = (),
        *,
        type: Any = None,
        stale_ttl: float | None = None,
        stale_if_error: bool = False,
        early_refresh: float | None = None,
    ) -> Any:
        """The cached value at ``key``; on a miss, ``loader()``'s value, cached.

        Concurrent misses run the loader once per process, and across processes a short Redis
        lock makes the others wait (at most ``CACHE_LOCK_WAIT`` seconds) for its value.
        ``type``: decode hits into it, as :meth:`get` does (without it a hit is plain data:
        a pydantic model comes back as a dict).

        ``stale_ttl``: seconds after expiry in which the old value is served at once while
        one refresh (one across every process) runs in the background; ``stale_if_error``:
        keep serving it when that refresh raises (else the failure drops it, and the next
        caller gets the error). ``early_refresh``: the XFetch ``beta`` (1.0 is the usual
        value; larger refreshes earlier) of a background refresh that may start shortly
        before expiry. Never after ``delete``, ``invalidate_tags`` or
        ``invalidate_pattern``: only an expired entry is served stale (docs/cache.md)."""
        resolve_ttl(ttl, 0)  # a bad ttl is an error on a hit too (cached_query checks it once)
        policy = StalePolicy.of(stale_ttl, stale_if_error, early_refresh)
        return self._load(key, loader, ttl, tags, type, policy=policy)

    # The seed guide's ``cachedQuery(key, loader, ttl, tags)``.
    cached_query = get_or_set

    def _load(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: Iterable[str],
        type_: Any,
        refresh: bool = False,
        l1: bool = True,
        policy: StalePolicy | None = None,
    ) -> Any:
        """get_or_set, decoding hits as ``type_``; ``refresh``: recompute even on a hit;
        ``l1``: may use the near cache (when the service has one); ``policy``: what may be
        served after expiry (None: nothing)."""
        full = self._key(key)
        plan = self._read_plan(tags)  # validates them, hit or miss
        operation = _ops.REFRESH if refresh else _ops.GET_OR_SET
        value, _ = self._run(
            operation, self._get_or_load, full, key, loader, ttl, plan, type_, refresh, l1, policy
        )
        return value

    def _get_or_load(
        self,
        full: str,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        plan: ReadPlan,
        type_: Any,
        refresh: bool,
        l1: bool,
        policy: StalePolicy | None,
    ) -> tuple[Any, bool]:
        """``_load``'s work: the value, and whether the lookup found it (False when the
        loader ran, or the value came from another caller's)."""
        near = self._near
        if near is not None and l1 and (not refresh):
            # What an L1 hit returns was stored by a call whose tags passed.
            value = self._near_get(full, type_)
            if value is not MISSING:
                return (value, True)
        start = time.perf_counter()
        if not refresh:
            if policy is not None:
                value = self._get_timed(full, key, loader, ttl, plan, type_, l1, policy)
            elif near is None:
                entry = self._lookup_one(full, plan)
                value = MISSING if entry is None else self._decode(entry[0], type_, key)
            else:
                value = MISSING
                epoch = near.epoch
                entry = self._lookup_one(full, plan)
                if entry is not None:
                    value = self._accept(full, entry, type_, key, epoch, l1)
            hit = value is not MISSING
            self._stats.lookup(hit, time.perf_counter() - start)
            if hit:
                return (value, True)
        ttl_ms = resolve_ttl(ttl, self.default_ttl)
        # A partial, not a closure: a closure would make every local above a cell, paid on
        # every hit too.
        fill = functools.partial(self._fill, full, key, loader, ttl_ms, plan, refresh, policy)
        for _ in range(_FOLLOW_ATTEMPTS):
            led, value, shared = self._flights.run(full, fill)
            if led:
                # Our own loader's value, or one another process stored while we waited
                # (read and checked by _fill).
                if value is MISSING and shared is not None:
                    value = self._decode(shared, type_, key)
                if value is not MISSING:
                    return (value, False)
            else:
                # A follower may have joined after an invalidate_tags that the leader's
                # loader predates: only serve what is still current in the cache (the
                # leader's write is refused when its generations are outdated).
                epoch = self._near_epoch()
                entry = self._lookup_one(full, plan)
                if entry is not None:
                    value = self._accept(full, entry, type_, key, epoch, l1)
                    if value is not MISSING:
                        return (value, False)
        # Redis keeps refusing the value (or it does not decode): load it for this caller.
        return (call_loader(loader), False)

    def _fill(
        self,
        full: str,
        key: str,
        loader: Callable[[], Any],
        ttl_ms: int,
        plan: ReadPlan,
        refresh: bool,
        policy: StalePolicy | None,
    ) -> tuple[Any, Payload | None]:
        """Run the loader under the cross-process lock and store its value.

        Returns ``(value, payload)``, or ``(MISSING, payload)`` when another process filled
        the key while this one waited (unless ``refresh``, which always recomputes)."""
        keep_ms = ttl_ms + policy.stale_ms if policy is not None and ttl_ms else ttl_ms
        lock_key = self._lock_key(full)
        token: str | None = None
        gens: list[bytes] = []
        if not self._use_memory():
            deadline = time.monotonic() + self.settings.cache_lock_wait
            pause = 0.005
            try:
                while True:
                    token, gens = self._claim_lock(lock_key, plan.tags, keep_ms)
                    if token is not None and (not refresh):
                        # Another process may have stored the value and let go of the lock
                        # between our miss and this claim: look once more before loading.
                        found = self._fresh_entry(full, plan)
                        if found is not None:
                            self._unlock(lock_key, token)
                            return (MISSING, found[0])
                    if token is not None or time.monotonic() >= deadline:
                        break
                    # Another process holds the lock: wait for the value it will store.
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)
                    if not refresh:
                        found = self._fresh_entry(full, plan)
                        if found is not None:
                            return (MISSING, found[0])
            except CONNECTION_ERRORS as exc:
                self._fall_back(exc)
                gens = []
            except REDIS_ERRORS as exc:
                # Refused (full, read-only, a tag key of another type...): load without the
                # lock, and without the generations (so the value is not stored, below).
                self._error("lock", exc)
                gens = []
        lock = None if token is None else (lock_key, token)
        return self._load_and_store(full, key, loader, ttl_ms, plan, gens, policy, lock)

    def _load_and_store(
        self,
        full: str,
        key: str,
        loader: Callable[[], Any],
        ttl_ms: int,
        plan: ReadPlan,
        gens: list[bytes],
        policy: StalePolicy | None,
        lock: tuple[str, str] | None = None,
    ) -> tuple[Any, Payload]:
        """Run the loader and store its value (timed, and kept ``stale_ttl`` longer, under a
        policy), guarded by the tag generations ``gens`` read before it ran; then release
        ``lock`` (its key and token) when one is held (with the store, in one call, where
        the entry is untagged)."""
        held = lock
        try:
            start = time.perf_counter()
            value = call_loader(loader)
            payload = _codec.encode(value, key=key)
            keep_ms = ttl_ms
            if policy is not None and ttl_ms:
                payload = _codec.timed(payload, ttl_ms, time.perf_counter() - start)
                keep_ms = ttl_ms + policy.stale_ms
            if len(gens) == len(plan.tags):
                if held is not None and (not plan.tags) and (not self._cluster):
                    held = None  # released by the store, even if this caller is cancelled
                    self._store_and_unlock(full, payload, keep_ms, *lock)  # type: ignore[misc]
                else:
                    self._store({full: payload}, keep_ms, plan.tags, gens)
            elif self._fallback_since is not None:
                self._memory.set(full, payload, keep_ms / 1000, plan.tags)
            # Else the tags' generations were never read (Redis refused, or was away when
            # the loader started): in Redis this value could predate an invalidation, and
            # would be served after it. The caller gets it; the cache does not.
            return (value, payload)
        finally:
            if held is not None:
                self._unlock(*held)

    def _fresh_entry(self, full: str, plan: ReadPlan) -> Entry | None:
        """The entry at ``full`` if it is current and not expired (a stale copy is not)."""
        entry = self._lookup_one(full, plan)
        if entry is None or _codec.fresh_payload(entry[0]) is None:
            return None
        return entry

    # -- stale-while-revalidate (see _stale.py) ----------------------------------------------

    def _get_timed(
        self,
        full: str,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        plan: ReadPlan,
        type_: Any,
        l1: bool,
        policy: StalePolicy,
    ) -> Any:
        """The lookup of a call with a stale policy: a fresh value (refreshed in the
        background first when XFetch says so), an expired one inside the stale window
        (served, and refreshed in the background), or MISSING."""
        epoch = self._near_epoch()
        entry = self._lookup_one(full, plan)
        if entry is None:
            return MISSING
        timing = _codec.split_timed(entry[0])
        if timing is None:  # written without a policy: it expires in Redis
            return self._accept(full, entry, type_, key, epoch, l1)
        fresh_until, load_seconds, inner = timing
        now = time.time()
        if now < fresh_until:
            if policy.early(fresh_until, load_seconds, now):
                self._start_refresh(full, key, loader, ttl, plan, policy, fresh_until)
            return self._accept(full, (inner, entry[1]), type_, key, epoch, l1, fresh_until - now)
        if now >= fresh_until + policy.stale_ttl:
            return MISSING
        # Stale: served from Redis (or memory), never kept in L1.
        value = self._decode(inner, type_, key)
        if value is not MISSING:
            failed = self._refreshes.failed(full)
            self._stats.count(stale_hits=1, stale_if_error_serves=int(failed))
            self._start_refresh(full, key, loader, ttl, plan, policy, fresh_until)
        return value

    def _start_refresh(
        self,
        full: str,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        plan: ReadPlan,
        policy: StalePolicy,
        seen: float,
    ) -> None:
        """Start the background refresh of ``full`` (read with fresh-until ``seen``) unless
        one runs in this process."""
        if self._closed or not self._refreshes.start(full):
            return
        ttl_ms = resolve_ttl(ttl, self.default_ttl)
        work = functools.partial(self._revalidate, full, key, loader, ttl_ms, plan, policy, seen)
        try:
            self._workers.spawn(work, "perfkit-cache-refresh")
        except BaseException:
            self._refreshes.done(full, failed=False)
            raise

    def _revalidate(
        self,
        full: str,
        key: str,
        loader: Callable[[], Any],
        ttl_ms: int,
        plan: ReadPlan,
        policy: StalePolicy,
        seen: float,
    ) -> None:
        """A background refresh: run the loader once across every process (the one that
        takes the stampede lock; the others leave it) and store its value, which replaces
        the old one everywhere (L1 copies through the invalidation push). ``seen``: the
        fresh-until of the entry the caller read; one that changed since (refreshed by
        another process, invalidated, rewritten) is left alone."""
        lock_key = self._lock_key(full)
        lock: tuple[str, str] | None = None
        failed = False
        gens: list[bytes] = []
        try:
            if not self._use_memory():
                try:
                    token, gens = self._claim_lock(lock_key, plan.tags, ttl_ms + policy.stale_ms)
                    if token is None:
                        return  # another process refreshes it
                    lock = (lock_key, token)
                    # Another process may have refreshed it and let go of the lock between
                    # our read and this claim; or it was deleted or invalidated meanwhile.
                    current = self._lookup_one(full, plan)
                    timing = None if current is None else _codec.split_timed(current[0])
                    if timing is None or timing[0] != seen:
                        return
                except CONNECTION_ERRORS as exc:
                    self._fall_back(exc)  # refreshed in memory, below
                    gens = []
                except REDIS_ERRORS as exc:
                    self._error("lock", exc)
                    return
            self._stats.count(background_refreshes=1)
            try:
                held, lock = (lock, None)  # released by _load_and_store
                self._load_and_store(full, key, loader, ttl_ms, plan, gens, policy, held)
            except Exception as exc:
                failed = True
                self._refresh_failed(full, exc, policy)
        finally:
            if lock is not None:
                self._unlock(*lock)
            self._refreshes.done(full, failed=failed and policy.stale_if_error)

    def _refresh_failed(self, full: str, exc: Exception, policy: StalePolicy) -> None:
        """The loader of a background refresh raised: logged once, with the error (never the
        key: it may hold the call's arguments). With ``stale_if_error`` the old value is
        served on until its window ends; without, it is dropped, so that the next caller
        runs the loader and gets the error as it would without a stale window."""
        log.warning(
            "cache.refresh_failed",
            namespace=self.namespace,
            stale_kept=policy.stale_if_error,
            error=f"{type(exc).__name__}: {str(exc)[:300]}",
        )
        if not policy.stale_if_error:
            self._delete([full])

    def _claim_lock(
        self, lock_key: str, tags: tuple[str, ...], ttl_ms: int
    ) -> tuple[str | None, list[bytes]]:
        """Try to take the stampede lock: its token (None when another holds it); and the
        tags' current generations (made fresh where missing, to live as long as an entry of
        ``ttl_ms`` would), read before the loader runs."""
        if self._cluster:
            token = secrets.token_hex(16)
            taken = self._client.set(lock_key, token, nx=True, px=self._lock_ms)
            gens = self._current_gens(tags, (), ttl_ms) or []
            return (token if taken else None, gens)
        group = (tags, tag_ttl_ms(ttl_ms) if tags else 0)
        return self._send_claims(group, [lock_key])[0]

    def _send_claims(
        self, group: tuple[tuple[str, ...], int], lock_keys: list[str]
    ) -> list[tuple[str | None, list[bytes]]]:
        """Claim the locks ``lock_keys`` of entries guarded by the same tags (``group``:
        the tags and their generation keys' life), in one script call."""
        tags, tag_ms = group
        self._claims_sent += 1
        sweep = "1" if self._claims_sent % _SWEEP_EVERY == 1 else "0"
        head: list[str | int] = [self._tag_prefix, nonce(), self._lock_ms, tag_ms, sweep]
        token, *rest = self._claim_many(
            keys=[self._lock_set], args=[*head, len(lock_keys), *lock_keys, *tags]
        )
        held = token.decode()
        gens = rest[len(lock_keys) :]
        return [(held if taken else None, list(gens)) for taken in rest[: len(lock_keys)]]

    def _orphan_claim(
        self, group: object, lock_key: str, claimed: tuple[str | None, list[bytes]]
    ) -> None:
        """A lock taken for a caller cancelled meanwhile: released (in the background)."""
        if claimed[0] is not None and (not self._closed):
            self._workers.spawn(
                functools.partial(self._unlock, lock_key, claimed[0]), "perfkit-cache-unlock"
            )

    def _current_gens(
        self, tags: Sequence[str], wanted: Sequence[bytes], ttl_ms: int
    ) -> list[bytes] | None:
        """The current generation of each tag, made fresh where missing (the cluster path of
        the CLAIM_MANY and STORE_TAGGED scripts); None when one differs from ``wanted``."""
        values = self._mget([self._tag_prefix + tag for tag in tags])
        current = []
        for tag, value, want in zip(tags, values, wanted or [b""] * len(tags), strict=True):
            if value is None:
                if want:
                    return None
                fresh = new_generation()
                tag_ms = tag_ttl_ms(ttl_ms) or None
                if not self._client.set(self._tag_prefix + tag, fresh, nx=True, px=tag_ms):
                    return None  # another writer made one meanwhile: this value is late
                value = fresh
            elif want and value != want:
                return None
            current.append(value)
        return current

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        """MGET (coalesced with concurrent ones in the async service: see _batch.py),
        returning the call itself, which in the async service saves a coroutine frame on
        every hit."""
        if self._cluster or not keys:
            return self._mget_split(keys)
        return self._send_mget(keys)

    def _send_mget(self, keys: list[str]) -> list[bytes | None]:
        """MGET on a connection of the client's pool, as redis-py's pipelines send theirs:
        without ``execute_command``'s layers (its retry wrapper, option parsing and
        instrumentation), which cost a hit more CPU than perfkit's own work. Whatever is not
        a plain success goes through ``execute_command`` as before: a client that is not a
        plain pooled one, and every failure (after dropping the connection), so retries,
        errors and the fallback to memory are unchanged. The calls below are redis-py's
        public pool and connection API; ``get_connection()``'s signature is the one version
        dependency, gated in ``perfkit._compat.redis.direct_pool``. (Moved there, they would
        cost every hit a call frame.)"""
        pool = self._pool
        if pool is None:
            return self._client.execute_command("MGET", *keys)  # type: ignore[no-any-return]
        # Outside the try, as in execute_command: a pool that cannot connect raises once.
        conn = pool.get_connection()
        try:
            conn.send_command("MGET", *keys)
            values: list[bytes | None] = conn.read_response()
        except redis.ResponseError:
            # Refused (an ACL...): the reply was read whole, the connection is fine, and
            # redis-py would not retry it.
            pool.release(conn)
            raise
        except Exception:
            self._drop_connection(pool, conn)
            return self._client.execute_command("MGET", *keys)  # type: ignore[no-any-return]
        except BaseException:  # cancelled, interrupted: dropped the same way, not retried
            self._drop_connection(pool, conn)
            raise
        pool.release(conn)
        return values

    def _drop_connection(self, pool: Any, conn: Any) -> None:
        """Give back to ``pool`` a connection that may hold half a reply, disconnected so
        that no later command reads it."""
        try:
            conn.disconnect()
        finally:
            pool.release(conn)

    def _mget_split(self, keys: list[str]) -> list[bytes | None]:
        """MGET in a cluster, split by slot (the keys need not share one)."""
        if self._cluster_unset:
            self._set_up_cluster()
        if not keys:
            return []
        if len(keys) == 1:
            return [self._client.get(keys[0])]
        values: list[bytes | None] = self._client.mget_nonatomic(keys)
        return values

    def _unlock(self, lock_key: str, token: str) -> None:
        with contextlib.suppress(*REDIS_ERRORS):  # else the lease expires by itself
            if self._cluster:
                self._release(keys=[lock_key], args=[token])
            else:
                self._release_lock((lock_key, token, lock_key, 0, b""))

    def _store_and_unlock(
        self, full: str, payload: bytes, ttl_ms: int, lock_key: str, token: str
    ) -> None:
        """:meth:`_store` of one untagged entry and :meth:`_unlock` of its lock, in one
        script call (shared with concurrent ones)."""
        entry = _codec.entry_prefix([]) + payload
        self._apply(
            _ops.SET,
            functools.partial(self._release_storing, (lock_key, token, full, ttl_ms, entry)),
            functools.partial(self._store_in_memory, {full: payload}, ttl_ms, ()),
            functools.partial(self._drop_or_block, [full]),
        )
        if self._fallback_since is not None:
            self._unlock(lock_key, token)  # stored in memory: the lock is apart

    def _release_storing(self, release: tuple[str, str, str, int, bytes]) -> int:
        self._release_lock(release)
        self._near_evict([release[2]])
        return 1

    def _release_lock(self, release: tuple[str, str, str, int, bytes]) -> None:
        """Release a lock (its key and token), first storing the entry given with it
        (its key, ttl ms and bytes; empty bytes: none)."""
        self._send_releases(None, [release])

    def _send_releases(
        self, group: None, releases: list[tuple[str, str, str, int, bytes]]
    ) -> list[None]:
        args: list[str | int | bytes] = []
        for lock_key, token, _, ttl_ms, entry in releases:
            args += (lock_key, token, ttl_ms, entry)
        self._store_release(
            keys=[self._lock_set, *[full for _, _, full, _, _ in releases]], args=args
        )
        return [None] * len(releases)

    # -- fallback ---------------------------------------------------------------------------

    def _use_memory(self) -> bool:
        """Whether to serve from memory now; in fallback, probes Redis when a probe is due."""
        if self._cluster_unset:
            self._set_up_cluster()
        if self._fallback_since is None or not self._probe_due():
            return self._fallback_since is not None
        try:
            self._client.ping()
            self._replay(self._memory.take_pending())
            self._recovered()
            # Changes made in memory while the first replay ran.
            self._replay(self._memory.take_pending())
        except REDIS_ERRORS as exc:
            # Away, or back but refusing the changes (read-only): memory stays safe.
            self._fall_back(exc)
            return True
        return False

    def _set_up_cluster(self) -> None:
        """Let a redis RedisCluster discover its nodes before the service's first
        commands: when a fresh client's first commands run concurrently, one can find its
        new connection closed under it (``AttributeError: 'NoneType' object has no
        attribute 'writelines'`` from redis-py, about once in 30 fresh clusters here). If
        the cluster does not answer, the command that follows fails over as usual and the
        next one tries again."""
        try:
            self._client.initialize()
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError):
            return
        self._cluster_unset = False

    def _replay(self, pending: Pending) -> None:
        """Apply to Redis what this process changed while it was away (or, if that was too
        much to remember, drop the whole namespace)."""
        if not pending:
            return
        try:
            if pending.overflow:
                self._unlink_matching(self._prefix + "*", keep_internal=False)
            else:
                self._unlink(sorted(pending.keys))
                if pending.tags:
                    self._client.delete(*[self._tag_prefix + tag for tag in pending.tags])
                for pattern in pending.patterns:
                    self._unlink_matching(pattern, keep_internal=True)
        except BaseException:
            self._memory.give_back(pending)
            raise
        self._memory.applied()

    def _settle(self) -> None:
        """After a change was recorded in memory: if the service is back on Redis already,
        apply it now. A probe (another thread's, or the background worker's) may have
        replayed the pending changes and left fallback between this caller's choice of
        memory and its change being recorded; nothing would replay that change then, and
        other processes would read what it replaced until the key changed again. So when a
        change returns, it is in Redis, or pending while the service is in fallback (applied
        when Redis is back)."""
        if self._fallback_since is not None or not self._memory.pending:
            return
        pending = self._memory.take_pending()
        try:
            self._replay(pending)
        except CONNECTION_ERRORS as exc:
            self._fall_back(exc)  # given back: replayed when Redis is back
        except REDIS_ERRORS as exc:
            # Refused (read-only...): blocked here until the background worker applies it.
            self._error("replay", exc)
            self._block(
                sorted(pending.keys),
                sorted(pending.tags),
                sorted(pending.patterns),
                everything=pending.overflow,
            )

    def _wake_replayer(self) -> None:
        if self._replayer_wanted():
            self._replayer = spawn(self._apply_pending)

    def _apply_pending(self) -> None:
        """The background worker: while changes are pending (an outage, or changes Redis
        refused), try Redis every ``_REPLAY_EVERY`` seconds and apply them, whatever callers
        do; it ends when nothing is left."""
        while not self._replayer_done():
            time.sleep(_REPLAY_EVERY)
            try:
                if self._fallback_since is not None:
                    self._probe_soon()
                    self._use_memory()
                elif self._memory.blocking:
                    self._replay(self._memory.take_pending())
            except CONNECTION_ERRORS as exc:
                self._fall_back(exc)
            except REDIS_ERRORS:
                pass  # still refused (read-only...): counted once already; try again

    # -- health and stats -------------------------------------------------------------------

    def ping(self) -> None:
        """Return if the cache works normally, else raise (for health checks: every other
        method degrades instead). Raises the driver's error when Redis is away or refuses a
        write (full, read-only), ``CacheError`` while changes wait to reach Redis."""
        if self._fallback_since is not None or self._memory.blocking:
            raise CacheError(
                f"cache {self.namespace!r} is degraded: changes wait to be applied to Redis"
            )
        # A write, not PING: a full or read-only Redis answers PING.
        self._client.set(self._internal + "health", b"1", px=1000)

    def stats(self) -> CacheStats:
        """Counters of this service, the fallback state, and Redis's memory, key count and
        clients (``None`` while Redis is away)."""
        used_memory = keys = clients = None
        estimated = False
        if not self._use_memory():
            try:
                used_memory = self._info_total("memory", "used_memory")
                clients = self._info_total("clients", "connected_clients")
                keys, estimated = self._count_keys()
            except CONNECTION_ERRORS as exc:
                self._fall_back(exc)
            except REDIS_ERRORS as exc:
                self._error("stats", exc)
        return self._stats_struct(used_memory, keys, estimated, clients)

    def _info_total(self, section: str, field: str) -> int:
        """An INFO field, summed over the primaries of a cluster."""
        if not self._cluster:
            return int(self._client.info(section)[field])
        per_node = self._client.info(section, target_nodes=driver.RedisCluster.PRIMARIES)
        return sum(int(info[field]) for info in per_node.values())

    def _count_keys(self) -> tuple[int, bool]:
        total: int = (
            self._client.dbsize(target_nodes=driver.RedisCluster.PRIMARIES)
            if self._cluster
            else self._client.dbsize()
        )
        if total <= EXACT_KEY_COUNT_LIMIT:
            count = 0
            for key in self._client.scan_iter(match=self._prefix + "*", count=_SCAN_COUNT):
                count += not self._is_internal(key)
            return (count, False)
        seen = ours = 0
        for key in self._client.scan_iter(count=_SCAN_COUNT):
            seen += 1
            ours += key.startswith(self._prefix_bytes) and (not self._is_internal(key))
            if seen >= KEY_SAMPLE:
                break
        return (round(total * ours / max(seen, 1)), True)
