"""N+1 detection: one statement shape repeated within one unit of work.

Every statement recorded by a :class:`~perfkit.queries.QueryStats` (perfkit's pools,
Django's database, an instrumented SQLAlchemy engine) is also counted in the running unit
of work (a request through perfkit's middleware, a job run: ``perfkit._units``), by
fingerprint. A fingerprint that reaches ``threshold`` runs in one unit is a finding; the
call site (the first frame outside perfkit, the web framework, the ORM and the driver) is
taken once, when the count reaches the threshold, not per statement. When the unit ends,
its findings go to the process's :class:`NPlusOneDetector`, which keeps them by route
and fingerprint, counts them per route (``perfkit_db_n_plus_one_total``) and logs a
rate-limited ``db.n_plus_one`` warning.

Bounded: a unit counts at most ``max_per_unit`` fingerprints (a count and a time each:
the SQL text's fingerprint comes from the recorder's bounded cache); the detector keeps at
most ``max_findings``
findings (the least recently seen go first) and :data:`MAX_ROUTES` route counters.
Only fingerprints are kept: no parameter value, no SQL text with literals.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import structlog

from perfkit import _defaults, _units
from perfkit._errors import ConfigError
from perfkit.queries._fingerprint import Fingerprint
from perfkit.settings import Settings

if TYPE_CHECKING:
    from perfkit.queries._stats import QueryStats

__all__ = [
    "CallSite",
    "NPlusOne",
    "NPlusOneDetector",
    "get_n_plus_one_detector",
    "merge_n_plus_one",
    "set_n_plus_one_detector",
]

_log = structlog.get_logger("perfkit.queries")

# Routes (and job names) with a counter of their own; the rest count under OTHER_ROUTE.
MAX_ROUTES = 1000
OTHER_ROUTE = "<other>"
# At most this many db.n_plus_one warnings per log interval, whatever the findings.
MAX_LOGS_PER_INTERVAL = 10

# Top-level packages whose frames are not a call site: perfkit, the drivers and ORMs,
# the web frameworks and servers, the job runner, and the standard library's plumbing.
SKIPPED_PACKAGES = frozenset(
    {
        "perfkit",
        "psycopg",
        "psycopg_pool",
        "django",
        "sqlalchemy",
        "starlette",
        "fastapi",
        "flask",
        "werkzeug",
        "asgiref",
        "anyio",
        "sniffio",
        "greenlet",
        "jinja2",
        "rq",
        "uvicorn",
        "gunicorn",
        "litestar",
        "asyncio",
        "concurrent",
        "threading",
        "contextlib",
        "contextvars",
        "functools",
    }
)

UnitKind = Literal["request", "job"]


class CallSite(msgspec.Struct, frozen=True):
    """Where the application ran the repeated statement: a file, its line, the function."""

    file: str
    line: int
    function: str


class NPlusOne(msgspec.Struct, frozen=True, kw_only=True):
    """One statement shape repeated at least ``threshold`` times in units of work of one
    route (or job): ``units`` that did it, ``statements`` they ran of it in all,
    ``max_count`` the most in one unit, ``total_ms`` their time; ``call_site`` is the
    latest unit's; ``last_seen`` is Unix time."""

    kind: str
    route: str
    fingerprint: str
    fingerprint_id: str
    units: int
    statements: int
    max_count: int
    total_ms: float
    call_site: CallSite | None
    last_seen: float


def call_site(skipped: frozenset[str] = SKIPPED_PACKAGES) -> CallSite | None:
    """The innermost frame of the current stack whose module is not in a ``skipped``
    top-level package (``None`` if every frame is). A stack that ends in a greenlet
    (SQLAlchemy's asyncio engines run the driver in one) goes on in its parent's."""
    frame: FrameType | None = sys._getframe(1)
    parents = _greenlet_parents()
    while frame is not None:
        module = frame.f_globals.get("__name__") or ""
        if module.partition(".")[0] not in skipped:
            code = frame.f_code
            return CallSite(code.co_filename, frame.f_lineno or 0, code.co_qualname)
        frame = frame.f_back or next(parents, None)
    return None


def _greenlet_parents() -> Iterator[FrameType]:
    """The suspended frames of the current greenlet's parents, innermost first (none
    when greenlet is not imported: then nothing runs in one)."""
    greenlet: Any = sys.modules.get("greenlet")
    if greenlet is None:
        return
    parent = greenlet.getcurrent().parent
    while parent is not None:
        if parent.gr_frame is not None:
            yield parent.gr_frame
        parent = parent.parent


