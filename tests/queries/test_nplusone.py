"""N+1 detection through perfkit's pools behind real Starlette (ASGI) and Flask (WSGI)
apps, with the request middleware, against the test's own PostgreSQL schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from perfkit.metrics import PerformanceMonitor
from perfkit.queries import (
    AsyncTimedPool,
    NPlusOne,
    NPlusOneDetector,
    QueryStats,
    TimedPool,
    get_n_plus_one_detector,
    set_n_plus_one_detector,
    unit_of_work,
)
from perfkit.queries._merge import export_query_stats, merge_query_exports
from perfkit.settings import Settings
from tests.metrics.test_prometheus import promtool_check

SECRET = "secret-parameter-4711"
BOOKS = 12


def line_of(marker: str) -> int:
    """The line of this file holding ``marker`` (the expected call site)."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of" not in text)


@pytest.fixture(autouse=True)
def detector() -> Iterator[NPlusOneDetector]:
    """A fresh process detector (threshold 10) for each test."""
    before = get_n_plus_one_detector()
    fresh = NPlusOneDetector(threshold=10)
    set_n_plus_one_detector(fresh)
    yield fresh
    set_n_plus_one_detector(before)


@pytest.fixture
def books(database_url: str) -> str:
    with TimedPool(database_url, min_size=1, max_size=1) as pool, pool.connection() as conn:
        conn.execute("CREATE TABLE book (id int PRIMARY KEY, title text, author_id int)")
        conn.execute("CREATE TABLE author (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO author SELECT i, 'author ' || i FROM generate_series(1, 20) i")
        conn.execute(f"INSERT INTO book SELECT i, 't' || i, i FROM generate_series(1, {BOOKS}) i")
    return database_url


def list_authors(pool: TimedPool) -> list[str]:
    """The N+1: one statement for the books, then one per book for its author."""
    names = []
    with pool.connection() as conn:
        books = conn.execute("SELECT id, author_id FROM book ORDER BY id").fetchall()
        for _, author_id in books:
            row = conn.execute("SELECT name FROM author WHERE id = %s", (author_id,))  # N+1 sync
            names.append(row.fetchone()[0])
    return names


def distinct_statements(pool: TimedPool) -> int:
    """Twenty statements of different shapes (aliases differ), each run once: no N+1."""
    with pool.connection() as conn:
        return sum(conn.execute(f"SELECT %s::int AS c{i}", (i,)).fetchone()[0] for i in range(20))


def only_mine(found: list[NPlusOne]) -> list[NPlusOne]:
    return [f for f in found if "author" in f.fingerprint]


@pytest.fixture
def pool(books: str, stats: QueryStats) -> Iterator[TimedPool]:
    with TimedPool(books, query_stats=stats, min_size=1, max_size=2, timeout=5) as pool:
        pool.wait(10)
        yield pool


def flask_app(pool: TimedPool, monitor: PerformanceMonitor) -> Flask:
    app = Flask(__name__)

    @app.get("/books/authors")
    def authors() -> dict[str, list[str]]:
        return {"authors": list_authors(pool)}

    @app.get("/sum")
    def total() -> dict[str, int]:
        return {"sum": distinct_statements(pool)}

    app.wsgi_app = monitor.wsgi(app.wsgi_app, compress=False)  # type: ignore[method-assign]
    return app


def test_flask_request_n_plus_one_is_found_with_its_call_site(
    pool: TimedPool, detector: NPlusOneDetector
) -> None:
    monitor = PerformanceMonitor(settings=Settings())
    client = flask_app(pool, monitor).test_client()
    assert client.get("/books/authors").status_code == 200
    (found,) = detector.findings()
    assert found.kind == "request"
    assert found.route == "/books/authors"
    assert found.fingerprint == "SELECT name FROM author WHERE id = ?"
    assert (found.units, found.statements, found.max_count) == (1, BOOKS, BOOKS)
    assert found.total_ms > 0
    assert found.call_site is not None
    assert found.call_site.file == __file__
    assert found.call_site.line == line_of("# N+1 sync")
    assert found.call_site.function == "list_authors"
    # A second request: the same finding, one more unit.
    assert client.get("/books/authors").status_code == 200
    (again,) = detector.findings()
    assert (again.units, again.statements) == (2, 2 * BOOKS)


def test_flask_request_of_distinct_statements_has_no_finding(
    pool: TimedPool, detector: NPlusOneDetector
) -> None:
    client = flask_app(pool, PerformanceMonitor(settings=Settings())).test_client()
    assert client.get("/sum").json == {"sum": sum(range(20))}
    assert detector.findings() == []
    assert detector.by_route() == {}


def test_below_the_threshold_is_no_finding(pool: TimedPool, detector: NPlusOneDetector) -> None:
    with unit_of_work("job", "nine"), pool.connection() as conn:
        for i in range(9):
            conn.execute("SELECT name FROM author WHERE id = %s", (i,))
    assert detector.findings() == []
    with unit_of_work("job", "ten"), pool.connection() as conn:
        for i in range(10):
            conn.execute("SELECT name FROM author WHERE id = %s", (i,))
    assert [f.route for f in detector.findings()] == ["ten"]


