# Generated from _explain_async.py by tools/async_to_sync.py: do not edit.
"""Explainer: a pool's EXPLAINs in a thread, one at a time, on a connection of its own.

Which statements are explained lives in ``_explain_base.py``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from psycopg import Connection

from perfkit.queries._explain_base import (
    TABLE_ROWS,
    ExplainSettings,
    Job,
    PlanSampler,
    explain_conninfo,
    explain_sql,
)
from perfkit.queries._plan import relations

__all__ = ["Explainer"]


class Explainer:
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
            self._thread = threading.Thread(target=self._run, name="perfkit-explain", daemon=True)
            self._thread.start()
        except RuntimeError:
            with self._lock:
                self._jobs.remove(job)
                self._running = False
            return False
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs or self._closed:
                    self._running = False
                    dropped = list(self._jobs)
                    self._jobs.clear()
                    break
                job = self._jobs.popleft()
            self._explain(job)
        for job in dropped:
            self.sampler.done(job, None)

    def _explain(self, job: Job) -> None:
        try:
            document, table_rows = self._capture(job)
        except Exception as exc:
            self.sampler.failed(job, exc)
        else:
            self.sampler.done(job, document, table_rows)
        finally:
            job.params = None

    def _capture(self, job: Job) -> tuple[Any, dict[str, int]]:
        """Run ``job``'s EXPLAIN in a transaction rolled back; the plan and table sizes."""
        with Connection.connect(self.conninfo) as conn:
            try:
                cursor = conn.cursor()
                # binary: the extended protocol, so that one statement only is run.
                cursor.execute(explain_sql(job), job.params, binary=True)
                row = cursor.fetchone()
                document = row[0] if row is not None else None
                table_rows: dict[str, int] = {}
                scanned = relations(document)
                if scanned:
                    cursor.execute(TABLE_ROWS, (scanned,))
                    table_rows = {name: int(rows) for name, rows in cursor.fetchall()}
            finally:
                conn.rollback()
        return (document, table_rows)

    def close(self, grace: float = 5.0) -> None:
        """Drop the queued EXPLAINs and wait (up to ``grace`` seconds) for the running one."""
        with self._lock:
            self._closed = True
        thread = self._thread
        if thread is not None:
            thread.join(grace)
