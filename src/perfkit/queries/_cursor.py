"""Cursor classes that time every statement, installed as a connection's cursor factories.

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

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from contextlib import asynccontextmanager, contextmanager
from time import perf_counter
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar, cast

from psycopg import AsyncCopy, AsyncCursor, AsyncServerCursor, Copy, Cursor, ServerCursor
from psycopg.abc import Params, Query
from psycopg.copy import AsyncWriter, Writer

from perfkit.queries._stats import QueryStats

__all__ = [
    "AsyncTimedCursor",
    "AsyncTimedServerCursor",
    "TimedCursor",
    "TimedServerCursor",
    "timed_cursor_class",
]

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


class TimedCursor(_ClientTiming, Cursor[Any]):
    """A client-side cursor whose statements are timed (base of a pool's cursor class)."""

    __slots__ = ()

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        """Execute a statement, timed."""
        # The hot path, so no _Timer and no _pk_done: a try block, two perf_counter() calls.
        start = perf_counter()
        try:
            super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[misc, arg-type]
        except BaseException as exc:
            self._pk_done(query, perf_counter() - start, True)
            self._pk_failed(exc)
            raise
        elapsed = perf_counter() - start
        rows = self.rowcount
        self._pk_stats.record(query, elapsed, rows if rows > 0 else 0, False, self._pk_pool, self)
        return self

    def executemany(
        self, query: Query, params_seq: Iterable[Params], *, returning: bool = False
    ) -> None:
        """Execute a statement once per parameter set; timed as one run."""
        with _Timer(self, query):
            super().executemany(query, params_seq, returning=returning)

    def stream(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        size: int = 1,
    ) -> Iterator[Any]:
        """Stream rows; timed over the fetches, recorded when the stream ends."""
        rows = cast(Generator[Any], super().stream(query, params, binary=binary, size=size))
        clock = _StreamClock()
        try:
            while True:
                with clock:
                    row = next(rows)
                clock.rows += 1
                yield row
        except StopIteration:
            return
        finally:
            with clock:
                rows.close()
            clock.record(self, query)

    @contextmanager
    def copy(
        self, statement: Query, params: Params | None = None, *, writer: Writer | None = None
    ) -> Iterator[Copy]:
        """Run a COPY; timed from start to the end of the ``with`` block."""
        with _Timer(self, statement), super().copy(statement, params, writer=writer) as copy:
            yield copy


class AsyncTimedCursor(_ClientTiming, AsyncCursor[Any]):
    """The async twin of :class:`TimedCursor`."""

    __slots__ = ()

    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        """Execute a statement, timed."""
        start = perf_counter()
        try:
            await super().execute(query, params, prepare=prepare, binary=binary)  # type: ignore[misc, arg-type]
        except BaseException as exc:
            self._pk_done(query, perf_counter() - start, True)
            self._pk_failed(exc)
            raise
        elapsed = perf_counter() - start
        rows = self.rowcount
        self._pk_stats.record(query, elapsed, rows if rows > 0 else 0, False, self._pk_pool, self)
        return self

    async def executemany(
        self, query: Query, params_seq: Iterable[Params], *, returning: bool = False
    ) -> None:
        """Execute a statement once per parameter set; timed as one run."""
        with _Timer(self, query):
            await super().executemany(query, params_seq, returning=returning)

    async def stream(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        size: int = 1,
    ) -> AsyncIterator[Any]:
        """Stream rows; timed over the fetches, recorded when the stream ends."""
        rows = cast(AsyncGenerator[Any], super().stream(query, params, binary=binary, size=size))
        clock = _StreamClock()
        try:
            while True:
                with clock:
                    row = await anext(rows)
                clock.rows += 1
                yield row
        except StopAsyncIteration:
            return
        finally:
            with clock:
                await rows.aclose()
            clock.record(self, query)

    @asynccontextmanager
    async def copy(
        self,
        statement: Query,
        params: Params | None = None,
        *,
        writer: AsyncWriter | None = None,
    ) -> AsyncIterator[AsyncCopy]:
        """Run a COPY; timed from start to the end of the ``async with`` block."""
        with _Timer(self, statement):
            async with super().copy(statement, params, writer=writer) as copy:
                yield copy


class TimedServerCursor(_ServerTiming, ServerCursor[Any]):
    """A named cursor whose statement is timed over DECLARE and fetches."""

    def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Declare the cursor (recording the previous statement, if any)."""
        self._pk_flush(self.rownumber)
        with _Timer(self, query):
            return super().execute(query, params, binary=binary, **kwargs)

    def fetchone(self) -> Any:
        """Fetch one row, timed."""
        with _Timer(self, None):
            return super().fetchone()

    def fetchmany(self, size: int = 0) -> list[Any]:
        """Fetch up to ``size`` rows, timed."""
        with _Timer(self, None):
            return super().fetchmany(size)

    def fetchall(self) -> list[Any]:
        """Fetch the remaining rows, timed."""
        with _Timer(self, None):
            return super().fetchall()

    def __next__(self) -> Any:
        with _Timer(self, None):
            return super().__next__()

    def scroll(self, value: int, mode: str = "relative") -> None:
        """Move the cursor, timed."""
        with _Timer(self, None):
            super().scroll(value, mode)

    def close(self) -> None:
        """Close the cursor and record its statement."""
        rows = None if self.closed else self.rownumber
        with _Timer(self, None):
            super().close()
        self._pk_flush(rows)


class AsyncTimedServerCursor(_ServerTiming, AsyncServerCursor[Any]):
    """The async twin of :class:`TimedServerCursor`."""

    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        binary: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Declare the cursor (recording the previous statement, if any)."""
        self._pk_flush(self.rownumber)
        with _Timer(self, query):
            return await super().execute(query, params, binary=binary, **kwargs)

    async def fetchone(self) -> Any:
        """Fetch one row, timed."""
        with _Timer(self, None):
            return await super().fetchone()

    async def fetchmany(self, size: int = 0) -> list[Any]:
        """Fetch up to ``size`` rows, timed."""
        with _Timer(self, None):
            return await super().fetchmany(size)

    async def fetchall(self) -> list[Any]:
        """Fetch the remaining rows, timed."""
        with _Timer(self, None):
            return await super().fetchall()

    async def __anext__(self) -> Any:
        with _Timer(self, None):
            return await super().__anext__()

    async def scroll(self, value: int, mode: str = "relative") -> None:
        """Move the cursor, timed."""
        with _Timer(self, None):
            await super().scroll(value, mode)

    async def close(self) -> None:
        """Close the cursor and record its statement."""
        rows = None if self.closed else self.rownumber
        with _Timer(self, None):
            await super().close()
        self._pk_flush(rows)


# Most specific first: a ServerCursor is also a Cursor.
_TIMED_BASES: tuple[tuple[type[Any], type[_Timing]], ...] = (
    (ServerCursor, TimedServerCursor),
    (AsyncServerCursor, AsyncTimedServerCursor),
    (Cursor, TimedCursor),
    (AsyncCursor, AsyncTimedCursor),
)

C = TypeVar("C", bound=type)


def timed_cursor_class(
    base: C, stats: QueryStats, pool: str, on_error: ErrorHook | None = None
) -> C:
    """A subclass of cursor class ``base`` that records into ``stats`` under ``pool`` and
    calls ``on_error(connection, exception)`` when a statement raises."""
    while issubclass(base, _Timing):  # already timed (by another pool): time the original
        base = next(b for b in base.__mro__ if not issubclass(b, _Timing))  # type: ignore[assignment]
    timed = next(t for plain, t in _TIMED_BASES if issubclass(base, plain))
    namespace: dict[str, Any] = {
        "_pk_stats": stats,
        "_pk_pool": pool,
        "_pk_on_error": staticmethod(on_error) if on_error is not None else None,
        "__module__": __name__,
    }
    if issubclass(timed, _ClientTiming):
        namespace["__slots__"] = ()
    bases = (timed,) if base in timed.__mro__ else (timed, base)
    return type(f"Timed{base.__name__}", bases, namespace)  # type: ignore[return-value]
