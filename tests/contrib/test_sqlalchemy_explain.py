"""Plans of slow statements run through an instrumented SQLAlchemy engine, sync and asyncio,
on real PostgreSQL: the EXPLAIN connection is made like the engine's (here, by a creator)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import msgspec
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from perfkit._errors import ConfigError
from perfkit.contrib.sqlalchemy import instrument
from perfkit.queries import QueryStats

SECRET = "sa-secret-5b1e"


@pytest.fixture
def people(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL);"
            "INSERT INTO people SELECT i, 'p' || i FROM generate_series(1, 20000) i;"
            "ANALYZE people"
        )
    yield database_url


def test_a_slow_orm_statement_gets_its_plan(people: str) -> None:
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(people))
    stats = QueryStats(slow_query_ms=0)
    timed = instrument(engine, query_stats=stats, explain=True)
    try:
        with engine.connect() as conn:
            for _ in range(5):
                conn.execute(sa.text("SELECT id FROM people WHERE email = :e"), {"e": SECRET})
        deadline = time.monotonic() + 20
        while stats.plans is None or stats.plans.stats().explains < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        plans = stats.stats().plans
    finally:
        timed.remove()
        engine.dispose()
    (plan,) = plans
    assert plan.fingerprint == "SELECT id FROM people WHERE email = ?"
    assert plan.root.node == "Seq Scan" and plan.root.costliest
    assert SECRET not in msgspec.json.encode(stats.stats()).decode()


async def test_the_async_engine_is_explained_too(people: str) -> None:
    engine = create_async_engine(
        "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(people)
    )
    stats = QueryStats(slow_query_ms=0)
    timed = instrument(engine, query_stats=stats, explain=True)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT id FROM people WHERE email = :e"), {"e": SECRET})
        for _ in range(1000):
            if stats.plans is not None and stats.plans.stats().explains:
                break
            await asyncio.sleep(0.02)
        assert [p.fingerprint for p in stats.stats().plans] == [
            "SELECT id FROM people WHERE email = ?"
        ]
    finally:
        timed.remove()
        await engine.dispose()


def test_explain_needs_the_psycopg_driver() -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(ConfigError, match="psycopg driver"):
        instrument(engine, explain=True)
