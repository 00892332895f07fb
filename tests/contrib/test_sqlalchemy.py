"""perfkit.contrib.sqlalchemy on real PostgreSQL: ORM and Core, sync and asyncio engines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import perfkit._compat.sqlalchemy
from perfkit import Perfkit, Settings
from perfkit.contrib.sqlalchemy import instrument
from perfkit.queries import QueryStats


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    price_cents: Mapped[int]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(database_url), pool_size=3
    )
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def async_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        "postgresql+psycopg://",
        async_creator=lambda: psycopg.AsyncConnection.connect(database_url),
    )
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


def by_text(stats: QueryStats) -> dict[str, int]:
    return {s.fingerprint: s.count for s in stats.stats().by_fingerprint}


def test_orm_statements_are_timed_by_fingerprint(engine: sa.Engine) -> None:
    timed = instrument(engine, query_stats=QueryStats(), name="orm")
    with Session(engine) as session:
        session.add_all([Book(id=i, title=f"t{i}", price_cents=100 * i) for i in range(1, 4)])
        session.commit()
        for i in range(1, 4):
            assert session.get(Book, i) is not None
        session.expunge_all()
        cheap = session.scalars(sa.select(Book).where(Book.price_cents < 250)).all()
    assert len(cheap) == 2
    snapshot = timed.query_stats.stats()
    counts = by_text(timed.query_stats)
    lookups = [text for text in counts if text.startswith("SELECT") and "books.id =" in text]
    assert len(lookups) == 1, counts  # three get()s, one fingerprint
    assert counts[lookups[0]] == 3
    assert any(text.startswith("INSERT INTO books") for text in counts)
    # the filtered select returned 2 rows; every statement has a duration
    assert snapshot.rows >= 2 + 3
    assert all(s.p50_ms > 0 for s in snapshot.by_fingerprint)


def test_parameter_values_never_reach_stats_or_the_slow_log(engine: sa.Engine) -> None:
    timed = instrument(engine, query_stats=QueryStats(slow_query_ms=0), name="secret-test")
    with structlog.testing.capture_logs() as logs, Session(engine) as session:
        session.add(Book(id=7, title="hunter2-title", price_cents=4242))
        session.commit()
        found = session.scalars(sa.select(Book).where(Book.title == "hunter2-title")).one()
        assert found.id == 7
    slow = [entry for entry in logs if entry["event"] == "slow_query"]
    assert slow and all(entry["pool"] == "secret-test" for entry in slow)
    dumped = repr(logs) + repr(timed.stats())
    assert "hunter2" not in dumped and "4242" not in dumped


async def test_core_on_an_async_engine(async_engine: AsyncEngine) -> None:
    timed = instrument(async_engine, query_stats=QueryStats())
    books = Book.__table__
    async with async_engine.begin() as conn:
        await conn.execute(
            sa.insert(books),
            [{"id": i, "title": f"a{i}", "price_cents": i} for i in range(10, 15)],
        )
    async with async_engine.connect() as conn:
        result = await conn.execute(sa.select(books.c.id).where(books.c.id >= 12))
        assert sorted(result.scalars()) == [12, 13, 14]
    counts = by_text(timed.query_stats)
    assert any(text.startswith("SELECT books.id FROM books WHERE") for text in counts), counts
    assert timed.stats().queries.count >= 2


def test_a_failing_statement_counts_as_an_error(engine: sa.Engine) -> None:
    timed = instrument(engine, query_stats=QueryStats())
    with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError):
        conn.execute(sa.text("SELECT no_such_column FROM books"))
    snapshot = timed.query_stats.stats()
    assert snapshot.errors == 1
    [failed] = [s for s in snapshot.by_fingerprint if "no_such_column" in s.fingerprint]
    assert failed.errors == 1


@pytest.mark.parametrize("internals", [True, False], ids=["sa-internals", "sa-public"])
def test_pool_stats_follow_the_engine_pool(
    engine: sa.Engine, internals: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The overflow limit is SQLAlchemy's private (perfkit._compat.sqlalchemy): without it,
    # max_size is the pool's size alone.
    monkeypatch.setattr(perfkit._compat.sqlalchemy, "INTERNALS", internals)
    engine.dispose()
    timed = instrument(engine, query_stats=QueryStats(), name="pooled")
    with engine.connect() as first, engine.connect() as second:
        first.execute(sa.text("SELECT 1"))
        second.execute(sa.text("SELECT 1"))
        busy = timed.pool_stats()
        max_size = 3 + 10 if internals else 3
        assert (busy.in_use, busy.max_size, busy.name) == (2, max_size, "pooled")
    idle = timed.stats().pool
    assert (idle.in_use, idle.idle, idle.requests, idle.connections) == (0, 2, 2, 2)
    timed.reset_stats()
    assert timed.stats().pool.requests == 0
    assert timed.stats().queries.count == 0


def test_remove_stops_recording(engine: sa.Engine) -> None:
    timed = instrument(engine, query_stats=QueryStats())
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        timed.remove()
        conn.execute(sa.text("SELECT 2"))
    assert timed.query_stats.stats().count == 1


def test_one_stats_object_can_serve_several_engines(engine: sa.Engine, database_url: str) -> None:
    shared = QueryStats()
    other = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(database_url))
    instrument(engine, query_stats=shared, name="a")
    instrument(other, query_stats=shared, name="b")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    with other.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    other.dispose()
    assert by_text(shared)["SELECT ?"] == 2


TOKEN = "sqlalchemy-kit-token-0123456789"


def test_the_kit_reads_an_instrumented_engine_as_its_database(engine: sa.Engine) -> None:
    # Issue 25: an engine's statements are the kit's database source, as a TimedPool is.
    timed = instrument(engine, query_stats=QueryStats(slow_query_ms=10), name="shop")
    kit = Perfkit(pool=timed, settings=Settings(perfkit_admin_token=TOKEN), fleet=False,
                  performance_log=False)  # fmt: skip
    with Session(engine) as session:
        session.add_all([Book(id=i, title=f"t{i}", price_cents=100) for i in range(1, 4)])
        session.commit()
        for book_id in (1, 2):
            session.execute(sa.select(Book, sa.func.pg_sleep(0.03)).where(Book.id == book_id))
    admin = httpx.Client(
        transport=httpx.WSGITransport(app=kit.wsgi_admin()),
        base_url="http://admin",
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    counted = timed.query_stats.stats().count
    # The two pg_sleep reads are slow; on a loaded machine another statement may be too.
    slow = timed.query_stats.stats().slow
    assert counted >= 3 and slow >= 2

    queries = admin.get("/queries")
    assert queries.status_code == 200, queries.text
    report = queries.json()
    assert report["queries"]["count"] == counted
    assert report["pool"]["name"] == "shop" and report["pool"]["requests"] >= 2
    assert any("pg_sleep" in s["fingerprint"] and s["slow"] == 2
               for s in report["queries"]["by_fingerprint"])  # fmt: skip
    database = admin.get("/dashboard").json()["database"]
    assert database["queries"]["count"] == counted and database["pool"]["name"] == "shop"
    summary = admin.get("/summary").json()
    assert summary["slow_query_pct"] == pytest.approx(100.0 * slow / counted)
    assert "slow_query_pct" in {finding["metric"] for finding in summary["recommendations"]}
    metrics = admin.get("/metrics").text
    assert f"perfkit_db_queries_statements_total {counted}" in metrics
    assert "perfkit_db_pool_connections_open" in metrics
    # The kit pings only its own pools: an engine is not reported down for want of one.
    health = admin.get("/health/detailed")
    assert health.status_code == 200, health.text
    assert "database" not in {d["name"] for d in health.json()["dependencies"]}
    assert admin.post("/metrics/reset", json={}).json()["reset"] == ["queries"]
    assert timed.query_stats.stats().count == 0


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match="Engine or AsyncEngine, got str"):
        instrument("postgresql://")  # type: ignore[arg-type]
