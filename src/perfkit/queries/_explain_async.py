"""AsyncExplainer: a pool's EXPLAINs in a task, one at a time, on a connection of its own.

The source of ``_explain.py`` (Explainer, which runs them in a thread), generated from this
file by ``tools/async_to_sync.py``: edit this one, then run that script. Which statements
are explained lives in ``_explain_base.py``.

Each EXPLAIN opens a connection of the pool's conninfo (never the request's, so never inside
its transaction), whose sessions start read-only (``default_transaction_read_only``) with
``statement_timeout`` set, runs ``EXPLAIN (FORMAT JSON, VERBOSE)`` — with ``ANALYZE`` only
for a statement the sampler judged a read — reads the size of the tables it scans
sequentially, rolls back, and closes the connection. So a pool has at most one extra
connection, open only while an EXPLAIN runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from psycopg import AsyncConnection

from perfkit.queries._explain_base import (
    TABLE_ROWS,
    ExplainSettings,
    Job,
    PlanSampler,
    explain_conninfo,
    explain_sql,
)
from perfkit.queries._plan import relations

__all__ = ["AsyncExplainer"]


class AsyncExplainer:
    """Runs the EXPLAINs ``sampler`` admits for one pool, one at a time, in the background
    (a task of the running event loop; the sync ``Explainer``: a thread).

    ``submit`` is called in the request (by ``QueryStats.record``): it queues the job (at
    most ``per_minute`` wait) and starts the worker if none runs.
    """

    def __init__(self, conninfo: str, sampler: PlanSampler) -> None:
        settings: ExplainSettings = sampler.settings
        self.conninfo = explain_conninfo(conninfo, settings.timeout)
        self.sampler = sampler
        self._jobs: deque[Job] = deque()
        self._limit = settings.per_minute
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        if True:  # async only
            self._worker: asyncio.Task[None] | None = None
        else:
            self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when it cannot run (closed, queue full, no event loop)."""
        with self._lock:
            if self._closed or len(self._jobs) >= self._limit:
                return False
            self._jobs.append(job)
            if self._running:
                return True
            self._running = True
        try:
            if True:  # async only
                self._worker = asyncio.get_running_loop().create_task(self._run())
            else:
                self._thread = threading.Thread(
                    target=self._run, name="perfkit-explain", daemon=True
                )
                self._thread.start()
        except RuntimeError:
            with self._lock:
                self._jobs.remove(job)
                self._running = False
            return False
        return True

    async def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs or self._closed:
                    self._running = False
                    dropped = list(self._jobs)
                    self._jobs.clear()
                    break
                job = self._jobs.popleft()
            await self._explain(job)
        for job in dropped:
            self.sampler.done(job, None)

    async def _explain(self, job: Job) -> None:
        try:
            document, table_rows = await self._capture(job)
        except Exception as exc:
            self.sampler.failed(job, exc)
        else:
            self.sampler.done(job, document, table_rows)
        finally:
            job.params = None

    async def _capture(self, job: Job) -> tuple[Any, dict[str, int]]:
        """Run ``job``'s EXPLAIN in a transaction rolled back; the plan and table sizes."""
        async with await AsyncConnection.connect(self.conninfo) as conn:
            try:
                cursor = conn.cursor()
                # binary: the extended protocol, so that one statement only is run.
                await cursor.execute(explain_sql(job), job.params, binary=True)
                row = await cursor.fetchone()
                document = row[0] if row is not None else None
                table_rows: dict[str, int] = {}
                scanned = relations(document)
                if scanned:
                    await cursor.execute(TABLE_ROWS, (scanned,))
                    table_rows = {name: int(rows) for name, rows in await cursor.fetchall()}
            finally:
                await conn.rollback()
        return document, table_rows

    async def close(self, grace: float = 5.0) -> None:
        """Drop the queued EXPLAINs and wait (up to ``grace`` seconds) for the running one."""
        with self._lock:
            self._closed = True
        if True:  # async only
            worker = self._worker
            if worker is not None and not worker.done():
                await asyncio.wait([worker], timeout=grace)
        else:
            thread = self._thread
            if thread is not None:
                thread.join(grace)
