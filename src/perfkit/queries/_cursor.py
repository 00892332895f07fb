# Generated from _cursor_async.py by tools/async_to_sync.py: do not edit.
"""TimedCursor and TimedServerCursor: psycopg's cursors, every statement timed.

How a statement is timed lives in ``_cursor_base.py``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any, Self, cast

from psycopg import Copy, Cursor, ServerCursor
from psycopg.abc import Params, Query
from psycopg.copy import Writer

from perfkit.queries._cursor_base import _ClientTiming, _ServerTiming, _StreamClock, _Timer

__all__ = ["TimedCursor", "TimedServerCursor"]


class TimedCursor(_ClientTiming, Cursor[Any]):
    """A client-side cursor whose statements are timed (base of a pool's cursor class)."""

    __slots__ = ()
    _pk_execute = staticmethod(Cursor.execute)  # a pool's subclass: its base's

    def execute(
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
            self._pk_execute(self, query, params, prepare=prepare, binary=binary)  # type: ignore[arg-type]
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
