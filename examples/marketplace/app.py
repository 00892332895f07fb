"""The marketplace's Starlette app, wired the way perfkit's docs tell users to.

``create_app(MarketplaceConfig(...))`` builds it; ``app_from_env()`` is the factory for
``uvicorn --factory marketplace.app:app_from_env`` (DATABASE_URL, REDIS_URL,
CACHE_NAMESPACE, and ``MARKETPLACE_CACHING=0`` to serve every read from PostgreSQL).

One ``AsyncTimedPool`` runs every statement, one ``AsyncRedisService`` caches the reads
(:class:`~marketplace.queries.CachedQueries`), a ``JobService`` enqueues the jobs, a
``CacheWarmer`` warms the seed's list on a schedule, and a ``perfkit.Perfkit`` kit over
them wraps the app in the request and compression middleware and serves the admin API
and dashboard at ``/api/admin/performance`` (PERFKIT_ADMIN_TOKEN).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import psycopg
import redis
import structlog
from psycopg import errors
from psycopg_pool import PoolTimeout, TooManyRequests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from marketplace import jobs as marketplace_jobs
from marketplace.queries import (
    CachedQueries,
    Conflict,
    NotFound,
    OrderRequest,
    ProductUpdate,
    Queries,
    Written,
    track_sql,
)
from marketplace.warmers import add_warmers
from perfkit import PayloadError, Perfkit, Settings
from perfkit.cache import AsyncCacheWarmer, AsyncRedisService, CacheWarmer
from perfkit.jobs import JobService
from perfkit.queries import AsyncTimedPool, QueryStats
from perfkit.settings import check_redis_url
from perfkit.types import ASGIApp

__all__ = ["ADMIN_PATH", "Marketplace", "MarketplaceConfig", "app_from_env", "create_app"]

ADMIN_PATH = "/api/admin/performance"
_encoder = msgspec.json.Encoder()


class MarketplaceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to build the app.

    ``caching=False`` serves every read from PostgreSQL (the bench's "before");
    ``warm_schedule`` starts the warmers' schedule (CACHE_WARMUP_DELAY, _INTERVAL) and
    the periodic performance log;
    ``bench_endpoints`` adds ``/api/bench/stats`` and ``/api/bench/reset`` (loopback
    benchmarking only: they are not authenticated); ``admin_token`` protects the admin
    API and dashboard at ``/api/admin/performance``; ``l1`` turns on the cache's in-process
    near cache (hits without a Redis round trip; across processes an invalidation
    reaches it after Redis's push, a few milliseconds — see docs/cache.md);
    ``health_interval``: seconds ``/healthz`` trusts its last database check (a state
    change shows within one interval; many health probes make one check per interval).
    ``stale_ttl``: the reads' stale window (seconds after expiry in which the old value is
    served while one refresh runs; None: none); ``heavy_ttl``: the heavy reads' TTL
    instead of the policy's (both for the bench: MARKETPLACE_STALE_TTL, _HEAVY_TTL).
    """

    database_url: str
    redis_url: str
    jobs_redis_url: str | None = None
    caching: bool = True
    warm_schedule: bool = True
    bench_endpoints: bool = False
    admin_token: str | None = None
    l1: bool = False
    pool_min: int = 2
    pool_max: int = 20
    health_interval: float = 2.0
    stale_ttl: float | None = None
    heavy_ttl: float | None = None


