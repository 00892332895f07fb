"""AsyncTimedCursor and AsyncTimedServerCursor: psycopg's async cursors, every statement timed.

The source of ``_cursor.py`` (TimedCursor, TimedServerCursor), generated from this file by
``tools/async_to_sync.py``: edit this one, then run that script. How a statement is timed
lives in ``_cursor_base.py``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any, Self, cast

from psycopg import AsyncCopy, AsyncCursor, AsyncServerCursor
from psycopg.abc import Params, Query
from psycopg.copy import AsyncWriter

from perfkit.queries._cursor_base import _ClientTiming, _ServerTiming, _StreamClock, _Timer

__all__ = ["AsyncTimedCursor", "AsyncTimedServerCursor"]


class AsyncTimedCursor(_ClientTiming, AsyncCursor[Any]):
    """A client-side cursor whose statements are timed (base of a pool's cursor class)."""

    __slots__ = ()
    _pk_execute = staticmethod(AsyncCursor.execute)  # a pool's subclass: its base's

    async def execute(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        """Execute a statement, timed."""
        # The hot path, so no _Timer and no _pk_done: a try block, two perf_counter() calls,
        # and the next class's execute found once per class (_pk_execute), not by super().
        start = perf_counter()
        try:
            await self._pk_execute(self, query, params, prepare=prepare, binary=binary)  # type: ignore[arg-type]
        except BaseException as exc:
            self._pk_done(query, perf_counter() - start, True)
            self._pk_failed(exc)
            raise
        end = perf_counter()
        rows = self.rowcount
        self._pk_stats.record(
            query, end - start, rows if rows > 0 else 0, False, self._pk_pool, self, end, params
        )
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


class AsyncTimedServerCursor(_ServerTiming, AsyncServerCursor[Any]):
    """A named cursor whose statement is timed over DECLARE and fetches."""

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
