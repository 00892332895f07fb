"""N+1 detection through an instrumented SQLAlchemy engine: the ORM's lazy loads in a
Flask request (sync engine) and a Starlette request (asyncio engine), real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from perfkit import Settings
from perfkit.contrib.sqlalchemy import instrument
from perfkit.metrics import PerformanceMonitor
from perfkit.queries import (
    NPlusOneDetector,
    QueryStats,
    get_n_plus_one_detector,
    set_n_plus_one_detector,
)

SHELVES = 15


class Base(DeclarativeBase):
    pass


class Shelf(Base):
    __tablename__ = "shelf"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id"))
    owner: Mapped[Owner] = relationship(lazy="select")


class Owner(Base):
    __tablename__ = "owner"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def line_of(marker: str) -> int:
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of" not in text)


@pytest.fixture(autouse=True)
def detector() -> Iterator[NPlusOneDetector]:
    before = get_n_plus_one_detector()
    fresh = NPlusOneDetector(threshold=10)
    set_n_plus_one_detector(fresh)
    yield fresh
    set_n_plus_one_detector(before)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(database_url), pool_size=2
    )
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Owner(id=i, name=f"owner {i}") for i in range(1, SHELVES + 1)])
        session.add_all([Shelf(id=i, owner_id=i) for i in range(1, SHELVES + 1)])
        session.commit()
    yield engine
    engine.dispose()


def test_lazy_loads_in_a_flask_request_are_an_n_plus_one(
    engine: sa.Engine, detector: NPlusOneDetector
) -> None:
    instrument(engine, query_stats=QueryStats(), name="orm")
    app = Flask(__name__)

    @app.get("/shelves")
    def shelves() -> dict[str, list[str]]:
        with Session(engine) as session:
            found = session.scalars(sa.select(Shelf).order_by(Shelf.id)).all()
            return {"owners": [shelf.owner.name for shelf in found]}  # N+1 lazy

    @app.get("/joined")
    def joined() -> dict[str, list[str]]:
        with Session(engine) as session:
            rows = session.execute(sa.select(Shelf.id, Owner.name).join(Shelf.owner)).all()
            return {"owners": [name for _, name in rows]}

    app.wsgi_app = PerformanceMonitor(settings=Settings()).wsgi(app.wsgi_app, compress=False)  # type: ignore[method-assign]
    client = app.test_client()
    assert len(client.get("/joined").json["owners"]) == SHELVES
    assert detector.findings() == []
    assert len(client.get("/shelves").json["owners"]) == SHELVES
    (found,) = detector.findings()
    assert found.route == "/shelves"
    assert "FROM owner" in found.fingerprint
    assert found.max_count == SHELVES
    assert found.call_site is not None
    assert (found.call_site.file, found.call_site.line) == (__file__, line_of("# N+1 lazy"))


async def test_asyncio_engine_in_a_starlette_request(
    database_url: str, engine: sa.Engine, detector: NPlusOneDetector
) -> None:
    async_engine = create_async_engine(
        "postgresql+psycopg://",
        async_creator=lambda: psycopg.AsyncConnection.connect(database_url),
    )
    instrument(async_engine, query_stats=QueryStats(), name="async-orm")

    async def owners(request: Request) -> JSONResponse:
        names = []
        async with AsyncSession(async_engine) as session:
            for i in range(1, SHELVES + 1):
                owner = await session.get(Owner, i)  # N+1 get
                assert owner is not None
                names.append(owner.name)
        return JSONResponse(names)

    app = Starlette(routes=[Route("/owners", owners)])
    transport = httpx.ASGITransport(PerformanceMonitor(settings=Settings()).asgi(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert len((await client.get("/owners")).json()) == SHELVES
    await async_engine.dispose()
    (found,) = detector.findings()
    assert found.route == "/owners"
    assert found.statements == SHELVES
    assert found.call_site is not None
    assert (found.call_site.file, found.call_site.line) == (__file__, line_of("# N+1 get"))