class Marketplace:
    """Everything the app holds: pool, cache, queries, jobs, monitor, warmer."""

    def __init__(self, config: MarketplaceConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.pool = AsyncTimedPool(
            config.database_url,
            query_stats=QueryStats(slow_query_ms=settings.slow_query_ms),
            min_size=config.pool_min,
            max_size=config.pool_max,
            timeout=settings.db_pool_timeout,
            max_waiting=settings.db_pool_max_waiting,
            statement_timeout=settings.db_statement_timeout,
            name="marketplace",
        )
        self.cache = AsyncRedisService(config.redis_url, settings=settings, l1=config.l1)
        self.queries: Queries = (
            CachedQueries(
                self.pool, self.cache, stale_ttl=config.stale_ttl, heavy_ttl=config.heavy_ttl
            )
            if config.caching
            else Queries(self.pool)
        )
        # Short timeouts: the app only enqueues and reads stats (no blocking dequeue), and
        # these calls run on the event loop.
        queues = redis.Redis.from_url(
            config.jobs_redis_url or config.redis_url,
            socket_connect_timeout=settings.redis_connect_timeout,
            socket_timeout=settings.redis_socket_timeout,
        )
        self.jobs = JobService.from_settings(settings, connection=queues)
        self.warmer = CacheWarmer(settings=settings)
        if isinstance(self.queries, CachedQueries):
            add_warmers(self.warmer, self.queries)
        # The kit builds the PerformanceMonitor over these parts and serves the admin API.
        self.kit = Perfkit(
            cache=self.cache,
            pool=self.pool,
            jobs=self.jobs,
            warmer=self.warmer,
            settings=settings,
            token=config.admin_token,
        )
        self.monitor = self.kit.monitor
        # GET reads answered, and those that ran no statement themselves (bench stats).
        self.reads = 0
        self.reads_without_sql = 0
        # The last database check of /healthz: (monotonic time, answered).
        self._database_check: tuple[float, bool] | None = None

    async def database_up(self) -> bool:
        """Whether PostgreSQL answered ``SELECT 1``, checked at most once per
        ``health_interval`` (and waiting at most that long for a connection)."""
        interval = self.config.health_interval
        last = self._database_check
        if last is not None and time.monotonic() - last[0] < interval:
            return last[1]
        try:
            async with self.pool.connection(timeout=interval) as conn:
                await conn.execute("SELECT 1")
            answered = True
        except psycopg.Error:
            answered = False
        self._database_check = (time.monotonic(), answered)
        return answered

    async def invalidate(self, written: Written) -> None:
        """Invalidate what a committed write made stale (before the response is sent)."""
        if self.config.caching:
            await self.cache.invalidate_tags(written.stale_tags)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the pool; with ``warm_schedule``, start the kit's background work (the
        warmers' schedule, the performance log). Undo all of it on exit."""
        await self.pool.open(wait=True)
        try:
            if self.config.warm_schedule:
                async with self.kit:
                    yield
            else:
                yield
        finally:
            await self.pool.close()
            await self.cache.close()
            self.jobs.connection.close()


# -- request helpers --------------------------------------------------------------------


class BadRequest(ValueError):
    """A query parameter or body that does not fit (answered with 400)."""


class TooLarge(ValueError):
    """A request body over ``MAX_BODY`` bytes (answered with 413)."""


# The largest request body read (an order of many items fits many times over).
MAX_BODY = 64 * 1024
# PostgreSQL's bigint: the ids' type.
_MAX_ID = 2**63 - 1


def _json(value: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


# Seconds a client should wait before trying again after a 503 from the database.
RETRY_AFTER = 1


def _database_error(exc: psycopg.OperationalError) -> Response:
    """503 with Retry-After, saying which of the bounded waits ran out (if one did)."""
    if isinstance(exc, TooManyRequests):
        why = "too many requests are waiting for a connection"
    elif isinstance(exc, PoolTimeout):
        why = "no connection was free in time"
    elif isinstance(exc, errors.QueryCanceled):
        why = "the statement took longer than the statement timeout"
    else:
        why = "it cannot be reached"
    response = _error(503, f"the database is unavailable ({why}); try again shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


_log = structlog.get_logger("marketplace")
# PostgreSQL down, the pool out of connections or too many waiting (psycopg_pool's
# PoolTimeout and TooManyRequests are OperationalErrors), a statement timeout.
_DATABASE_DOWN = psycopg.OperationalError
# Redis down for the job queues (the cache falls back to memory by itself).
_QUEUES_DOWN = redis.RedisError


def _int(
    request: Request, name: str, default: int | None, low: int = 1, high: int = 10**9
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def _page(request: Request, per_page: int = 20) -> tuple[int, int]:
    return (
        _int(request, "page", 1, 1, 10_000) or 1,
        _int(request, "per_page", per_page, 1, 100) or per_page,
    )


def _market(request: Request) -> Marketplace:
    market: Marketplace = request.app.state.market
    return market


Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(
    handler: Callable[[Request, Marketplace], Awaitable[Any]], *, counted: bool = True
) -> Handler:
    """An endpoint answering JSON; None is 404, BadRequest 400, NotFound 404, Conflict 409,
    PostgreSQL (or, for the job routes, Redis) unreachable 503.
    ``counted``: its GETs count in the bench's reads (and reads served without SQL)."""

    async def endpoint(request: Request) -> Response:
        market = _market(request)
        ran_sql = track_sql() if counted and request.method == "GET" else None
        try:
            result = await handler(request, market)
        except (BadRequest, msgspec.ValidationError, msgspec.DecodeError) as exc:
            return _error(400, str(exc))
        except TooLarge as exc:
            return _error(413, str(exc))
        except psycopg.DataError as exc:
            # Input the checks above let through and PostgreSQL refused (a value out of a
            # column's range): the client's mistake, named by type only.
            _log.info("marketplace.bad_value", error=type(exc).__name__)
            return _error(400, "a value is out of range for the database")
        except NotFound as exc:
            return _error(404, str(exc))
        except Conflict as exc:
            return _error(409, str(exc))
        except _DATABASE_DOWN as exc:
            _log.warning("marketplace.database_unavailable", error=type(exc).__name__)
            return _database_error(exc)
        except _QUEUES_DOWN as exc:
            _log.warning("marketplace.queues_unavailable", error=type(exc).__name__)
            return _error(503, "the job queues are unavailable; try again shortly")
        if ran_sql is not None:
            market.reads += 1
            market.reads_without_sql += not ran_sql[0]
        if isinstance(result, Response):
            return result
        if result is None:
            return _error(404, "not found")
        return _json(result)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _path_id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    if not 1 <= value <= _MAX_ID:
        raise BadRequest(f"{name} must be between 1 and {_MAX_ID}, got {value}")
    return value


async def _body(request: Request) -> bytes:
    """The request body, refused past ``MAX_BODY`` bytes (by Content-Length, or counted
    while reading a streamed one) before more is read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise TooLarge(f"the body must be at most {MAX_BODY} bytes, got {length}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"the body must be at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# -- reads ------------------------------------------------------------------------------


async def products(request: Request, market: Marketplace) -> Any:
    """GET /api/products?page&per_page&category_id"""
    page, per_page = _page(request)
    category_id = _int(request, "category_id", None)
    return await market.queries.products_page(page, per_page, category_id)


async def search(request: Request, market: Marketplace) -> Any:
    """GET /api/search?q&category_id&min_price&max_price&page&per_page"""
    q = request.query_params.get("q", "").strip()
    if not q or len(q) > 200:
        raise BadRequest("q must be 1 to 200 characters")
    if "\x00" in q:
        raise BadRequest("q must not contain NUL characters")
    page, per_page = _page(request)
    return await market.queries.search(
        q,
        _int(request, "category_id", None),
        _int(request, "min_price", None, 0),
        _int(request, "max_price", None, 0),
        page,
        per_page,
    )


async def popular(request: Request, market: Marketplace) -> Any:
    """GET /api/products/popular"""
    return await market.queries.popular_products(20)


async def product(request: Request, market: Marketplace) -> Any:
    """GET /api/products/{id}"""
    return await market.queries.product(_path_id(request, "product_id"))


async def product_analytics(request: Request, market: Marketplace) -> Any:
    """GET /api/products/{id}/analytics"""
    return await market.queries.product_analytics(_path_id(request, "product_id"))


async def categories(request: Request, market: Marketplace) -> Any:
    """GET /api/categories"""
    return await market.queries.categories()


async def user_orders(request: Request, market: Marketplace) -> Any:
    """GET /api/users/{id}/orders?page&per_page"""
    page, per_page = _page(request, per_page=10)
    return await market.queries.user_orders(_path_id(request, "user_id"), page, per_page)


async def seller_dashboard(request: Request, market: Marketplace) -> Any:
    """GET /api/sellers/{id}/dashboard"""
    return await market.queries.seller_dashboard(_path_id(request, "seller_id"))


async def category_leaderboard(request: Request, market: Marketplace) -> Any:
    """GET /api/leaderboards/categories"""
    return await market.queries.category_leaderboard(10)


async def top_sellers(request: Request, market: Marketplace) -> Any:
    """GET /api/leaderboards/sellers"""
    return await market.queries.top_sellers(10)


async def best_sellers(request: Request, market: Marketplace) -> Any:
    """GET /api/leaderboards/products"""
    return await market.queries.best_sellers(10)


async def sales_summary(request: Request, market: Marketplace) -> Any:
    """GET /api/analytics/summary"""
    return await market.queries.sales_summary()


# -- writes -----------------------------------------------------------------------------


async def create_order(request: Request, market: Marketplace) -> Any:
    """POST /api/orders {"user_id": 1, "items": {"<product id>": quantity}}"""
    order = msgspec.json.decode(await _body(request), type=OrderRequest)
    written = await market.queries.create_order(order)
    await market.invalidate(written)
    summary = written.result
    if written.email is not None:
        try:
            market.jobs.add_email_job(
                written.email,
                "Order Confirmation",
                marketplace_jobs.ORDER_CONFIRMATION,
                {
                    "orderId": summary.id,
                    "items": len(summary.items),
                    "total": summary.total_cents,
                },
            )
        except _QUEUES_DOWN as exc:
            # The order is committed: answer it; the confirmation is what goes missing.
            _log.warning(
                "marketplace.confirmation_not_queued", order=summary.id, error=type(exc).__name__
            )
    return _json(summary, 201)


async def update_product(request: Request, market: Marketplace) -> Any:
    """PATCH /api/products/{id} {"price_cents": 1999, "stock": 5}"""
    update = msgspec.json.decode(await _body(request), type=ProductUpdate)
    written = await market.queries.update_product(_path_id(request, "product_id"), update)
    await market.invalidate(written)
    return await market.queries.product(_path_id(request, "product_id"))


class JobRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/jobs``: a marketplace processor and its payload."""

    processor: str
    payload: dict[str, Any] = {}
    delay: float | None = None


JOB_PROCESSORS = (
    "analytics.sales_aggregation",
    "analytics.report_generation",
    "analytics.image_thumbnails",
    "data.export",
)


async def enqueue_job(request: Request, market: Marketplace) -> Any:
    """POST /api/jobs {"processor": "analytics.report_generation", "payload": {...}}"""
    job = msgspec.json.decode(await _body(request), type=JobRequest)
    if job.processor not in JOB_PROCESSORS:
        raise BadRequest(f"processor must be one of {', '.join(JOB_PROCESSORS)}")
    try:
        job_id = market.jobs.enqueue(job.processor, job.payload, delay=job.delay)
    except PayloadError as exc:
        raise BadRequest(str(exc)) from exc
    return _json({"job_id": job_id, "processor": job.processor}, 202)


# -- bench and health -------------------------------------------------------------------


class BenchStats(msgspec.Struct, frozen=True, kw_only=True):
    """What ``perfkit bench`` reads from the server after a load phase."""

    caching: bool
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float
    stale_hits: int
    background_refreshes: int
    queries: int
    slow_queries: int
    slow_query_pct: float
    pool_max: int
    pool_in_use: int
    pool_utilization_pct: float
    pool_usage_ms: int
    pool_requests_queued: int
    reads: int
    reads_without_sql: int


async def bench_stats(request: Request, market: Marketplace) -> Any:
    """GET /api/bench/stats (bench_endpoints only)"""
    cache = await market.cache.stats()
    pool = market.pool.stats(top=0)
    return BenchStats(
        caching=market.config.caching,
        cache_hits=cache.hits,
        cache_misses=cache.misses,
        cache_hit_rate=cache.hit_rate,
        stale_hits=cache.stale_hits,
        background_refreshes=cache.background_refreshes,
        queries=pool.queries.count,
        slow_queries=pool.queries.slow,
        slow_query_pct=pool.queries.slow_pct,
        pool_max=pool.pool.max_size,
        pool_in_use=pool.pool.in_use,
        pool_utilization_pct=pool.pool.utilization_pct,
        pool_usage_ms=pool.pool.usage_ms,
        pool_requests_queued=pool.pool.requests_queued,
        reads=market.reads,
        reads_without_sql=market.reads_without_sql,
    )


async def bench_reset(request: Request, market: Marketplace) -> Any:
    """POST /api/bench/reset (bench_endpoints only): zero the cache and query stats."""
    market.cache.reset_stats()
    market.pool.reset_stats()
    market.reads = market.reads_without_sql = 0
    return {"reset": True}


async def warm(request: Request, market: Marketplace) -> Any:
    """POST /api/bench/warm (bench_endpoints only): run every warmer now."""
    return await AsyncCacheWarmer.of(market.warmer).warm()


async def static(request: Request, market: Marketplace) -> Any:
    """GET /api/bench/static (bench_endpoints only): a fixed answer, no cache, no SQL: what
    the HTTP stack and the middleware cost a request (the bench's floor)."""
    return _STATIC


_STATIC = {"static": True, "note": "the bench's HTTP floor: no cache, no SQL"}


async def health(request: Request, market: Marketplace) -> Any:
    """GET /healthz: 200 while PostgreSQL answers, 503 (with Retry-After) while it does not
    (the answer is at most ``health_interval`` seconds old); ``status`` is ``degraded`` while
    the cache cannot work normally (Redis away, full or read-only: reads then come from
    PostgreSQL)."""
    if not await market.database_up():
        response = _json(
            {
                "ok": False,
                "status": "unavailable",
                "database": "unavailable",
                "caching": market.config.caching,
            },
            503,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response
    status = "ok"
    if market.config.caching:
        try:
            await market.cache.ping()
        except Exception as exc:  # the cache's check raises whatever Redis answered
            _log.info("marketplace.cache_degraded", error=type(exc).__name__)
            status = "degraded"
    return {"ok": True, "status": status, "database": "up", "caching": market.config.caching}


def _routes(config: MarketplaceConfig) -> list[Route]:
    routes = [
        Route("/healthz", _endpoint(health, counted=False)),
        Route("/api/products", _endpoint(products)),
        Route("/api/search", _endpoint(search)),
        Route("/api/products/popular", _endpoint(popular)),
        Route("/api/products/{product_id:int}", _endpoint(product)),
        Route("/api/products/{product_id:int}", _endpoint(update_product), methods=["PATCH"]),
        Route("/api/products/{product_id:int}/analytics", _endpoint(product_analytics)),
        Route("/api/categories", _endpoint(categories)),
        Route("/api/users/{user_id:int}/orders", _endpoint(user_orders)),
        Route("/api/sellers/{seller_id:int}/dashboard", _endpoint(seller_dashboard)),
        Route("/api/leaderboards/categories", _endpoint(category_leaderboard)),
        Route("/api/leaderboards/sellers", _endpoint(top_sellers)),
        Route("/api/leaderboards/products", _endpoint(best_sellers)),
        Route("/api/analytics/summary", _endpoint(sales_summary)),
        Route("/api/orders", _endpoint(create_order), methods=["POST"]),
        Route("/api/jobs", _endpoint(enqueue_job), methods=["POST"]),
    ]
    if config.bench_endpoints:
        routes += [
            Route("/api/bench/stats", _endpoint(bench_stats, counted=False)),
            Route("/api/bench/reset", _endpoint(bench_reset, counted=False), methods=["POST"]),
            Route("/api/bench/warm", _endpoint(warm, counted=False), methods=["POST"]),
            Route("/api/bench/static", _endpoint(static, counted=False)),
        ]
    return routes


def create_app(config: MarketplaceConfig, settings: Settings | None = None) -> ASGIApp:
    """The marketplace as an ASGI app (its state at ``app.state.market`` of the inner app)."""
    settings = settings if settings is not None else Settings.from_env()
    market = Marketplace(config, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with market.running():
            yield

    routes: list[BaseRoute] = [*_routes(config), Mount(ADMIN_PATH, app=market.kit.asgi_admin())]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.market = market
    wrapped = market.kit.asgi(app)
    wrapped.market = market  # type: ignore[attr-defined]
    # Without a token every admin route answers 403 (the kit's rule).
    wrapped.admin_mounted = config.admin_token is not None  # type: ignore[attr-defined]
    return wrapped


def _jobs_redis_url() -> str | None:
    url = os.environ.get("MARKETPLACE_JOBS_REDIS_URL", "").strip()
    return check_redis_url(url, "MARKETPLACE_JOBS_REDIS_URL") if url else None


def _seconds(name: str) -> float | None:
    """The environment variable ``name`` as seconds >= 0; None when unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses NaN
        raise SystemExit(f"{name} must be a number of seconds >= 0, got {text!r}")
    return value


def app_from_env() -> ASGIApp:
    """The app configured from the environment (the factory for ``uvicorn --factory``)."""
    settings = Settings.from_env()
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set")
    flag = os.environ.get("MARKETPLACE_CACHING", "1").strip().lower()
    return create_app(
        MarketplaceConfig(
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            jobs_redis_url=_jobs_redis_url(),
            caching=flag not in ("0", "false", "no", "off"),
            bench_endpoints=os.environ.get("MARKETPLACE_BENCH_ENDPOINTS") == "1",
            admin_token=settings.perfkit_admin_token,
            l1=os.environ.get("MARKETPLACE_L1") == "1",
            pool_max=settings.db_pool_max,
            pool_min=settings.db_pool_min,
            stale_ttl=_seconds("MARKETPLACE_STALE_TTL"),
            heavy_ttl=_seconds("MARKETPLACE_HEAVY_TTL"),
        ),
        settings,
    )
