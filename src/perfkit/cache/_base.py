"""Everything a cache service does that is not I/O, shared by the sync and async services."""

from __future__ import annotations

import functools
import math
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.exceptions
import structlog

from perfkit import _telemetry
from perfkit._compat.redis import checked_handshake, one_quick_retry
from perfkit._errors import ArgumentError, ArgumentTypeError, ConfigError
from perfkit.cache import _codec, _ops
from perfkit.cache._codec import MISSING, Entry, Payload
from perfkit.cache._fallback import MemoryStore
from perfkit.cache._near import ClusterTracker, NearCache, Tracker, cluster_tracker
from perfkit.cache._stats import CacheCounters, CacheStats
from perfkit.settings import Settings, check_cache_namespace

log = structlog.get_logger("perfkit.cache")


# Errors that mean Redis is unreachable: the service falls back to memory on these.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    # A cluster that lost slots, or whose nodes all failed to answer in turn.
    redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterError,
)

# Anything Redis or the way to it can answer instead of a result. Outside CONNECTION_ERRORS
# (an outage) these are refusals: full (OOM), read-only, a key of another type, BUSY, protocol
# errors... Never raised to a caller (see docs/reliability.md).
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
)

CLUSTER_SCHEME = "redis+cluster://"


def redacted(exc: BaseException) -> str:
    """An error from Redis for the log, without the command it quotes: redis-py names a
    failed pipeline command with its arguments, which are cache values."""
    message = str(exc).rpartition(" of pipeline caused error: ")[2]
    return f"{type(exc).__name__}: {message[:300]}"


def new_generation() -> bytes:
    """A tag generation never used before (the cluster path; the Lua scripts use the
    server's clock and a random nonce the same way)."""
    return f"{time.time_ns()}.{secrets.token_hex(6)}".encode()


def nonce() -> str:
    """The random part of the generations a script may create (see ``_scripts``)."""
    return secrets.token_hex(6)


# How much longer than the entries written under it a tag's generation key lives.
TAG_MARGIN_MS = 60_000
# The longest ttl: Redis refuses an expiry past 2**63 - 1 ms after now; the tag margin
# and the clock must still fit below it.
MAX_TTL_MS = 2**62


# Internal keys live under "<namespace>:__perfkit__:", which user keys may not start with.
_INTERNAL = "__perfkit__"
_FORBIDDEN_TAG_CHARS = frozenset(chr(c) for c in range(32)) | {"\x7f"}
_PROBE_FIRST_DELAY = 0.25


def resolve_ttl(ttl: float | None, default: int) -> int:
    """Milliseconds to keep an entry (0 = no expiry) from a ``ttl`` in seconds: a ttl below
    1 ms keeps it 1 ms; one longer than Redis accepts is a ``ValueError``."""
    if ttl is None:
        return default * 1000
    if type(ttl) is int and 0 <= ttl <= MAX_TTL_MS // 1000:
        return ttl * 1000
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl < math.inf:
        raise ArgumentError(f"ttl must be a number of seconds >= 0 (0 = no expiry), got {ttl!r}")
    if ttl * 1000 > MAX_TTL_MS:
        raise ArgumentError(
            f"ttl must be at most {MAX_TTL_MS // 1000} seconds (what Redis accepts), got {ttl!r}"
        )
    return max(1, round(ttl * 1000)) if ttl else 0


def tag_ttl_ms(ttl_ms: int) -> int:
    """How long the generation key of a tag guarding an entry of ``ttl_ms`` lives (0: no
    expiry, like the entry)."""
    return ttl_ms + TAG_MARGIN_MS if ttl_ms else 0


def check_key(key: str) -> str:
    """``key`` if it may name a cache entry (a non-empty string outside the reserved
    prefix), else ``TypeError``/``ValueError`` naming it."""
    if not isinstance(key, str) or not key:
        raise ArgumentTypeError(f"cache key must be a non-empty string, got {key!r}")
    if key.startswith(_INTERNAL):
        raise ArgumentError(f"cache key {key!r} may not start with {_INTERNAL!r} (reserved)")
    return key


