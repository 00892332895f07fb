"""Cache warming: named warmers run CACHE_WARMUP_DELAY after start, then every
CACHE_WARMUP_INTERVAL, and on demand; one failing warmer never stops the others.

With a :class:`WarmLease` (the kit sets one when it has a Redis) each scheduled warm-up
runs once per interval across every process and host of the app: the process that takes
the lease warms, the others skip that round. The manual :meth:`CacheWarmer.warm` always
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import structlog

from perfkit import _defaults
from perfkit._acompat import is_async_callable, resolve, resolve_blocking
from perfkit._errors import ArgumentError
from perfkit.settings import Settings

__all__ = [
    "AsyncCacheWarmer",
    "CacheWarmer",
    "WarmLease",
    "WarmRecord",
    "WarmResult",
    "default_warmer",
    "register_warmer",
]

log = structlog.get_logger("perfkit.cache")

# A warmer takes no arguments and returns how many keys it wrote (None counts as 0);
# it may be a coroutine function.
Warmer = Callable[[], int | Awaitable[int | None] | None]


class WarmResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one warmer run."""

    name: str
    ok: bool
    duration_ms: float
    keys_written: int
    error: str | None = None


class WarmRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The fleet's last scheduled warm-up: the process that ran it, when (unix time), and
    its results."""

    process: str
    at: float
    results: list[WarmResult]


_record_decoder = msgspec.json.Decoder(WarmRecord)


class WarmLease:
    """Lets one process of the fleet run each scheduled warm-up.

    ``acquire`` is a Redis ``SET key holder NX PX``: the lease expires by itself after the
    interval, so a holder that died never stops the warming. ``client`` is a sync
    ``redis.Redis``; ``process`` names this process (as the fleet view does).
    """

    def __init__(self, client: Any, *, namespace: str, process: Callable[[], str]) -> None:
        if not namespace:
            raise ArgumentError("warm lease namespace must not be empty")
        self.client = client
        self.process = process
        self.key = f"{namespace}:__perfkit__:warm:lease"
        self.record_key = f"{namespace}:__perfkit__:warm:last"

    def acquire(self, seconds: float) -> bool:
        """Take the lease for ``seconds``; False when another process holds it. With Redis
        away, True: the cache then falls back to each process's memory, which each
        process must warm itself."""
        try:
            taken = self.client.set(
                self.key, self.process().encode(), nx=True, px=max(1, int(seconds * 1000))
            )
        except Exception as exc:
            log.warning("cache.warm.lease_unavailable", error=type(exc).__name__)
            return True
        return bool(taken)

    def record(self, results: list[WarmResult]) -> None:
        """Note this process's warm-up as the fleet's last (best effort)."""
        record = WarmRecord(process=self.process(), at=time.time(), results=results)
        try:
            self.client.set(self.record_key, msgspec.json.encode(record))
        except Exception as exc:
            log.warning("cache.warm.record_failed", error=type(exc).__name__)

    def last(self) -> WarmRecord | None:
        """The fleet's last scheduled warm-up, ``None`` before the first one."""
        raw = self.client.get(self.record_key)
        if raw is None:
            return None
        try:
            return _record_decoder.decode(raw)
        except msgspec.DecodeError:
            return None


