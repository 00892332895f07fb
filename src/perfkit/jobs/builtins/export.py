"""The built-in ``data.export`` processor: a named query's rows to a CSV or JSON-lines file.

A payload names a query registered with :func:`register_export_query` and gives its
parameters, which psycopg sends separately from the SQL; no SQL is ever built from
payload strings. Register a plain SQL string with ``%(name)s`` placeholders, or a
``psycopg.sql`` composition for identifiers (``sql.SQL("SELECT * FROM {}").format(
sql.Identifier("orders"))``). Files are written under the export directory
(``JOB_EXPORT_DIR``), through a temporary file renamed into place, and rows are streamed
with a server-side cursor, so a large export does not sit in memory. Connections come
from a :class:`perfkit.queries.TimedPool`, so export statements show in the query stats.
"""

from __future__ import annotations

import csv
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import psycopg
import rq
from psycopg import sql

from perfkit import _defaults
from perfkit._errors import ConfigError, PermanentJobError
from perfkit.jobs.processor import processor
from perfkit.queries import TimedPool
from perfkit.settings import Settings

__all__ = [
    "DataExportPayload",
    "ExportReport",
    "export_data",
    "register_export_query",
    "set_export_directory",
    "set_export_pool",
]

QueryText = str | sql.SQL | sql.Composed
FileName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")]
_CURSOR_ROWS = 2000


class DataExportPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload of ``data.export``: a registered query's name, its parameters, the format.

    ``filename`` (letters, digits, ``.``, ``_``, ``-``; no path) defaults to
    ``<query>-<job id>.<csv|jsonl>``.
    """

    query: Annotated[str, msgspec.Meta(min_length=1)]
    params: dict[str, Any] = {}
    format: Literal["csv", "jsonl"] = "csv"
    filename: FileName | None = None


class ExportReport(msgspec.Struct, frozen=True, kw_only=True):
    """Where an export was written and how many rows it holds."""

    path: str
    rows: int
    format: str


_queries: _defaults.Slot[dict[str, QueryText]] = _defaults.slot(
    "jobs.export_queries", dict, declaration=True
)
_directory: _defaults.Slot[Path | None] = _defaults.slot("jobs.export_directory", lambda: None)
_pool: _defaults.Slot[TimedPool | None] = _defaults.slot("jobs.export_pool", lambda: None)
_pool_lock = threading.Lock()


def register_export_query(name: str, query: QueryText) -> None:
    """Make ``query`` exportable under ``name`` (replacing any query of that name)."""
    if not isinstance(query, str | sql.SQL | sql.Composed):
        raise ConfigError(f"export query {name!r} must be a str or a psycopg.sql composition")
    _queries.value[name] = query


def set_export_directory(directory: str | os.PathLike[str] | None) -> None:
    """Write exports under ``directory`` in this process (None: back to JOB_EXPORT_DIR)."""
    _directory.value = None if directory is None else Path(directory)


def _export_directory() -> Path:
    directory = _directory.value
    return (
        directory if directory is not None else Path(Settings.from_env(part="jobs").job_export_dir)
    )


def set_export_pool(pool: TimedPool | None) -> None:
    """Take export connections from ``pool`` (None: a pool of its own from the environment).

    Without one, the first export opens ``TimedPool.from_env(min_size=0)`` (DATABASE_URL,
    DB_POOL_*), kept for the life of the worker process.
    """
    with _pool_lock:
        _pool.value = pool


def _export_pool() -> TimedPool:
    # The one place that says where export connections come from.
    with _pool_lock:
        pool = _pool.value
        if pool is None:
            pool = _pool.value = TimedPool.from_env(min_size=0)
            pool.open()
        return pool


def _write_rows(cursor: psycopg.Cursor[Any], out: Any, file_format: str) -> int:
    columns = [column.name for column in cursor.description or ()]
    rows = 0
    if file_format == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in cursor:
            writer.writerow(row)
            rows += 1
    else:
        encoder = msgspec.json.Encoder(enc_hook=str)
        for row in cursor:
            out.write(encoder.encode(dict(zip(columns, row, strict=True))).decode())
            out.write("\n")
            rows += 1
    return rows


@processor("data.export", queue="analytics")
def export_data(payload: DataExportPayload) -> ExportReport:
    """Run the named query and write its rows to a file in the export directory."""
    query = _queries.value.get(payload.query)
    if query is None:
        known = ", ".join(sorted(_queries.value)) or "none"
        raise PermanentJobError(f"no export query named {payload.query!r} (registered: {known})")
    job = rq.get_current_job()
    suffix = "csv" if payload.format == "csv" else "jsonl"
    stamp = job.id if job is not None else datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = payload.filename or f"{payload.query}-{stamp}.{suffix}"
    directory = _export_directory()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    handle, temporary = tempfile.mkstemp(prefix=".export-", dir=directory)
    try:
        with (
            os.fdopen(handle, "w", newline="", encoding="utf-8") as out,
            _export_pool().connection() as conn,
            conn.transaction(),
            conn.cursor(name="perfkit_export") as cursor,
        ):
            cursor.itersize = _CURSOR_ROWS
            cursor.execute(query, payload.params)
            rows = _write_rows(cursor, out, payload.format)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ExportReport(path=str(target), rows=rows, format=payload.format)