class _Count(msgspec.Struct, frozen=True):
    """One fingerprint repeated in one unit: its statements, their seconds, the call site."""

    fingerprint: Fingerprint
    count: int
    seconds: float
    site: CallSite | None


# A fingerprint's cell in a unit's tally: [statements, seconds, Fingerprint, CallSite |
# None]. A list, not an object: made with no Python call, updated in place.
_RUNS, _SECONDS, _FINGERPRINT, _SITE = range(4)


class _UnitTally:
    """What one unit of work ran, a cell per fingerprint id (the unit's ``tally``).
    Detection runs on every statement, so its hot path is a cached fingerprint, one dict
    lookup and two numbers updated; a fingerprint's first statement makes its cell."""

    __slots__ = ("cells", "detector", "limit", "repeated", "threshold")

    def __init__(self, detector: NPlusOneDetector) -> None:
        self.detector = detector
        self.threshold = detector.threshold
        self.limit = detector.max_per_unit
        self.cells: dict[str, list[Any]] = {}
        self.repeated: list[list[Any]] = []  # the cells that reached the threshold

    def note(self, key: str | bytes, seconds: float, stats: QueryStats) -> None:
        if not key:  # "": psycopg_pool's connection check, not a statement
            return
        fingerprint = stats.cached_fingerprint(key) or stats.text_fingerprint(key)
        cells = self.cells
        cell = cells.get(fingerprint.id)
        if cell is None:  # the threshold is at least 2: one run is never a finding
            if len(cells) < self.limit:  # else no room for another fingerprint
                cells[fingerprint.id] = [1, seconds, fingerprint, None]
            return
        cell[_SECONDS] += seconds
        cell[_RUNS] += 1
        if cell[_RUNS] == self.threshold:  # the call site is taken once, here
            cell[_SITE] = call_site()
            self.repeated.append(cell)

    def finish(self, kind: str, name: str) -> None:
        if self.repeated:
            found = [
                _Count(fingerprint, runs, seconds, site)
                for runs, seconds, fingerprint, site in self.repeated
            ]
            self.detector.found(kind, name, found)


class _Off:
    """The tally of a unit run while detection is off: counts nothing."""

    __slots__ = ()

    def note(self, key: str | bytes, seconds: float, stats: Any) -> None:
        pass

    def finish(self, kind: str, name: str) -> None:
        pass


_OFF = _Off()


def tally_for(unit: _units.Unit) -> _units.Tally:
    """``unit``'s tally, made at its first statement with the process's detector."""
    detector = _detector.value
    tally: _units.Tally = _UnitTally(detector) if detector.threshold else _OFF
    unit.tally = tally
    return tally


class _Finding:
    __slots__ = ("count", "fingerprint", "kind", "logged", "max_count", "route", "seconds",
                 "seen", "site", "units")  # fmt: skip

    def __init__(self, kind: str, route: str, fingerprint: Fingerprint) -> None:
        self.kind = kind
        self.route = route
        self.fingerprint = fingerprint
        self.units = self.count = self.max_count = 0
        self.seconds = 0.0
        self.seen = self.logged = 0.0
        self.site: CallSite | None = None

    def snapshot(self) -> NPlusOne:
        return NPlusOne(
            kind=self.kind,
            route=self.route,
            fingerprint=self.fingerprint.text,
            fingerprint_id=self.fingerprint.id,
            units=self.units,
            statements=self.count,
            max_count=self.max_count,
            total_ms=self.seconds * 1000,
            call_site=self.site,
            last_seen=self.seen,
        )


