"""The L1 near cache: decoded values in process memory, in front of Redis.

Kept consistent across processes by Redis's own invalidation: a listener thread holds a
RESP3 connection with ``CLIENT TRACKING on BCAST PREFIX <namespace>:``, so Redis pushes the
name of every key of the namespace that anyone changes -- entries and tag generations alike.
An entry stops being served when its key is pushed, or when the generation of one of its
tags is (the generations an entry was written with are compared with the ones this process
last read, which the pushes keep current, so a hit needs no round trip). While the listener
is not connected the near cache is empty and bypassed.

Races: a value read from Redis is only kept if no invalidation arrived since before the read
(an epoch counter), so a push that overtakes the read can never leave an old value behind.

Fail safe: a push the listener cannot read (a key that is not UTF-8, an unexpected shape) and
any gap in the stream (the connection lost, a FLUSHALL) empty the near cache, counted in
``flushes``: it cannot know which entries the lost invalidations were about.

On a Redis Cluster (``ClusterTracker``) the same listener runs once per node, primaries and
replicas alike, each with the same BCAST tracking: a node pushes the keys changed on it,
whichever node served our read, and a replica pushes what it replicates, so a replica that is
promoted was tracked before it took its first write. The near cache is on only while every
node of the current topology is tracked; any node's connection dropping flushes it.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis
import redis.connection
import structlog

from perfkit._compat.redis import checked_handshake, on_invalidation
from perfkit.cache._codec import MISSING

log = structlog.get_logger("perfkit.cache")
_monotonic = time.monotonic  # bound once: read on every L1 hit


class _Near:
    __slots__ = ("checked", "expires", "pairs", "size", "type_", "value")

    def __init__(
        self, value: Any, type_: Any, pairs: list[tuple[str, bytes]], size: int, expires: float
    ) -> None:
        self.value = value
        self.type_ = type_
        self.pairs = pairs
        self.size = size
        self.expires = expires
        # The NearCache.gens_version its tags last matched at (-1: not yet).
        self.checked = -1


class NearCache:
    """A bounded (entries and bytes) LRU of decoded values with TTLs and tag generations.

    Values are shared between callers: treat what the cache returns as read-only (frozen
    Structs and tuples make that explicit).
    """

    def __init__(
        self, max_entries: int = 10_000, max_bytes: int = 64 * 2**20, ttl: float = 60.0
    ) -> None:
        if max_entries <= 0 or max_bytes <= 0 or ttl <= 0:
            raise ValueError(
                f"near cache limits must be > 0, got max_entries={max_entries}, "
                f"max_bytes={max_bytes}, ttl={ttl}"
            )
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._entries: OrderedDict[str, _Near] = OrderedDict()
        self._gens: dict[str, bytes] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.epoch = 0
        # Bumped after every change of _gens, so a hit skips comparing its tags while none
        # changed since they last matched.
        self.gens_version = 0
        self.enabled = False
        self.hits = 0
        self.flushes = 0

    # -- reads ------------------------------------------------------------------------------

    def get(self, full: str, type_: Any) -> Any:
        """The value, or MISSING when absent, expired, of another type or a tag moved on.

        No lock: every step is one dict operation, atomic under the GIL, so a hit is
        ordered before or after a concurrent eviction as a whole (an entry still in the
        dict when looked up was current then). Writers take the lock among themselves and
        never iterate the dict while a reader may reorder it."""
        entry = self._entries.get(full)
        if entry is None or entry.type_ is not type_ or not self.enabled:
            return MISSING
        if entry.expires <= _monotonic():
            self._discard(full, entry)
            return MISSING
        # Read before comparing: a change of _gens during the loop bumps it past the stamp.
        version = self.gens_version
        if entry.checked != version:
            gens = self._gens
            for tag, gen in entry.pairs:  # a loop, not any(): no generator per hit
                if gens.get(tag) != gen:
                    self._discard(full, entry)
                    return MISSING
            entry.checked = version
        try:  # noqa: SIM105 (not contextlib.suppress: that is an object per hit)
            self._entries.move_to_end(full)
        except KeyError:
            pass  # evicted meanwhile: this hit came first
        # Not under the lock: CPython (with a GIL) switches threads only at calls and
        # backward jumps, never inside this increment.
        self.hits += 1
        return entry.value

    def _discard(self, full: str, entry: _Near) -> None:
        with self._lock:
            if self._entries.get(full) is entry:
                self._drop(full)

    # -- writes (only values read from Redis since ``epoch``) --------------------------------

    def put(
        self,
        full: str,
        type_: Any,
        value: Any,
        pairs: list[tuple[str, bytes]],
        size: int,
        epoch: int,
        ttl: float | None = None,
    ) -> None:
        """Keep ``value`` for the near cache's ttl, or ``ttl`` seconds if shorter (an entry
        with a stale window must not outlive its freshness here)."""
        lifetime = self.ttl if ttl is None else min(ttl, self.ttl)
        with self._lock:
            if not self.enabled or epoch != self.epoch or size > self.max_bytes:
                return
            self._drop(full)
            self._entries[full] = _Near(value, type_, pairs, size, time.monotonic() + lifetime)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def learn(self, gens: dict[str, bytes | None], epoch: int) -> None:
        """Record tag generations read from Redis (None: the tag has none yet)."""
        with self._lock:
            if not self.enabled or epoch != self.epoch:
                return
            known = self._gens
            changed = False
            for tag, gen in gens.items():
                if known.get(tag) == gen:
                    continue
                changed = True
                if gen is None:
                    known.pop(tag, None)
                else:
                    known[tag] = gen
            if changed:
                self.gens_version += 1  # after the change: see get

    # -- invalidation -----------------------------------------------------------------------

    def evict(self, fulls: list[str]) -> None:
        with self._lock:
            self.epoch += 1
            for full in fulls:
                self._drop(full)

    def forget_tags(self, tags: list[str]) -> None:
        with self._lock:
            self.epoch += 1
            for tag in tags:
                self._gens.pop(tag, None)
            self.gens_version += 1  # after the change: see get

    def evict_matching(self, full_pattern: str) -> None:
        with self._lock:
            self.epoch += 1
            # A snapshot first (one C call): a reader may reorder the dict meanwhile.
            for full in [k for k in list(self._entries) if fnmatch.fnmatchcase(k, full_pattern)]:
                self._drop(full)

    def clear(self, *, enabled: bool | None = None) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.clear()
            self._gens.clear()
            self.gens_version += 1
            self._bytes = 0
            if enabled is not None:
                self.enabled = enabled

    def flush(self, *, enabled: bool | None = None) -> None:
        """Empty the cache because invalidations may have been lost (counted)."""
        self.flushes += 1
        self.clear(enabled=enabled)

    def _drop(self, full: str) -> None:
        entry = self._entries.pop(full, None)
        if entry is not None:
            self._bytes -= entry.size

    def __len__(self) -> int:
        return len(self._entries)


class Tracker:
    """The listener thread: Redis's invalidation pushes for ``prefix`` into ``near``."""

    # A silent network partition is noticed within about two of these.
    PING_EVERY = 1.0

    def __init__(
        self,
        near: NearCache,
        address: Callable[[], dict[str, Any]],
        prefix: str,
        tag_prefix: str,
        retry_max_delay: float,
        *,
        on_up: Callable[[Tracker], None] | None = None,
        on_down: Callable[[Tracker], None] | None = None,
        name: str = "perfkit-l1-tracker",
        ignore: frozenset[str] = frozenset(),
    ) -> None:
        self.near = near
        # Keys under ``prefix`` never held in L1 (the lock set): their pushes are skipped,
        # so that a lock taken or released does not count as an invalidation.
        self._ignore = ignore
        self._address = address
        self._prefix = prefix
        self._tag_prefix = tag_prefix
        self._retry_max_delay = retry_max_delay
        # Alone, the tracker turns the near cache on and off; one of a ClusterTracker's
        # reports to it instead, which turns it on only while every node is tracked.
        self._on_up = on_up or (lambda _: near.clear(enabled=True))
        self._on_down = on_down or (lambda _: near.flush(enabled=False))
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.name = name  # logged: on a cluster, it names the node
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            self._thread.join(5)

    def _connect(self) -> Any:  # a redis-py Connection (untyped API)
        conn = _connection(self._address())
        conn.connect()
        on_invalidation(conn, self._on_push)
        conn.send_command("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", self._prefix)
        if conn.read_response() not in (b"OK", "OK"):
            raise redis.ConnectionError("CLIENT TRACKING was refused")
        return conn

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._connect()
                # Anything cached before tracking was on may have changed unseen.
                self._on_up(self)
                self.connected.set()
                if delay > 0.1:
                    log.info("cache.l1.tracking_restored", prefix=self._prefix, listener=self.name)
                delay = 0.1
                self._listen(conn)
            except Exception as exc:  # any: the thread ends only when closed
                if self.connected.is_set() or delay == 0.1:
                    log.warning(
                        "cache.l1.tracking_lost",
                        prefix=self._prefix,
                        listener=self.name,
                        error=f"{type(exc).__name__}: {exc}",
                    )
            finally:
                self.connected.clear()
                # A gap in the push stream (or the end): invalidations may be lost.
                self._on_down(self)
                if conn is not None:
                    conn.disconnect()
            self._stop.wait(delay)
            delay = min(delay * 2, self._retry_max_delay)

    def _listen(self, conn: Any) -> None:
        last_ping = time.monotonic()
        awaiting_pong = False
        while not self._stop.is_set():
            if conn.can_read(timeout=0.5):
                reply = conn.read_response(push_request=True)
                if reply in (b"PONG", "PONG"):
                    awaiting_pong = False
            now = time.monotonic()
            if now - last_ping >= self.PING_EVERY:
                if awaiting_pong:
                    raise redis.TimeoutError("no PONG on the tracking connection")
                conn.send_command("PING")
                awaiting_pong = True
                last_ping = now

    def _on_push(self, response: list[Any]) -> None:
        try:
            self._invalidate(response[1])
        except Exception as exc:
            self.near.flush()
            log.warning("cache.l1.push_unreadable", error=type(exc).__name__)

    def _invalidate(self, keys: list[bytes] | None) -> None:
        if keys is None:  # FLUSHDB / FLUSHALL
            self.near.flush()
            return
        fulls, tags = [], []
        for raw in keys:
            # A key another client wrote need not be UTF-8: that raises, and flushes.
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if key.startswith(self._tag_prefix):
                tags.append(key[len(self._tag_prefix) :])
            elif key not in self._ignore:
                fulls.append(key)
        if tags:
            self.near.forget_tags(tags)
        if fulls:
            self.near.evict(fulls)


