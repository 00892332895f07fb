"""The route table is in charge: handler callables, parameters (bounds once), the part a
route needs; and the admin serves any AdminSource, not only a Perfkit (that it never
imports the kit is .importlinter's layers contract, tests/test_layers.py)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import httpx
import pytest

import perfkit
from perfkit import Perfkit, Settings
from perfkit.admin.asgi import ASGIAdmin
from perfkit.admin.auth import Guard
from perfkit.admin.calls import ThreadCaller
from perfkit.admin.core import AdminCore
from perfkit.admin.routes import ROUTES, openapi_document
from perfkit.admin.source import AdminSource, Dependency
from perfkit.cache import AsyncRedisService, CacheWarmer, RedisService
from perfkit.jobs import JobService
from perfkit.metrics import PerformanceMonitor
from perfkit.metrics.fleet import Fleet
from perfkit.queries import AsyncTimedPool, TimedPool
from tests.admin.conftest import AUTH, FAILED_JOBS, TOKEN, Client


def test_every_route_holds_its_handler_coroutine_function() -> None:
    names = [route.name for route in ROUTES]
    assert len(set(names)) == len(names)
    for route in ROUTES:
        assert inspect.iscoroutinefunction(route.handler), route.path
    document = openapi_document(Perfkit(settings=Settings(), performance_log=False))
    operations = [
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
    ]
    assert sorted(operations) == sorted(names)
    assert document["info"]["version"] == perfkit.__version__


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


def test_parameter_bounds_and_defaults_come_from_the_table(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    kit = make_kit()
    client = in_process(kit)
    document = openapi_document(kit)
    checked = 0
    for route in ROUTES:
        operation = document["paths"][route.path or "/"][route.method.lower()]
        for param, described in zip(route.params, operation.get("parameters", ()), strict=True):
            assert described["name"] == param.name
            if param.queue:
                assert described["schema"]["enum"] == list(kit.queues)
                assert error(client.get(f"{route.path}?{param.name}=nope", headers=AUTH), 400) == (
                    f"{param.name}: unknown queue 'nope'; known: {list(kit.queues)}"
                )
                continue
            schema = described["schema"]
            assert (schema["minimum"], schema["maximum"], schema["default"]) == (
                param.minimum,
                param.maximum,
                param.default,
            )
            bounds = f"{param.name}: must be between {param.minimum} and {param.maximum}"
            for value in (param.minimum - 1, param.maximum + 1):  # type: ignore[operator]
                assert error(
                    client.get(f"{route.path}?{param.name}={value}", headers=AUTH), 400
                ) == (bounds)
            # The bounds themselves are accepted.
            for value in (param.minimum, param.maximum):
                query = f"{param.name}={value}"
                assert client.get(f"{route.path}?{query}", headers=AUTH).status_code == 200, query
            checked += 1
    assert checked == 4  # top, last, offset, limit


def test_a_page_across_queues_goes_as_deep_as_the_schema_allows(
    kit: Perfkit, in_process: Callable[[Perfkit], Client]
) -> None:
    client = in_process(kit)
    whole = client.get(f"jobs/failed?limit={FAILED_JOBS}", headers=AUTH).json()
    assert whole["total"] == FAILED_JOBS and len(whole["jobs"]) == FAILED_JOBS
    pages = [
        client.get(f"jobs/failed?offset={n}&limit=1", headers=AUTH).json()["jobs"]
        for n in range(FAILED_JOBS)
    ]
    assert [job for page in pages for job in page] == whole["jobs"]
    deepest = client.get("jobs/failed?offset=100000&limit=100", headers=AUTH)
    assert deepest.status_code == 200
    assert (deepest.json()["total"], deepest.json()["jobs"]) == (FAILED_JOBS, [])


class Source:
    """An AdminSource that is not a Perfkit: no parts, one required dependency of its own."""

    def __init__(self, ping: Callable[[], object]) -> None:
        self.queues = ("only",)
        self.health_open = True
        self.monitor = PerformanceMonitor(settings=Settings())
        self.fleet = Fleet(self.monitor, None, namespace="table-test")
        self.cache: RedisService | AsyncRedisService | None = None
        self.pool: TimedPool | AsyncTimedPool | None = None
        self.jobs: JobService | None = None
        self.warmer: CacheWarmer | None = None
        self._ping = ping

    def dependencies(self) -> list[Dependency]:
        return [Dependency("database", self._ping, required=True)]


def test_the_admin_serves_any_admin_source() -> None:
    pings = []

    def ping() -> None:
        pings.append(1)
        if len(pings) > 1:
            raise OSError("the database went away")

    source: AdminSource = Source(ping)
    core = AdminCore(
        source, ThreadCaller(), guard=Guard(token=TOKEN), max_body=1000, health_open=True
    )

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=ASGIAdmin(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            up = await client.get("/health")
            assert (up.status_code, up.json()) == (200, {"status": "ok"})
            down = await client.get("/health/detailed", headers=AUTH)
            assert down.status_code == 503
            (check,) = down.json()["dependencies"]
            assert (check["name"], check["status"], check["error"]) == (
                "database",
                "down",
                "OSError",
            )
            document = (await client.get("/openapi.json", headers=AUTH)).json()
            (queue,) = document["paths"]["/jobs/failed"]["get"]["parameters"][:1]
            assert queue["schema"]["enum"] == ["only"]
            missing = await client.get("/jobs", headers=AUTH)
            assert error(missing, 404) == "jobs is not configured in this Perfkit"
            trends = await client.get("/trends?last=5", headers=AUTH)
            assert (trends.status_code, trends.json()["scope"]) == (200, "process")

    asyncio.run(scenario())


@pytest.mark.parametrize("required", [(), ("redis", "database", "jobs")])
def test_the_kit_lists_its_dependencies_in_report_order(
    make_kit: Callable[..., Perfkit], required: tuple[str, ...]
) -> None:
    kit = make_kit(required=required)
    assert [(d.name, d.required) for d in kit.dependencies()] == [
        (name, name in required) for name in ("redis", "database", "jobs")
    ]
    for dependency in kit.dependencies():
        dependency.ping()  # all up: none raises
