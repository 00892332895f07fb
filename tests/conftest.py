"""Fixtures that give each test a real Redis and a real PostgreSQL.

A server is found in this order: ``PERFKIT_TEST_REDIS_URL`` / ``PERFKIT_TEST_DATABASE_URL``
(then ``REDIS_URL`` / ``DATABASE_URL``), then 127.0.0.1:6379 / 127.0.0.1:5432 (database
``test``), then an embedded server started once for the session. With
``PERFKIT_REQUIRE_SERVICES=1`` a server that cannot be had fails the test instead of
skipping it. Tests own their data: their own Redis DB number and key namespace, their own
PostgreSQL schema, removed afterwards.

``--otel`` (or ``PERFKIT_TEST_OTEL=1``) runs every test with ``perfkit.otel`` instrumented
on the OpenTelemetry SDK (spans made, ended and exported), so that the suite shows that
tracing never changes a result; the summary counts the spans (by name, the most common).

SIGTERM stops the run as Ctrl-C does: the test at hand is interrupted and every fixture's
finalizer runs, so the servers and workers the tests started stop with the run.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql

from perfkit.embedded import EmbeddedPostgres, EmbeddedRedis, postgres_answers, redis_answers
from tests._servers import PrivateRedis, RestartablePostgres, env_first

# The Redis DB number the tests use on a shared server (never 0, where apps live).
TEST_REDIS_DB = int(os.environ.get("PERFKIT_TEST_REDIS_DB", "9"))
LOOPBACK_REDIS = "redis://127.0.0.1:6379/0"
LOOPBACK_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--otel",
        action="store_true",
        default=os.environ.get("PERFKIT_TEST_OTEL") == "1",
        help="instrument perfkit with OpenTelemetry (the SDK) in every test "
        "(also PERFKIT_TEST_OTEL=1)",
    )


# Span names counted by the --otel session's exporter.
_exported: Counter[str] = Counter()


@pytest.fixture(scope="session")
def otel_provider(pytestconfig: pytest.Config) -> Iterator[Any]:
    """With ``--otel``: the session's SDK TracerProvider, exporting to a span counter."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Counting(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            _exported.update(span.name for span in spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Counting()))
    yield provider
    provider.shutdown()


@pytest.fixture(autouse=True)
def _otel_session(request: pytest.FixtureRequest) -> None:
    """With ``--otel``, instrument before each test (tests of perfkit.otel itself turn it
    off when they end)."""
    if request.config.getoption("--otel"):
        import perfkit.otel

        perfkit.otel.instrument(tracer_provider=request.getfixturevalue("otel_provider"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if config.getoption("--otel"):
        most = ", ".join(f"{name} {count}" for name, count in _exported.most_common(12))
        terminalreporter.write_line(
            f"--otel: {_exported.total()} spans exported ({len(_exported)} names); "
            f"most: {most or 'none'}"
        )


class _StopOnSigterm:
    """The session's SIGTERM handler: the first SIGTERM stops the run as Ctrl-C does
    (``pytest.exit``: the finalizers run); later ones are ignored so that they cannot cut
    the finalizers short. In a process forked from the run (a test's child), SIGTERM
    keeps its default meaning."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if self.stopping:
            return
        self.stopping = True
        pytest.exit("SIGTERM: the run stops", returncode=pytest.ExitCode.INTERRUPTED)


_previous_sigterm = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_previous_sigterm] = signal.signal(signal.SIGTERM, _StopOnSigterm())


def pytest_unconfigure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, config.stash[_previous_sigterm])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """A handler of SIGINT or SIGTERM that a test installs ends with the test: an
    in-process RQ worker takes both over for good (a later SIGTERM would otherwise stop
    that finished worker instead of the run). A signal such a worker took while the test
    ran stops the run once the test is over."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return (yield)
    finally:
        taken = [signal.signal(sig, handler) for sig, handler in handlers.items()]
        if any(_rq_worker_was_signalled(handler) for handler in taken):
            pytest.exit(
                "a signal reached an in-process RQ worker: the run stops",
                returncode=pytest.ExitCode.INTERRUPTED,
            )


def _rq_worker_was_signalled(handler: object) -> bool:
    """Whether ``handler`` is an RQ worker's and that worker got a SIGINT or SIGTERM (RQ
    records when, in its handler, and nowhere else)."""
    worker = getattr(handler, "__self__", None)
    return getattr(worker, "_shutdown_requested_date", None) is not None


@pytest.fixture(autouse=True)
def _root_logger_left_alone() -> Iterator[None]:
    """A test may not leave a handler on the root logger. Whatever logs later in the
    session, or at exit, would go through it: one writing to the stderr of the moment (a
    framework's default logging config: Litestar's) writes to pytest's capture, closed at
    exit ("Logging error ... I/O operation on closed file")."""
    root = logging.getLogger()
    before = _test_handlers(root)
    yield
    added = [handler for handler in _test_handlers(root) if handler not in before]
    for handler in added:
        root.removeHandler(handler)
    assert not added, f"the test left {added} on the root logger (removed now)"


def _test_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """``logger``'s handlers but pytest's own (its log capture, per phase)."""
    return [h for h in logger.handlers if not type(h).__module__.startswith("_pytest.")]


def _unavailable(what: str, why: str) -> None:
    message = f"no {what} for the tests: {why}"
    if os.environ.get("PERFKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (PERFKIT_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def with_db(url: str, db: int) -> str:
    """``url`` with its Redis DB number replaced by ``db``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """The URL (DB 0) of a real Redis server for the whole session."""
    candidate = env_first("PERFKIT_TEST_REDIS_URL", "REDIS_URL")
    for url in ([candidate] if candidate else []) + [LOOPBACK_REDIS]:
        if redis_answers(url):
            yield url
            return
    try:
        server = EmbeddedRedis()
    except Exception as exc:
        _unavailable("Redis server", f"none answers and the embedded one failed: {exc}")
        return
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """URL of the tests' own DB number on the session's Redis server."""
    return with_db(redis_server_url, TEST_REDIS_DB)


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A key namespace of this test's own; its keys are deleted afterwards."""
    name = f"pktest-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.unlink(key)
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the tests' DB."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis server of this test's own on a free port, which the test may kill."""
    server = PrivateRedis()
    yield server
    server.close()


@pytest.fixture
def private_postgres() -> Iterator[RestartablePostgres]:
    """An embedded PostgreSQL of this test's own, which the test may stop and start."""
    server = RestartablePostgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def database_server_url() -> Iterator[str]:
    """The URL of a real PostgreSQL server for the whole session."""
    candidate = env_first("PERFKIT_TEST_DATABASE_URL", "DATABASE_URL")
    for url in ([candidate] if candidate else []) + [LOOPBACK_POSTGRES]:
        if postgres_answers(url):
            yield url
            return
    try:
        server = EmbeddedPostgres()
    except Exception as exc:
        _unavailable("PostgreSQL server", f"none answers and the embedded one failed: {exc}")
        return
    yield server.url
    server.stop()


@pytest.fixture
def database_url(database_server_url: str) -> Iterator[str]:
    """A conninfo whose ``search_path`` is a schema of this test's own, dropped afterwards."""
    schema = f"pktest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield psycopg.conninfo.make_conninfo(database_server_url, options=f"-csearch_path={schema}")
    with psycopg.connect(database_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