# Options of a driver's connections that are its own machinery, not the way to the server.
_DRIVER_INTERNALS = frozenset(
    {
        "retry",
        "redis_connect_func",
        "event_dispatcher",
        "himport_registry",
        "maint_notifications_config",
        "maint_notifications_pool_handler",
        "oss_cluster_maint_notifications_handler",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
    }
)


def _connection(kwargs: dict[str, Any], socket_timeout: float = 5.0) -> Any:
    """A sync RESP3 connection to the server described by a (sync or asyncio) pool's
    connection kwargs."""
    cls: type[redis.Connection] = redis.Connection
    if kwargs.get("path"):
        cls = redis.UnixDomainSocketConnection  # type: ignore[assignment]
    elif kwargs.get("ssl") or any(k.startswith("ssl_") for k in kwargs):
        cls = redis.SSLConnection
    accepted = set(inspect.signature(cls.__init__).parameters)
    accepted |= set(inspect.signature(redis.connection.AbstractConnection.__init__).parameters)
    options = {k: v for k, v in kwargs.items() if k in accepted and k not in _DRIVER_INTERNALS}
    options["protocol"] = 3
    options["socket_timeout"] = socket_timeout
    options.update(checked_handshake(redis))
    return cls(**options)


Node = tuple[str, int]