class NPlusOneDetector:
    """The process's N+1 findings, by route (or job) and fingerprint.

    :param threshold: runs of one fingerprint in one unit of work that make a finding
        (``0``: detection off).
    :param max_per_unit: fingerprints one unit counts at most.
    :param max_findings: findings kept; the least recently seen are dropped past it.
    :param log_interval: seconds between two ``db.n_plus_one`` warnings of one finding.
    """

    def __init__(
        self,
        *,
        threshold: int = 10,
        max_per_unit: int = 200,
        max_findings: int = 100,
        log_interval: float = 60.0,
    ) -> None:
        if threshold < 0 or threshold == 1:
            raise ConfigError(
                f"N+1 threshold={threshold!r} must be 0 (off) or at least 2 (N_PLUS_ONE_THRESHOLD)"
            )
        for name, value in (("max_per_unit", max_per_unit), ("max_findings", max_findings)):
            if value < 1:
                raise ConfigError(f"NPlusOneDetector {name}={value!r} must be at least 1")
        if log_interval < 0:
            raise ConfigError(f"NPlusOneDetector log_interval={log_interval!r} must be >= 0")
        self.threshold = threshold
        self.max_per_unit = max_per_unit
        self.max_findings = max_findings
        self.log_interval = log_interval
        self._lock = threading.Lock()
        self._findings: OrderedDict[tuple[str, str], _Finding] = OrderedDict()
        self._by_route: dict[str, int] = {}
        self._window = (0.0, 0)  # (start of the log interval, warnings logged in it)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NPlusOneDetector:
        """A detector with the ``N_PLUS_ONE_THRESHOLD`` setting."""
        return cls(threshold=Settings.from_env(environ, part="queries").n_plus_one_threshold)

    def found(self, kind: str, route: str, counts: list[_Count]) -> None:
        """Record the repeated fingerprints of one unit of work that ended."""
        now = time.time()
        to_log: list[tuple[NPlusOne, int]] = []
        with self._lock:
            label = (
                route
                if route in self._by_route or len(self._by_route) < MAX_ROUTES
                else OTHER_ROUTE
            )
            self._by_route[label] = self._by_route.get(label, 0) + len(counts)
            for count in counts:
                finding = self._finding(kind, route, count.fingerprint)
                finding.units += 1
                finding.count += count.count
                finding.max_count = max(finding.max_count, count.count)
                finding.seconds += count.seconds
                finding.seen = now
                finding.site = count.site or finding.site
                if now - finding.logged >= self.log_interval and self._may_log(now):
                    finding.logged = now
                    to_log.append((finding.snapshot(), count.count))
        for shown, runs in to_log:
            _log.warning(
                "db.n_plus_one",
                kind=shown.kind,
                route=shown.route,
                fingerprint=shown.fingerprint,
                fingerprint_id=shown.fingerprint_id,
                count=runs,
                call_site=_shown(shown.call_site),
            )

    def _finding(self, kind: str, route: str, fingerprint: Fingerprint) -> _Finding:
        key = (route, fingerprint.id)
        finding = self._findings.get(key)
        if finding is None:
            if len(self._findings) >= self.max_findings:
                self._findings.popitem(last=False)
            finding = self._findings[key] = _Finding(kind, route, fingerprint)
        else:
            self._findings.move_to_end(key)
        return finding

    def _may_log(self, now: float) -> bool:
        start, logged = self._window
        if now - start >= self.log_interval:
            start, logged = now, 0
        if logged >= MAX_LOGS_PER_INTERVAL:
            return False
        self._window = (start, logged + 1)
        return True

    def findings(self) -> list[NPlusOne]:
        """The findings kept, most statements first."""
        with self._lock:
            found = [finding.snapshot() for finding in self._findings.values()]
        return sorted(found, key=lambda f: f.statements, reverse=True)

    def by_route(self) -> dict[str, int]:
        """Findings per route since start (a counter: a reset does not lower it)."""
        with self._lock:
            return dict(self._by_route)

    def reset(self) -> None:
        """Forget the findings kept (the per-route counters stay monotonic)."""
        with self._lock:
            self._findings.clear()


def _shown(site: CallSite | None) -> str:
    return f"{site.file}:{site.line} in {site.function}" if site is not None else "<unknown>"


def merge_n_plus_one(lists: list[list[NPlusOne]], limit: int) -> list[NPlusOne]:
    """The findings of several processes as one list: merged by route and fingerprint
    (counts and times summed, the most recent call site), most statements first."""
    merged: dict[tuple[str, str], NPlusOne] = {}
    for findings in lists:
        for finding in findings:
            key = (finding.route, finding.fingerprint_id)
            seen = merged.get(key)
            if seen is None:
                merged[key] = finding
                continue
            newer = finding if finding.last_seen >= seen.last_seen else seen
            merged[key] = msgspec.structs.replace(
                newer,
                units=seen.units + finding.units,
                statements=seen.statements + finding.statements,
                max_count=max(seen.max_count, finding.max_count),
                total_ms=seen.total_ms + finding.total_ms,
                call_site=newer.call_site or seen.call_site or finding.call_site,
            )
    return sorted(merged.values(), key=lambda f: f.statements, reverse=True)[:limit]


_detector = _defaults.slot("queries.n_plus_one", NPlusOneDetector.from_env)


def get_n_plus_one_detector() -> NPlusOneDetector:
    """The process's N+1 detector (made from ``N_PLUS_ONE_THRESHOLD`` at first import)."""
    return _detector.value


def set_n_plus_one_detector(detector: NPlusOneDetector) -> None:
    """Count into ``detector`` from the next unit of work on (``NPlusOneDetector(threshold=0)``
    turns detection off)."""
    _detector.value = detector
