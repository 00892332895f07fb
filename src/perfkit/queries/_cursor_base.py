"""What the timed cursor classes share: how a statement is timed and recorded.

The timed cursor classes (``_cursor_async.py``, and ``_cursor.py`` generated from it by
``tools/async_to_sync.py``) are installed as a connection's cursor factories.

A pool sets ``conn.cursor_factory`` / ``conn.server_cursor_factory`` on each new connection
to a timed subclass of whatever class was there (psycopg's ``Cursor``, ``ClientCursor``,
``RawCursor``, an application's own), so ``conn.execute``, ``cursor.execute``,
``executemany``, ``stream``, ``copy`` and named cursors are timed with nothing else changed
and nothing patched globally. The subclass is made once per pool and base class and carries
the pool's :class:`QueryStats` as a class attribute, so a statement costs two
``perf_counter()`` calls and one :meth:`QueryStats.record`.

A named (server-side) cursor's statement is recorded once, when it is closed or executed
again: its duration is the DECLARE plus every fetch round trip, its rows the rows fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from types import TracebackType
from typing import Any, ClassVar, Protocol

from perfkit.queries._stats import QueryStats

# Ending an iteration is not a failed statement.
_ENDS = (StopIteration, StopAsyncIteration, GeneratorExit)


# Told about every statement that raised: (connection, exception). The pool uses it to
# notice a dead connection or a server that became a read-only standby.
ErrorHook = Callable[[Any, BaseException], None]


class _Timing:
    """What every timed cursor knows: where to record, under which pool name, whom to tell
    about a failure."""

    __slots__ = ()
    _pk_stats: ClassVar[QueryStats]
    _pk_pool: ClassVar[str]
    _pk_on_error: ClassVar[ErrorHook | None] = None

    def _pk_done(self, query: Any, elapsed: float, failed: bool) -> None:
        raise NotImplementedError

    def _pk_failed(self, exc: BaseException) -> None:
        hook = self._pk_on_error
        if hook is not None and not isinstance(exc, _ENDS):
            hook(self.connection, exc)  # type: ignore[attr-defined, call-arg]


class _HasRowcount(Protocol):
    @property
    def rowcount(self) -> int: ...

    _pk_stats: ClassVar[QueryStats]
    _pk_pool: ClassVar[str]


class _ClientTiming(_Timing):
    """Client-side cursors: each statement is recorded as soon as it returns."""

    __slots__ = ()
    # The execute() that the timed one wraps: the next in the class's MRO.
    _pk_execute: ClassVar[Callable[..., Any]]

    def _pk_done(self: _HasRowcount, query: Any, elapsed: float, failed: bool) -> None:
        rows = 0 if failed else self.rowcount
        self._pk_stats.record(query, elapsed, rows if rows > 0 else 0, failed, self._pk_pool, self)


class _HasRownumber(Protocol):
    @property
    def rownumber(self) -> int | None: ...

    _pk_stats: ClassVar[QueryStats]
    _pk_pool: ClassVar[str]
    _pk_query: Any
    _pk_elapsed: float

    def _pk_flush(self, rows: int | None, failed: bool = False) -> None: ...


class _ServerTiming(_Timing):
    """Named cursors: time accumulates over DECLARE and fetches, recorded on close."""

    # No __slots__: a server cursor class may come with slots of its own.
    _pk_query: Any = None
    _pk_elapsed: float = 0.0

    def _pk_done(self: _HasRownumber, query: Any, elapsed: float, failed: bool) -> None:
        if query is not None:
            self._pk_query, self._pk_elapsed = query, 0.0
        if self._pk_query is None:  # a fetch before any execute: psycopg raised already
            return
        self._pk_elapsed += elapsed
        if failed:
            self._pk_flush(0, failed=True)

    def _pk_flush(self: _HasRownumber, rows: int | None, failed: bool = False) -> None:
        query, self._pk_query = self._pk_query, None
        if query is not None:
            self._pk_stats.record(query, self._pk_elapsed, rows or 0, failed, self._pk_pool, self)


# _Timer and _StreamClock time alike but stay two classes: a shared base with a hook method
# cost ~3,200 instructions per statement (docs/architecture.md, "Hot paths").
class _Timer:
    """Times one round trip of a cursor and tells the cursor how it went."""

    __slots__ = ("_cursor", "_query", "_start")

    def __init__(self, cursor: _Timing, query: Any) -> None:
        self._cursor = cursor
        self._query = query

    def __enter__(self) -> None:
        self._start = perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failed = exc_type is not None and not issubclass(exc_type, _ENDS)
        self._cursor._pk_done(self._query, perf_counter() - self._start, failed)
        if failed and exc is not None:
            self._cursor._pk_failed(exc)


class _StreamClock:
    """Time spent inside a streamed statement's fetches (not in the caller's loop body)."""

    __slots__ = ("_start", "elapsed", "failed", "rows")

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.rows = 0
        self.failed = False
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.elapsed += perf_counter() - self._start
        if exc_type is not None and not issubclass(exc_type, _ENDS):
            self.failed = True

    def record(self, cursor: _Timing, query: Any) -> None:
        cursor._pk_stats.record(
            query, self.elapsed, self.rows, self.failed, cursor._pk_pool, cursor
        )
