"""Which slow statements get EXPLAINed, and when: the sampler, without I/O.

A statement at least ``slow_query_ms`` long is *offered* (``QueryStats.record``) with its
parameters. The :class:`PlanSampler` admits it when

- EXPLAIN takes it (:func:`~perfkit.queries._plan.statement_kind`), it did not fail, and
  its pool has an explainer;
- its fingerprint has no EXPLAIN running and had none in the last ``interval`` seconds
  (at most one EXPLAIN per fingerprint per interval: the plan is captured once, and
  checked again — a changed shape counted — once the interval has passed);
- the budget has room: fewer than ``per_minute`` EXPLAINs admitted in the last 60 s, for
  the whole sampler (every pool recording into the same ``QueryStats``).

An admitted statement goes to its pool's explainer (``_explain_async.py``: a task, or a
thread for the sync pool) as a :class:`Job`, which holds the parameters only until the
EXPLAIN has run: they are never stored in a plan, a counter or a log line.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from time import monotonic, time
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import msgspec
import structlog
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import Conninfo

from perfkit.queries._plan import QueryPlan, StatementKind, parse_plan, statement_kind

if TYPE_CHECKING:
    from perfkit.queries._fingerprint import Fingerprint

__all__ = [
    "TABLE_ROWS",
    "ExplainSettings",
    "ExplainStats",
    "Job",
    "PlanSampler",
    "conninfo_of",
    "conninfo_of_connection",
    "explain_conninfo",
    "explain_sql",
]

_log = structlog.get_logger("perfkit.queries")


# The sizes of the tables a plan scans sequentially (schema-qualified names).
TABLE_ROWS = """
    SELECT n.nspname || '.' || c.relname, c.reltuples::bigint
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname || '.' || c.relname = ANY(%s) AND c.reltuples >= 0
"""


def explain_conninfo(conninfo: str, timeout: float) -> str:
    """``conninfo`` for EXPLAIN sessions: read-only, ``statement_timeout`` of ``timeout``
    seconds, named ``perfkit-explain`` (in ``pg_stat_activity``)."""
    options = conninfo_to_dict(conninfo).get("options") or ""
    milliseconds = max(1, round(timeout * 1000))
    extra = f"-c statement_timeout={milliseconds} -c default_transaction_read_only=on"
    return make_conninfo(
        conninfo, options=f"{options} {extra}".strip(), application_name="perfkit-explain"
    )


def conninfo_of(params: Mapping[str, Any]) -> str:
    """A conninfo of the libpq keywords among connection arguments (Django's
    ``get_connection_params()``, SQLAlchemy's ``create_connect_args``): the driver's own
    (``context``, ``cursor_factory``...) are left out."""
    keywords = {d.keyword.decode() for d in Conninfo.get_defaults()}
    kept = {k: v for k, v in params.items() if k in keywords and isinstance(v, str | int)}
    return make_conninfo("", **kept)


def conninfo_of_connection(conn: Any) -> str:
    """The conninfo a psycopg connection was made with (its password included)."""
    info = conn.info
    password = info.password
    return make_conninfo(info.dsn, password=password) if password else str(info.dsn)


def explain_sql(job: Job) -> str:
    """The EXPLAIN of ``job``'s statement."""
    analyze = "ANALYZE, " if job.analyze else ""
    return f"EXPLAIN ({analyze}VERBOSE, FORMAT JSON) {job.sql}"


class ExplainSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How slow statements' plans are sampled (docs/queries.md, "Plans of slow statements").

    :param per_minute: EXPLAINs at most in any 60 s, for all the pools of one ``QueryStats``.
    :param interval: seconds before a fingerprint's plan is captured again.
    :param timeout: the EXPLAIN's ``statement_timeout``, seconds (the connection's too).
    :param analyze: run ``EXPLAIN ANALYZE`` for statements that only read (never for a
        statement that may write), in a read-only transaction rolled back.
    :param max_plans: fingerprints whose plan is kept (the least recently slow go first).
    :param max_nodes: plan nodes kept per plan.
    """

    per_minute: Annotated[int, msgspec.Meta(ge=1)] = 6
    interval: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    analyze: bool = False
    max_plans: Annotated[int, msgspec.Meta(ge=1)] = 20
    max_nodes: Annotated[int, msgspec.Meta(ge=1)] = 30


class ExplainStats(msgspec.Struct, frozen=True, kw_only=True):
    """The sampler's counters: EXPLAINs run (``explains``; ``analyzed`` of them with
    ANALYZE), failed, and slow statements not EXPLAINed because of the budget."""

    explains: int
    analyzed: int
    failures: int
    over_budget: int
    plans: int


@dataclass(slots=True, eq=False, repr=False)
class Job:
    """One EXPLAIN to run: the statement, its parameters (held until it ran), how."""

    fingerprint: Fingerprint
    sql: str
    params: Any
    analyze: bool
    duration: float
    pool: str

    def __repr__(self) -> str:  # never the parameters
        return f"Job({self.fingerprint.id}, analyze={self.analyze}, pool={self.pool!r})"


class PlanExplainer(Protocol):
    """Runs a pool's EXPLAINs (``AsyncExplainer``, ``Explainer``)."""

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when it cannot be run (queue full, no event loop...)."""
        ...


class _State:
    __slots__ = ("busy", "kind", "next_at", "plan")

    def __init__(self, kind: StatementKind) -> None:
        self.kind = kind
        self.busy = False
        self.next_at = 0.0
        self.plan: QueryPlan | None = None


class PlanSampler:
    """Admits slow statements to EXPLAIN within the budget and keeps their plans."""

    def __init__(self, settings: ExplainSettings | None = None) -> None:
        self.settings = settings or ExplainSettings()
        self._lock = threading.Lock()
        self._explainers: dict[str, PlanExplainer] = {}
        # fingerprint id -> state, least recently offered first (bounded: max_plans).
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._admitted: deque[float] = deque()  # monotonic() of the last minute's EXPLAINs
        self._explains = self._analyzed = self._failures = self._over_budget = 0

    def attach(self, pool: str, explainer: PlanExplainer) -> None:
        """Explain the slow statements of pool ``pool`` with ``explainer``."""
        with self._lock:
            self._explainers[pool] = explainer

    def detach(self, pool: str) -> None:
        """Stop explaining pool ``pool``'s statements (its plans stay)."""
        with self._lock:
            self._explainers.pop(pool, None)

    def offer(
        self, fingerprint: Fingerprint, sql: str | bytes, params: Any, seconds: float, pool: str
    ) -> None:
        """A run of ``sql`` took ``seconds`` (slow): queue its EXPLAIN if admitted. Never
        raises, never waits for I/O: it runs in the request."""
        explainer = self._explainers.get(pool)
        if explainer is None:
            return
        now = monotonic()
        with self._lock:
            state = self._state(fingerprint.id, sql)
            if state is None or state.busy or now < state.next_at:
                return
            window = self._admitted
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= self.settings.per_minute:
                self._over_budget += 1
                return
            window.append(now)
            state.busy = True
            state.next_at = now + self.settings.interval
            analyze = self.settings.analyze and state.kind == "read"
        text = sql.decode("utf-8", "replace") if isinstance(sql, bytes) else sql
        job = Job(fingerprint, text, _copied(params), analyze, seconds, pool)
        if not explainer.submit(job):
            self.done(job, None)

    def _state(self, fingerprint_id: str, sql: str | bytes) -> _State | None:
        """The fingerprint's state, made (evicting the least recent) if new; ``None`` for a
        statement EXPLAIN does not take (kept nowhere, so that it evicts no plan); under
        the lock."""
        states = self._states
        state = states.get(fingerprint_id)
        if state is not None:
            states.move_to_end(fingerprint_id)
            return state
        kind = statement_kind(sql)
        if kind is None:
            return None
        if len(states) >= self.settings.max_plans:
            states.popitem(last=False)
        state = states[fingerprint_id] = _State(kind)
        return state

    def done(self, job: Job, document: Any, table_rows: dict[str, int] | None = None) -> None:
        """``job``'s EXPLAIN returned ``document`` (``None``: it failed or was not run)."""
        job.params = None
        with self._lock:
            state = self._states.get(job.fingerprint.id)
            previous = state.plan if state is not None else None
            plan = None
            if document is not None:
                plan = parse_plan(
                    document,
                    fingerprint=job.fingerprint,
                    analyzed=job.analyze,
                    captured_at=time(),
                    duration_ms=job.duration * 1000,
                    max_nodes=self.settings.max_nodes,
                    table_rows=table_rows,
                    previous=previous,
                )
            if plan is None:
                self._failures += 1
            else:
                self._explains += 1
                self._analyzed += job.analyze
            if state is not None:
                state.busy = False
                if plan is not None:
                    state.plan = plan
        if plan is not None and previous is not None and plan.shape != previous.shape:
            _log.info("plan_changed", fingerprint_id=job.fingerprint.id, shape=plan.shape)

    def failed(self, job: Job, error: BaseException) -> None:
        """``job``'s EXPLAIN raised: logged by its class and SQLSTATE only (the message of
        a driver error may quote a parameter value)."""
        _log.warning(
            "explain_failed",
            fingerprint_id=job.fingerprint.id,
            pool=job.pool,
            error=type(error).__name__,
            sqlstate=getattr(error, "sqlstate", None),
        )
        self.done(job, None)

    def plans(self, fingerprint_ids: set[str] | None = None) -> list[QueryPlan]:
        """The plans kept, newest first (only those of ``fingerprint_ids`` when given)."""
        with self._lock:
            found = [s.plan for s in self._states.values() if s.plan is not None]
        if fingerprint_ids is not None:
            found = [p for p in found if p.fingerprint_id in fingerprint_ids]
        return sorted(found, key=lambda p: p.captured_at, reverse=True)

    def stats(self) -> ExplainStats:
        """The counters, and the number of plans kept."""
        with self._lock:
            return ExplainStats(
                explains=self._explains,
                analyzed=self._analyzed,
                failures=self._failures,
                over_budget=self._over_budget,
                plans=sum(1 for s in self._states.values() if s.plan is not None),
            )

    def reset(self) -> None:
        """Forget the plans and counters (EXPLAINs running finish unrecorded)."""
        with self._lock:
            self._states.clear()
            self._explains = self._analyzed = self._failures = self._over_budget = 0


def _copied(params: Any) -> Any:
    """``params`` as they are now (the caller may reuse its list or dict)."""
    if isinstance(params, list):
        return tuple(params)
    if isinstance(params, dict):
        return dict(params)
    return params
