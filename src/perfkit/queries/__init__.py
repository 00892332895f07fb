"""perfkit.queries: timed PostgreSQL pools, statement statistics, pagination helpers.

See docs/queries.md. ``TimedPool`` / ``AsyncTimedPool`` wrap psycopg_pool's pools and time
every statement run through their connections; ``pool.stats()`` returns a
:class:`TimedPoolStats`. Any :class:`DatabaseSource` (these pools, Django's database, an
instrumented SQLAlchemy engine) is what the kit reads as its database. Statements
repeated within one request or job run are N+1 findings (:class:`NPlusOneDetector`).

The timed cursor classes the pools install on their connections, and the sync/async
bases of the pools and paginations, are the package's own (its private modules): an
application meets them only through a pool's connections.
"""

from perfkit._units import unit_of_work
from perfkit.queries._explain_base import ExplainSettings, ExplainStats, PlanSampler
from perfkit.queries._fingerprint import Fingerprint, normalize_sql
from perfkit.queries._nplusone import (
    CallSite,
    NPlusOne,
    NPlusOneDetector,
    get_n_plus_one_detector,
    set_n_plus_one_detector,
)
from perfkit.queries._pagination import KeysetPagination, OffsetPagination
from perfkit.queries._pagination_async import AsyncKeysetPagination, AsyncOffsetPagination
from perfkit.queries._pagination_base import KeysetPage, OffsetPage
from perfkit.queries._plan import PlanNode, QueryPlan
from perfkit.queries._pool import TimedPool
from perfkit.queries._pool_async import AsyncTimedPool
from perfkit.queries._pool_base import PoolStats, TimedPoolStats
from perfkit.queries._source import DatabaseSource, DatabaseStats
from perfkit.queries._stats import QueryStats, QueryStatsSnapshot, SlowQuery, StatementStats

__all__ = [
    "AsyncKeysetPagination",
    "AsyncOffsetPagination",
    "AsyncTimedPool",
    "CallSite",
    "DatabaseSource",
    "DatabaseStats",
    "ExplainSettings",
    "ExplainStats",
    "Fingerprint",
    "KeysetPage",
    "KeysetPagination",
    "NPlusOne",
    "NPlusOneDetector",
    "OffsetPage",
    "OffsetPagination",
    "PlanNode",
    "PlanSampler",
    "PoolStats",
    "QueryPlan",
    "QueryStats",
    "QueryStatsSnapshot",
    "SlowQuery",
    "StatementStats",
    "TimedPool",
    "TimedPoolStats",
    "get_n_plus_one_detector",
    "normalize_sql",
    "set_n_plus_one_detector",
    "unit_of_work",
]