class CacheWarmer:
    """A set of named warmers and the schedule that runs them.

    ``delay`` and ``interval`` (seconds) default to CACHE_WARMUP_DELAY and
    CACHE_WARMUP_INTERVAL. Run the schedule in a thread with :meth:`start`/:meth:`stop`; in
    async code, :class:`AsyncCacheWarmer` runs the same warmers in the event loop with the
    same method names, awaited.
    """

    def __init__(
        self,
        *,
        delay: float | None = None,
        interval: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        settings = settings if settings is not None else Settings.from_env(part="cache")
        self.delay = settings.cache_warmup_delay if delay is None else delay
        self.interval = settings.cache_warmup_interval if interval is None else interval
        if self.delay < 0 or self.interval <= 0:
            raise ArgumentError(
                f"warm-up delay must be >= 0 and interval > 0, got {self.delay}, {self.interval}"
            )
        self._warmers: dict[str, Warmer] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._async: AsyncCacheWarmer | None = None  # see AsyncCacheWarmer.of
        self.last_results: list[WarmResult] = []
        # Set by the kit when it has a Redis: scheduled warm-ups run once per fleet.
        self.lease: WarmLease | None = None

    @property
    def names(self) -> list[str]:
        """The registered warmers' names, in registration order."""
        return list(self._warmers)

    def register(self, name: str, func: Warmer | None = None) -> Any:
        """Register ``func`` as warmer ``name``; without ``func``, a decorator."""
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"warmer name must be a non-empty string, got {name!r}")

        def add(target: Warmer) -> Warmer:
            self._warmers[name] = target
            return target

        return add if func is None else add(func)

    def _selected(self, names: Sequence[str] | None) -> list[tuple[str, Warmer]]:
        if names is None:
            return list(self._warmers.items())
        if isinstance(names, str):
            names = [names]
        unknown = [name for name in names if name not in self._warmers]
        if unknown:
            raise ArgumentError(f"unknown warmer(s) {unknown}; registered: {self.names}")
        return [(name, self._warmers[name]) for name in names]

    def warm(self, names: Sequence[str] | None = None) -> list[WarmResult]:
        """Run the warmers (all, or those named) now; one result each."""
        results = [self._run(name, func) for name, func in self._selected(names)]
        self.last_results = results
        return results

    def _run(self, name: str, func: Warmer) -> WarmResult:
        start = time.perf_counter()
        try:
            written = resolve_blocking(func())
        except Exception as exc:
            return self._result(name, start, None, exc)
        return self._result(name, start, written, None)

    @staticmethod
    def _result(name: str, start: float, written: Any, exc: Exception | None) -> WarmResult:
        duration_ms = round((time.perf_counter() - start) * 1000, 3)
        if exc is not None:
            log.error("cache.warm.failed", warmer=name, error=f"{type(exc).__name__}: {exc}")
            return WarmResult(
                name=name,
                ok=False,
                duration_ms=duration_ms,
                keys_written=0,
                error=f"{type(exc).__name__}: {exc}",
            )
        keys = written if isinstance(written, int) and not isinstance(written, bool) else 0
        log.info("cache.warm.done", warmer=name, duration_ms=duration_ms, keys_written=keys)
        return WarmResult(name=name, ok=True, duration_ms=duration_ms, keys_written=keys)

    # -- schedules --------------------------------------------------------------------------

    def start(self) -> None:
        """Run the schedule in a daemon thread: first after ``delay``, then every
        ``interval``. Calling it twice does nothing more."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="perfkit-cache-warmer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a warmer that is running finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        wait = self.delay
        while not self._stop.wait(wait):
            if self._leased():
                results = self.warm()
                if self.lease is not None:
                    self.lease.record(results)
            wait = self.interval

    def _leased(self) -> bool:
        """Whether this process runs this round of the schedule (always, without a lease)."""
        return self.lease is None or self.lease.acquire(self.interval)


class AsyncCacheWarmer:
    """The async twin of a :class:`CacheWarmer`: the same warmers, names, lease and results,
    with the same method names, awaited; its schedule is a task of the running event loop.

    ``AsyncCacheWarmer.of(warmer)`` is the one async twin of ``warmer`` (so that ``stop``
    stops what ``start`` started).
    """

    def __init__(self, warmer: CacheWarmer) -> None:
        self.warmer = warmer
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, warmer: CacheWarmer) -> AsyncCacheWarmer:
        """The async twin of ``warmer``, made on first use."""
        if warmer._async is None:
            warmer._async = cls(warmer)
        return warmer._async

    @property
    def names(self) -> list[str]:
        """The registered warmers' names, in registration order."""
        return self.warmer.names

    @property
    def last_results(self) -> list[WarmResult]:
        """The results of the last warm-up, sync or async."""
        return self.warmer.last_results

    def register(self, name: str, func: Warmer | None = None) -> Any:
        """Register ``func`` as warmer ``name`` (on the sync twin; both run it)."""
        return self.warmer.register(name, func)

    async def warm(self, names: Sequence[str] | None = None) -> list[WarmResult]:
        """Run the warmers (all, or those named) now, as :meth:`CacheWarmer.warm`: async ones
        awaited in the running loop, sync ones in a worker thread so they do not block it."""
        results = []
        for name, func in self.warmer._selected(names):
            if is_async_callable(func):
                results.append(await self._run(name, func))
            else:
                results.append(await asyncio.to_thread(self.warmer._run, name, func))
        self.warmer.last_results = results
        return results

    async def _run(self, name: str, func: Warmer) -> WarmResult:
        start = time.perf_counter()
        try:
            written = await resolve(func())
        except Exception as exc:
            return self.warmer._result(name, start, None, exc)
        return self.warmer._result(name, start, written, None)

    async def start(self) -> None:
        """Run the schedule as a task of the running event loop."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.create_task(self._loop(), name="perfkit-cache-warmer")

    async def stop(self) -> None:
        """Cancel the task and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.warmer.delay)
        while True:
            if await asyncio.to_thread(self.warmer._leased):
                results = await self.warm()
                if self.warmer.lease is not None:
                    await asyncio.to_thread(self.warmer.lease.record, results)
            await asyncio.sleep(self.warmer.interval)


_default: _defaults.Slot[CacheWarmer | None] = _defaults.slot(
    "cache.default_warmer", lambda: None, declaration=True
)
_default_lock = threading.Lock()


def default_warmer() -> CacheWarmer:
    """The process-wide warmer that :func:`register_warmer` adds to (settings from the
    environment, created on first use)."""
    with _default_lock:
        warmer = _default.value
        if warmer is None:
            warmer = _default.value = CacheWarmer()
        return warmer


def register_warmer(name: str) -> Callable[[Warmer], Warmer]:
    """Decorator: register a function as warmer ``name`` on :func:`default_warmer`."""
    decorator: Callable[[Warmer], Warmer] = default_warmer().register(name)
    return decorator