async def test_starlette_requests_sync_and_async_endpoints(
    books: str, stats: QueryStats, pool: TimedPool, detector: NPlusOneDetector
) -> None:
    async with AsyncTimedPool(books, query_stats=stats, min_size=1, max_size=2) as apool:

        async def async_authors(request: Request) -> JSONResponse:
            names = []
            async with apool.connection() as conn:
                cursor = await conn.execute("SELECT id, author_id FROM book ORDER BY id")
                for _, author_id in await cursor.fetchall():
                    row = await conn.execute(
                        "SELECT name FROM author WHERE id = %s", (author_id,)
                    )  # N+1 async
                    names.append((await row.fetchone())[0])
            return JSONResponse(names)

        def sync_authors(request: Request) -> JSONResponse:  # run in Starlette's thread pool
            return JSONResponse(list_authors(pool))

        def distinct(request: Request) -> JSONResponse:
            return JSONResponse(distinct_statements(pool))

        app = Starlette(
            routes=[
                Route("/async/{shop}/authors", async_authors),
                Route("/sync/{shop}/authors", sync_authors),
                Route("/sum", distinct),
            ]
        )
        monitor = PerformanceMonitor(settings=Settings())
        transport = httpx.ASGITransport(monitor.asgi(app, compress=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/sum")).status_code == 200
            assert detector.findings() == []
            assert (await client.get("/async/7/authors")).status_code == 200
            assert (await client.get("/sync/8/authors")).status_code == 200
    found = {f.route: f for f in detector.findings()}
    assert set(found) == {"/async/{shop}/authors", "/sync/{shop}/authors"}
    async_site = found["/async/{shop}/authors"].call_site
    sync_site = found["/sync/{shop}/authors"].call_site
    assert async_site is not None and sync_site is not None
    # The async call site is the statement's first line (Python reports a call's start).
    assert async_site.file == __file__
    assert async_site.function.endswith("<locals>.async_authors")
    assert async_site.line in (line_of("# N+1 async") - 2, line_of("# N+1 async"))
    assert (sync_site.file, sync_site.line) == (__file__, line_of("# N+1 sync"))
    # The counter, per route, in a promtool-clean exposition.
    text = monitor.exposition()
    assert 'perfkit_db_n_plus_one_total{route="/async/{shop}/authors"} 1' in text
    assert 'perfkit_db_n_plus_one_total{route="/sync/{shop}/authors"} 1' in text
    returncode, problems = promtool_check(text)
    assert returncode == 0, problems


def test_concurrent_requests_count_apart(pool: TimedPool, detector: NPlusOneDetector) -> None:
    # Eight threads, each a unit of its own running six of the statement: twelve in all
    # would be over the threshold, six in one unit is not.
    def run() -> None:
        with unit_of_work("job", "six"), pool.connection() as conn:
            for i in range(6):
                conn.execute("SELECT name FROM author WHERE id = %s", (i,))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert detector.findings() == []


def test_the_warning_is_rate_limited_and_carries_no_parameter_value(
    pool: TimedPool, detector: NPlusOneDetector
) -> None:
    with capture_logs() as logs:
        for _ in range(3):
            with unit_of_work("request", "/secret"), pool.connection() as conn:
                for _ in range(BOOKS):
                    conn.execute("SELECT name FROM author WHERE name = %s", (SECRET,))
    warnings = [e for e in logs if e["event"] == "db.n_plus_one"]
    assert len(warnings) == 1  # three units, one finding, logged once per log interval
    (warning,) = warnings
    assert warning["route"] == "/secret"
    assert warning["count"] == BOOKS
    assert warning["call_site"].startswith(f"{__file__}:")
    assert SECRET not in repr(logs)
    assert SECRET not in repr(detector.findings())
    (found,) = detector.findings()
    assert found.units == 3


def test_at_most_ten_warnings_a_minute_whatever_the_findings(pool: TimedPool) -> None:
    with capture_logs() as logs:
        for route in range(15):
            with unit_of_work("request", f"/r{route}"), pool.connection() as conn:
                for i in range(10):
                    conn.execute("SELECT name FROM author WHERE id = %s", (i,))
    assert len([e for e in logs if e["event"] == "db.n_plus_one"]) == 10
    assert len(get_n_plus_one_detector().findings()) == 15  # all found, ten logged


def test_memory_is_bounded_per_unit_and_overall(pool: TimedPool) -> None:
    detector = NPlusOneDetector(threshold=3, max_per_unit=4, max_findings=5)
    set_n_plus_one_detector(detector)
    for unit in range(3):
        with unit_of_work("job", f"job-{unit}"), pool.connection() as conn:
            for shape in range(10):  # ten statement shapes, each repeated: four counted
                for i in range(3):
                    conn.execute(f"SELECT name AS n{shape} FROM author WHERE id = %s", (i,))
    found = detector.findings()
    assert len(found) == 5  # three units of four findings, five kept
    assert {f.route for f in found} <= {"job-1", "job-2"}  # the oldest were dropped
    assert sum(detector.by_route().values()) == 12  # the counter counts every one


def test_threshold_zero_turns_detection_off(pool: TimedPool) -> None:
    detector = NPlusOneDetector(threshold=0)
    set_n_plus_one_detector(detector)
    with unit_of_work("job", "off"), pool.connection() as conn:
        for i in range(20):
            conn.execute("SELECT name FROM author WHERE id = %s", (i,))
    assert detector.findings() == []


def test_the_threshold_comes_from_the_environment() -> None:
    assert NPlusOneDetector.from_env({"N_PLUS_ONE_THRESHOLD": "25"}).threshold == 25
    assert NPlusOneDetector.from_env({}).threshold == 10


def test_fleet_exports_merge_findings_by_route_and_fingerprint(
    pool: TimedPool, stats: QueryStats
) -> None:
    with unit_of_work("request", "/a"), pool.connection() as conn:
        for i in range(BOOKS):
            conn.execute("SELECT name FROM author WHERE id = %s", (i,))
    one = export_query_stats(stats, 10)
    (found,) = one.n_plus_one
    merged = merge_query_exports([one, one], 10)
    (both,) = merged.n_plus_one
    assert (both.units, both.statements, both.max_count) == (2, 2 * BOOKS, BOOKS)
    assert both.total_ms == pytest.approx(2 * found.total_ms)
    assert both.call_site == found.call_site