def validate_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """``tags`` as a tuple without duplicates; ``TypeError``/``ValueError`` naming a bad one."""
    if isinstance(tags, str):
        raise ArgumentTypeError(f"tags must be a list of strings, not the string {tags!r}")
    given = tags if type(tags) is tuple else tuple(tags)
    try:
        return _checked_tags(given)
    except TypeError:  # an unhashable element: check it uncached for the right message
        return _checked_tags.__wrapped__(given)


@functools.lru_cache(maxsize=4096)
def _checked_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    # Cached: the same tag tuples come back on every hit of a cached function.
    checked = tuple(dict.fromkeys(tags))
    for tag in checked:
        if not isinstance(tag, str) or not tag or _FORBIDDEN_TAG_CHARS.intersection(tag):
            raise ArgumentError(
                f"tag {tag!r} must be a non-empty string without control characters"
            )
    return checked


class SentinelURL(NamedTuple):
    """A parsed ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SentinelURL | None:
        """The parts of a sentinel URL, or None for any other URL."""
        if not url.startswith("redis+sentinel://"):
            return None
        parts = urlsplit(url)
        sentinels = []
        for item in parts.netloc.rpartition("@")[2].split(","):
            host, _, port = item.rpartition(":")
            try:
                sentinels.append((host, int(port)) if host else (item, 26379))
            except ValueError as exc:
                raise ConfigError(f"sentinel URL has a bad port in {item!r}") from exc
        path = [segment for segment in parts.path.split("/") if segment]
        if not path or len(path) > 2 or not all(host for host, _ in sentinels):
            raise ConfigError(
                "sentinel URL must look like "
                "redis+sentinel://host:26379[,host:26379...]/service_name[/db]"
            )
        try:
            db = int(path[1]) if len(path) == 2 else 0
        except ValueError as exc:
            raise ConfigError(f"sentinel URL has a bad DB number {path[1]!r}") from exc
        return cls(sentinels, path[0], db, parts.username or None, parts.password)

    def client(self, driver: Any, settings: Settings) -> Any:
        """A client of the current master, through ``driver.Sentinel`` (``redis`` or
        ``redis.asyncio``): it follows failovers by asking the sentinels again."""
        sentinel = driver.Sentinel(
            self.sentinels,
            sentinel_kwargs={
                "socket_timeout": settings.redis_socket_timeout,
                "socket_connect_timeout": settings.redis_connect_timeout,
            },
        )
        return sentinel.master_for(
            self.service,
            db=self.db,
            username=self.username,
            password=self.password,
            **client_kwargs(settings, driver),
        )

    def master_address(self, settings: Settings) -> dict[str, Any]:
        """Connection options of the current master, asked of the sentinels now."""
        sentinel = redis.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            self.sentinels,
            sentinel_kwargs={"socket_timeout": settings.redis_socket_timeout},
        )
        host, port = sentinel.discover_master(self.service)  # type: ignore[no-untyped-call,unused-ignore]
        return {
            "host": host,
            "port": port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
        }


def client_kwargs(settings: Settings, driver: Any, *, cluster: bool = False) -> dict[str, Any]:
    """Options for clients the service creates with ``driver`` (``redis`` or
    ``redis.asyncio``): short timeouts, one quick retry, and (but for a ``cluster`` client)
    a handshake whose reply is not Redis's counted as a connection error.

    The retry survives a pooled connection that went stale (a server restart); more retries
    would only make an outage slower to detect before falling back to memory.
    """
    return {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        **one_quick_retry(driver),
        **({} if cluster else checked_handshake(driver)),
    }


class ReadPlan:
    """What reading an entry guarded by ``tags`` needs, worked out once per tag tuple: the tag
    keys to MGET with the entry, and the header of an entry written under exactly these tags."""

    __slots__ = ("keys", "tags", "template")

    def __init__(self, tags: tuple[str, ...], tag_prefix: str) -> None:
        self.tags = tags
        self.keys = [tag_prefix + tag for tag in tags]
        self.template = _codec.header_template(tags)

    def header(self, gens: list[bytes | None]) -> bytes | None:
        """The header such an entry has while ``gens`` are its tags' generations (None when
        a generation is missing: no entry written under it is current)."""
        try:
            return self.template % tuple(gens)
        except TypeError:
            return None


# Read plans a service keeps (the distinct tag tuples its callers use) before starting over.
_PLAN_LIMIT = 4096
# Keys whose namespaced form a service keeps (see _key), and the longest kept: bounded memory.
_KEY_MEMO_LIMIT = 4096
_KEY_MEMO_LENGTH = 256


class BaseCacheService:
    """Keys, tags, serialization, stats and fallback state of a cache service."""

    def __init__(
        self,
        *,
        client: Any,
        owns_client: bool,
        sentinel: SentinelURL | None,
        namespace: str | None,
        default_ttl: int | None,
        settings: Settings | None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env(part="cache")
        self.namespace = check_cache_namespace(
            namespace if namespace is not None else self.settings.cache_namespace
        )
        self.default_ttl = self.settings.cache_default_ttl if default_ttl is None else default_ttl
        resolve_ttl(self.default_ttl, 0)
        kwargs = getattr(client, "connection_pool", None)
        if kwargs is not None and kwargs.connection_kwargs.get("decode_responses"):
            raise ConfigError(
                "the Redis client given to the cache has decode_responses=True; the cache "
                "stores bytes: pass a client created without it"
            )
        self._client = client
        self._cluster = isinstance(client, redis.RedisCluster | redis.asyncio.RedisCluster)
        # redis.asyncio's RedisCluster sets itself up on its first command; the service does
        # that first, once (see AsyncRedisService._set_up_cluster). Sync clients set up in
        # their constructor.
        self._cluster_unset = isinstance(client, redis.asyncio.RedisCluster)
        self._owns_client = owns_client
        self._sentinel = sentinel
        self._prefix = f"{self.namespace}:"
        self._internal = f"{self.namespace}:{_INTERNAL}:"
        self._tag_prefix = f"{self._internal}tag:"
        self._internal_bytes = self._internal.encode()
        self._prefix_bytes = self._prefix.encode()
        self._lock_prefix = f"{self._internal}lock:"
        # The stampede locks outside a cluster: one sorted set (see _scripts.CLAIM_MANY).
        self._lock_set = f"{self._internal}locks"
        self._lock_ms = round(self.settings.cache_lock_ttl * 1000)
        self._stats = CacheCounters()
        self._plans: dict[tuple[str, ...], ReadPlan] = {}
        self._fulls: dict[str, str] = {}  # key -> namespaced key, see _key
        self._memory = MemoryStore(
            self.settings.cache_fallback_max_entries, self.settings.cache_fallback_ttl
        )
        self._near: NearCache | None = None
        self._tracker: Tracker | ClusterTracker | None = None
        self._state_lock = threading.Lock()
        self._fallback_since: float | None = None
        self._probe_delay = _PROBE_FIRST_DELAY
        self._next_probe = 0.0
        # The background worker applying pending changes (see _wake_replayer).
        self._replaying = False
        self._closed = False

    @property
    def client(self) -> Any:
        """The redis-py client the service talks through."""
        return self._client

    # -- keys -------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        # Every read, L1 hits included, builds a key: the full keys of recent (short) ones
        # are kept, so a hit neither checks nor allocates one, nor hashes a new string.
        full = self._fulls.get(key) if type(key) is str else None
        if full is None:
            full = self._prefix + check_key(key)
            if type(key) is str and len(key) <= _KEY_MEMO_LENGTH:
                if len(self._fulls) >= _KEY_MEMO_LIMIT:
                    self._fulls.clear()
                self._fulls[key] = full
        return full

    def _read_plan(self, tags: Iterable[str]) -> ReadPlan:
        """The read plan of ``tags`` (validated the first time a tuple is seen)."""
        try:
            plan = self._plans.get(tags) if type(tags) is tuple else None
        except TypeError:  # an unhashable tag: validate_tags names it
            plan = None
        if plan is None:
            plan = ReadPlan(validate_tags(tags), self._tag_prefix)
            if len(self._plans) >= _PLAN_LIMIT:
                self._plans.clear()
            self._plans[tags if type(tags) is tuple else plan.tags] = plan
        return plan

    def _keys(self, keys: Iterable[str]) -> list[str]:
        if isinstance(keys, str):
            raise ArgumentTypeError(f"expected a list of keys, not the string {keys!r}")
        return [self._key(key) for key in keys]

    def _pattern(self, pattern: str) -> str:
        if not isinstance(pattern, str) or not pattern:
            raise ArgumentError(f"pattern must be a non-empty glob string, got {pattern!r}")
        return self._prefix + pattern

    def _is_internal(self, full_key: bytes) -> bool:
        # Bytes: a key another client wrote need not be UTF-8.
        return full_key.startswith(self._internal_bytes)

    def _lock_key(self, full_key: str) -> str:
        return self._lock_prefix + full_key[len(self._prefix) :]

    # -- L1 near cache ----------------------------------------------------------------------

    def _start_l1(self, l1: NearCache | bool) -> None:
        if l1 is False:
            return
        near = self._near = NearCache() if l1 is True else l1
        self._stats.fold_l1_hits(lambda: near.hits)
        if self._cluster:
            self._tracker = cluster_tracker(
                self._client,
                near,
                self._prefix,
                self._tag_prefix,
                self.settings.redis_retry_max_delay,
            )
            return
        sentinel, settings = self._sentinel, self.settings
        pool_kwargs = dict(self._client.connection_pool.connection_kwargs)

        def address() -> dict[str, Any]:
            # Behind sentinels, the master may have moved since the last connection.
            if sentinel is None:
                return pool_kwargs
            return {**pool_kwargs, **sentinel.master_address(settings)}

        self._tracker = Tracker(
            self._near,
            address,
            self._prefix,
            self._tag_prefix,
            self.settings.redis_retry_max_delay,
            ignore=frozenset({self._lock_set}),
        )

    def _stop_l1(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None

    def wait_l1_ready(self, timeout: float = 5.0) -> bool:
        """Block until the L1 listener is tracking (True), or ``timeout`` passed (False).
        Until then the near cache is bypassed; this is for tests and start-up checks."""
        return self._tracker is not None and self._tracker.connected.wait(timeout)

    def _near_get(self, full: str, type_: Any) -> Any:
        """The L1 value at ``full`` (a hit is counted by the near cache, and folded into the
        stats when they are read), or MISSING."""
        near = self._near
        # While changes wait to be applied, L1 could hold (or learn) what they replace.
        if near is None or self._fallback_since is not None or self._memory.blocking:
            return MISSING
        return near.get(full, type_)

    def _cached_hit(self, key: str, type_: Any) -> Any:
        """``@cached_query``'s L1 hit, or MISSING: a plain call, so a hit costs no
        coroutine, nor the loader closure of a miss. ``key`` and the call's tags were
        checked by the decorator (``check_key``, ``validate_tags``) when it built them.
        The fast lane of ``_load`` while no telemetry hook listens (else MISSING: the
        call goes through ``_load``, which traces it)."""
        near = self._near
        # _near_get's checks inline: a call is a good part of an L1 hit.
        if (
            near is None
            or _telemetry.cache_operation is not None
            or self._fallback_since is not None
            or self._memory.blocking
        ):
            return MISSING
        return near.get(self._fulls.get(key) or self._prefix + key, type_)

    def _near_epoch(self) -> int:
        return 0 if self._near is None else self._near.epoch

    def _near_evict(self, fulls: list[str]) -> None:
        if self._near is not None:
            self._near.evict(fulls)

    def _accept(
        self,
        full: str,
        entry: Entry,
        type_: Any,
        key: str,
        epoch: int,
        l1: bool = True,
        fresh_for: float | None = None,
    ) -> Any:
        """The value of an entry read from Redis (MISSING if it does not decode), kept in
        the near cache when no invalidation arrived since ``epoch``, for no longer than it
        stays fresh (``fresh_for`` seconds, else what a timed payload says)."""
        payload, pairs = entry
        value = self._decode(payload, type_, key)
        near = self._near
        if (
            l1
            and near is not None
            and value is not MISSING
            and self._fallback_since is None
            and not self._memory.blocking
        ):
            if fresh_for is None:
                fresh_for = _codec.fresh_for(payload)
            if fresh_for is None or fresh_for > 0:
                near.put(full, type_, value, pairs, len(payload), epoch, fresh_for)
        return value

    def _blocked(self, full: str, entry: Entry) -> bool:
        """Whether a change Redis refused (not applied yet) covers this entry."""
        return self._memory.blocks(full, [tag for tag, _ in entry[1]])

    def _block(
        self,
        keys: Sequence[str] = (),
        tags: Sequence[str] = (),
        patterns: Sequence[str] = (),
        *,
        everything: bool = False,
    ) -> None:
        """Redis refused a change it is still reachable for (read-only, full...): serve misses
        for what it covers, in this process, until the background worker applies it."""
        self._memory.refused(keys, tags, patterns, everything=everything)
        if self._near is not None:
            self._near.clear()
        self._wake_replayer()

    def _wake_replayer(self) -> None:
        """Start the background worker that applies pending changes (one per service)."""
        raise NotImplementedError

    def _replayer_done(self) -> bool:
        """Whether the background worker may stop (claims the stop: a later change starts a
        new one): nothing pending, or the service closed."""
        with self._state_lock:
            if self._closed or (self._fallback_since is None and not self._memory.blocking):
                self._replaying = False
                return True
            return False

    def _replayer_wanted(self) -> bool:
        """Whether to start the background worker now (claims the start)."""
        with self._state_lock:
            if self._replaying or self._closed:
                return False
            self._replaying = True
            return True

    def _memory_entry(self, full: str) -> Entry | None:
        payload = self._memory.get(full)
        return None if payload is None else (payload, [])

    def _store_in_memory(self, payloads: dict[str, bytes], ttl_ms: int, tags: Sequence[str]) -> int:
        """Store's memory path (Redis is down): kept here and replayed as deletes; returns
        how many entries."""
        self._near_evict(list(payloads))
        for full, payload in payloads.items():
            self._memory.set(full, payload, ttl_ms / 1000, tags)
        return len(payloads)

    def _drop_memory(self) -> int:
        """Clear's memory path: empty the memory store, and drop the whole namespace once
        Redis is back."""
        self._memory.clear()
        self._memory.pending.overflow = True
        return 0

    # -- values -----------------------------------------------------------------------------

    def _encode_many(self, mapping: Mapping[str, object]) -> dict[str, bytes]:
        """Full key -> payload, all encoded before anything is written."""
        return {self._key(key): _codec.encode(value, key=key) for key, value in mapping.items()}

    def _store_args(
        self, ttl_ms: int, tags: Sequence[str], gens: Sequence[bytes], payloads: Iterable[bytes]
    ) -> list[Any]:
        return [
            self._tag_prefix,
            nonce(),
            ttl_ms,
            tag_ttl_ms(ttl_ms),
            len(tags),
            *tags,
            *gens,
            *payloads,
        ]

    def _decode(self, payload: Payload, type_: Any, key: str) -> Any:
        """The value in ``payload``, or MISSING when it no longer fits ``type_``."""
        try:
            if type_ is None:
                return _codec.plain_decoder.decode(payload)
            return _codec.decoder_for(type_).decode(payload)
        except Exception as error:  # msgspec.DecodeError / ValidationError
            exc = error
            # Written with a stale window (its first byte is an invalid MessagePack opcode:
            # only a timed payload gets here). Served while fresh by a caller without one.
            timing = _codec.split_timed(payload)
            if timing is not None:
                if time.time() >= timing[0]:
                    return MISSING
                decoder = _codec.plain_decoder if type_ is None else _codec.decoder_for(type_)
                try:
                    return decoder.decode(timing[2])
                except Exception as inner:
                    exc = inner
            self._stats.count(errors=1)
            log.warning("cache.decode_failed", key=key, error=str(exc))
            return MISSING

    # -- fallback state ---------------------------------------------------------------------

    @property
    def fallback_active(self) -> bool:
        """True while the service serves from memory because Redis is unreachable."""
        return self._fallback_since is not None

    def _fall_back(self, exc: BaseException) -> None:
        self._stats.count(errors=1)
        with self._state_lock:
            now = time.monotonic()
            self._next_probe = now + self._probe_delay
            self._probe_delay = min(self._probe_delay * 2, self.settings.redis_retry_max_delay)
            if self._fallback_since is not None:
                return
            self._fallback_since = time.time()
        # Changes made from now on must reach Redis when it is back, even if no call comes.
        self._wake_replayer()
        log.warning(
            "cache.fallback.activated",
            namespace=self.namespace,
            error=redacted(exc),
        )

    def _probe_soon(self) -> None:
        """Let the next probe run now (the background worker probes on its own clock)."""
        with self._state_lock:
            self._next_probe = min(self._next_probe, time.monotonic())

    def _probe_due(self) -> bool:
        """In fallback, whether it is time to try Redis again (claims the probe)."""
        with self._state_lock:
            if self._fallback_since is None or time.monotonic() < self._next_probe:
                return False
            # Claim this probe: other callers keep using memory until it is decided.
            self._next_probe = time.monotonic() + self.settings.redis_socket_timeout * 4
            return True

    def _recovered(self) -> None:
        with self._state_lock:
            since = self._fallback_since
            self._fallback_since = None
            self._probe_delay = _PROBE_FIRST_DELAY
        self._memory.clear()
        if since is not None:
            log.info(
                "cache.fallback.recovered",
                namespace=self.namespace,
                outage_seconds=round(time.time() - since, 3),
            )

    def _add(self, operation: _ops.Operation, result: Any) -> None:
        """The stats layer: add what an operation's call returned (a count) to the counter
        it declares (``adds``)."""
        if operation.adds is not None and result:
            self._stats.count(**{operation.adds: int(result)})

    def _error(self, operation: str, exc: BaseException) -> None:
        """A Redis error that is not an outage: counted and logged, never raised."""
        self._stats.count(errors=1)
        log.error("cache.redis_error", operation=operation, error=redacted(exc))

    # -- stats ------------------------------------------------------------------------------

    def reset_stats(self) -> None:
        """Zero the hit/miss/set/delete/error counters and the latency histogram."""
        self._stats.reset()

    def _stats_struct(
        self,
        used_memory: int | None,
        keys: int | None,
        keys_estimated: bool,
        connected_clients: int | None,
    ) -> CacheStats:
        # The counters of CacheCounters.count come over by name (COUNTED): a new one is
        # its CacheStats field alone. The fields below are read from elsewhere.
        stats = self._stats
        hits, misses = stats.hits, stats.misses
        avg, p95 = stats.latency()
        near = self._near
        return CacheStats(
            **stats.counted(),
            hits=hits,
            misses=misses,
            hit_rate=hits / (hits + misses) if hits + misses else 0.0,
            avg_latency_ms=round(avg, 4),
            p95_latency_ms=p95,
            fallback_active=self._fallback_since is not None,
            fallback_since=self._fallback_since,
            fallback_entries=len(self._memory),
            used_memory=used_memory,
            keys=keys,
            keys_estimated=keys_estimated,
            connected_clients=connected_clients,
            l1_active=near is not None and near.enabled,
            l1_hits=0 if near is None else near.hits,
            l1_entries=0 if near is None else len(near),
            l1_flushes=0 if near is None else near.flushes,
        )


# Above this many keys in the DB, ``keys`` is estimated from a sample instead of counted.
EXACT_KEY_COUNT_LIMIT = 10_000
KEY_SAMPLE = 2_000