class ClusterTracker:
    """A :class:`Tracker` per node of a Redis Cluster, following its topology.

    The nodes are read with ``CLUSTER NODES`` every ``DISCOVER_EVERY`` seconds, and at once
    when a node's push connection drops. Every node is tracked, replicas too (a replica
    pushes the keys it replicates: when it is promoted, its first writes reach us), except
    a failed node that owns no slots (a replica that died, or a primary whose replica took
    over). A failed primary that still owns slots stays required: its slots are down, and the
    near cache stays off until it is back and tracked.

    The near cache is on only while every required node has tracking on; a node's
    connection dropping flushes it (its invalidations since are lost), and a node we did not
    track yet turns it off until tracking there is on."""

    DISCOVER_EVERY = 0.5

    def __init__(
        self,
        near: NearCache,
        options: dict[str, Any],
        seeds: list[Node],
        remap: Callable[[Node], Node] | None,
        prefix: str,
        tag_prefix: str,
        retry_max_delay: float,
    ) -> None:
        self.near = near
        self._options = {k: v for k, v in options.items() if k not in ("host", "port")}
        self._seeds = seeds
        self._remap = remap
        self._prefix = prefix
        self._tag_prefix = tag_prefix
        self._retry_max_delay = retry_max_delay
        # Both under _lock: the trackers of the current topology, and those tracking now.
        self._trackers: dict[Node, Tracker] = {}
        self._up: set[Node] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perfkit-l1-cluster", daemon=True)
        self._thread.start()

    @property
    def nodes(self) -> list[Node]:
        """The nodes tracked (or being connected to) now."""
        with self._lock:
            return sorted(self._trackers)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    def _run(self) -> None:
        conn = None
        try:
            while not self._stop.is_set():
                try:
                    conn, nodes = self._discover(conn)
                    if nodes is not None:
                        self._follow(nodes)
                except Exception as exc:  # any: the thread ends only when closed
                    log.warning("cache.l1.discovery_failed", error=f"{type(exc).__name__}: {exc}")
                self._wake.wait(self.DISCOVER_EVERY)
                self._wake.clear()
        finally:
            if conn is not None:
                conn.disconnect()
            with self._lock:
                trackers = list(self._trackers.values())
                self._trackers.clear()
                self._up.clear()
                self.near.clear(enabled=False)
                self.connected.clear()
            for tracker in trackers:
                tracker.close(wait=False)
            for tracker in trackers:
                tracker.close()

    def _discover(self, conn: Any) -> tuple[Any, set[Node] | None]:
        """The nodes to track, read from the first node that answers (None: none did)."""
        with self._lock:
            known = list(self._trackers)
        candidates: list[Node | None] = [None] if conn is not None else []
        candidates += [*known, *(seed for seed in self._seeds if seed not in known)]
        for node in candidates:
            try:
                if node is not None:
                    conn = _connection({**self._options, "host": node[0], "port": node[1]}, 1.0)
                    conn.connect()
                conn.send_command("CLUSTER", "NODES")
                reply = conn.read_response()
                text = reply.decode() if isinstance(reply, bytes) else str(reply)
                return conn, self._parse(text, conn.host)
            except (redis.RedisError, OSError, ValueError):
                if conn is not None:
                    conn.disconnect()
                conn = None
        # No node answered: the trackers keep what they have, and report what they lose.
        return None, None

    def _parse(self, text: str, host: str) -> set[Node]:
        nodes = set()
        for line in text.splitlines():
            # <id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch> <link>
            # [<slot or range>...]
            fields = line.split()
            if len(fields) < 8:
                continue
            flags = set(fields[2].split(","))
            if flags & {"handshake", "noaddr"} or ("fail" in flags and len(fields) == 8):
                continue
            ip, _, port = fields[1].partition("@")[0].rpartition(":")
            node = (ip or host, int(port))  # a node that met no other omits its own ip
            nodes.add(self._remap(node) if self._remap is not None else node)
        return nodes

    def _follow(self, nodes: set[Node]) -> None:
        """Track ``nodes`` and no others."""
        with self._lock:
            gone = [self._trackers.pop(node) for node in list(self._trackers) if node not in nodes]
            self._up &= nodes
            new = nodes - self._trackers.keys()
            if new and self.near.enabled:
                # A node we do not track yet may take writes we would not hear of.
                self.near.flush(enabled=False)
            for node in new:
                self._trackers[node] = Tracker(
                    self.near,
                    functools.partial(dict, self._options, host=node[0], port=node[1]),
                    self._prefix,
                    self._tag_prefix,
                    self._retry_max_delay,
                    on_up=functools.partial(self._node_up, node),
                    on_down=functools.partial(self._node_down, node),
                    name=f"perfkit-l1-tracker-{node[0]}:{node[1]}",
                )
            self._settle(flush=False)
        for tracker in gone:
            tracker.close(wait=False)  # its drop is not reported: it is no longer current

    def _node_up(self, node: Node, tracker: Tracker) -> None:
        with self._lock:
            if self._trackers.get(node) is tracker:
                self._up.add(node)
                # Anything cached before this node's tracking was on may have changed unseen.
                self._settle(flush=True)

    def _node_down(self, node: Node, tracker: Tracker) -> None:
        with self._lock:
            if self._trackers.get(node) is not tracker or node not in self._up:
                return  # a node no longer current, or a connection attempt that failed
            self._up.discard(node)
            self.connected.clear()  # first: whoever sees the flush must not see it ready
            self.near.flush(enabled=False)
        self._wake.set()  # a failover or a reshard may be why: read the topology now

    def _settle(self, *, flush: bool) -> None:
        """Turn the near cache on when every node is tracked (emptied first if ``flush``),
        off otherwise. Called under _lock."""
        ready = bool(self._trackers) and self._up >= self._trackers.keys()
        if flush or ready != self.near.enabled:
            self.near.clear(enabled=ready)
        if ready:
            self.connected.set()
        else:
            self.connected.clear()


def cluster_tracker(
    client: Any, near: NearCache, prefix: str, tag_prefix: str, retry_max_delay: float
) -> ClusterTracker:
    """A ClusterTracker for a (sync or asyncio) ``RedisCluster`` client: its start-up nodes
    as seeds, its connection options and its address remapping."""
    manager = client.nodes_manager
    seeds = list(manager.startup_nodes.values())
    # A sync node holds a client whose pool has the full options; an asyncio node holds them.
    pool = getattr(getattr(seeds[0], "redis_connection", None), "connection_pool", None)
    options = pool.connection_kwargs if pool is not None else seeds[0].connection_kwargs
    return ClusterTracker(
        near,
        dict(options),
        [(node.host, int(node.port)) for node in seeds],
        manager.address_remap,
        prefix,
        tag_prefix,
        retry_max_delay,
    )
