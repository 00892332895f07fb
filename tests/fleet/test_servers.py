"""The fleet view under real multi-process servers (issue 18): ``uvicorn --workers 3`` and
gunicorn with uvicorn workers (``-w 3``), requests spread over fresh connections.

Whichever worker answers, ``summary`` gives the fleet's total; a worker killed with
SIGKILL leaves the live list within the liveness bound and its requests stay counted;
the scheduled warm-ups run once per interval across the workers.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from perfkit.embedded import free_port
from perfkit_demo.stack import wait_for_http

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fleet-test-token"  # as in tests/fleet/_app.py (imported only by the servers)
FLEET_INTERVAL = 1.0
WORKERS = 3
REQUESTS = 300
ADMIN = "/api/admin/performance"
HEADERS = {"authorization": f"Bearer {TOKEN}"}
WARM_INTERVAL = 2.0
# A process drops out of the live list when its liveness key expires: 3 publish intervals
# after its last publish (docs/deployment.md). Deadlines are generous: the machine is shared.
LIVENESS = 3 * FLEET_INTERVAL
DEADLINE = 60.0

pytestmark = pytest.mark.slow


def _argv(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return ["uvicorn", "tests.fleet._app:app", "--workers", str(WORKERS),
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return ["gunicorn", "tests.fleet._app:app", "-k", "uvicorn.workers.UvicornWorker",
            "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip


class Server:
    """The app under ``server`` with its own key namespace; talks to it over fresh
    connections (one per request, so the workers share them)."""

    def __init__(self, server: str, redis_url: str, namespace: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.namespace = namespace
        env = os.environ | {
            "PKFLEET_REDIS_URL": redis_url,
            "PKFLEET_NAMESPACE": namespace,
            "PKFLEET_WARM_INTERVAL": str(WARM_INTERVAL),
        }
        self.started = time.time()
        self.process = subprocess.Popen([sys.executable, "-m", *_argv(server, self.port)],
                                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)  # fmt: skip
        try:
            # The admin API is not measured: the readiness probes add no requests.
            wait_for_http(f"{self.url}{ADMIN}/health", 60, self.process)
        except BaseException:
            self.close()
            raise

    def get(self, path: str) -> httpx.Response:
        response = httpx.get(self.url + path, headers={**HEADERS, "connection": "close"},
                             timeout=30)  # fmt: skip
        response.raise_for_status()
        return response

    def admin(self, route: str) -> Any:
        return self.get(f"{ADMIN}/{route}").json()

    def wait(self, condition: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(params=["uvicorn", "gunicorn"])
def server(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Iterator[Server]:
    started = Server(request.param, redis_url, namespace)
    yield started
    started.close()


def _serve(server: Server, count: int) -> None:
    for _ in range(count):
        assert server.get("/hello").text == "hello"


def _fleet_total(server: Server, expected: int) -> Callable[[], Any]:
    def settled() -> Any:
        summary = server.admin("summary")
        done = summary["requests"]["requests"] == expected and summary["processes"] == WORKERS
        return summary if done else None

    return settled


def _published_after(server: Server, moment: float) -> float:
    """Wait until every live worker published numbers taken after ``moment`` (unix time);
    returns how long after ``moment`` that was: the freshness of the fleet view."""

    def published() -> float | None:
        processes = server.admin("realtime")["processes"]
        oldest = min(p["published"] for p in processes)
        return oldest - moment if len(processes) == WORKERS and oldest > moment else None

    lag: float = server.wait(published, "every worker to publish")
    return lag


def test_summary_gives_the_fleet_total_whichever_worker_answers(server: Server) -> None:
    _serve(server, REQUESTS)
    # A request is counted once its last byte is sent, just after the client has it.
    server.wait(_fleet_total(server, REQUESTS), "the last request to be counted")
    counted = time.time()
    # The freshness bound: each worker publishes every FLEET_INTERVAL (plus what a loaded
    # machine adds to a thread's wake-up); from then on every worker answers the same.
    assert _published_after(server, counted) < FLEET_INTERVAL + 5
    totals = [server.admin("summary")["requests"]["requests"] for _ in range(15)]
    assert totals == [REQUESTS] * 15
    dashboard = server.admin("dashboard")
    assert dashboard["scope"] == "fleet"
    assert dashboard["api"]["requests"] == REQUESTS
    processes = dashboard["processes"]
    assert len({p["pid"] for p in processes}) == WORKERS
    # Fresh connections spread the requests over the workers; each one's share adds up.
    assert sum(p["requests"] for p in processes) == REQUESTS
    assert all(p["rss_bytes"] > 0 and p["uptime_s"] > 0 and p["host"] for p in processes)
    assert sum(point["requests"] for point in server.admin("trends")["points"]) == REQUESTS
    metrics = server.get(f"{ADMIN}/metrics").text
    hello = 'http_requests_total{method="GET",route="/hello"'
    exported = sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(hello)
    )
    assert exported == REQUESTS


def test_a_killed_worker_drops_out_and_its_requests_stay_counted(server: Server) -> None:
    _serve(server, REQUESTS)
    server.wait(_fleet_total(server, REQUESTS), "the last request to be counted")
    _published_after(server, time.time())
    summary = server.admin("summary")
    assert summary["scope"] == "fleet"
    assert summary["requests"]["requests"] == REQUESTS
    victim = max(server.admin("realtime")["processes"], key=lambda p: p["requests"])
    assert victim["requests"] > 0
    os.kill(victim["pid"], signal.SIGKILL)
    killed = time.monotonic()

    def gone() -> bool:
        return victim["pid"] not in {p["pid"] for p in server.admin("realtime")["processes"]}

    server.wait(gone, "the killed worker to leave the live list")
    # Within the liveness bound, plus the time a loaded machine takes to answer.
    assert time.monotonic() - killed < LIVENESS + 10
    for _ in range(10):
        assert server.admin("summary")["requests"]["requests"] == REQUESTS
    _serve(server, 30)
    server.wait(_fleet_total(server, REQUESTS + 30), "the replacement worker's requests")


def test_scheduled_warmups_run_once_per_interval_across_workers(
    server: Server, redis_client: redis.Redis
) -> None:
    runs_key = f"{server.namespace}:warm-runs"
    server.wait(lambda: redis_client.llen(runs_key) >= 4, "four warm-up rounds")
    runs = [entry.decode().split() for entry in redis_client.lrange(runs_key, 0, -1)]
    times = sorted(float(at) for at, _ in runs)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # The lease lasts an interval: no round starts before the previous one's lease ended.
    assert min(gaps) >= WARM_INTERVAL * 0.95, gaps
    elapsed = time.time() - server.started
    assert len(times) <= elapsed / WARM_INTERVAL + 1
    cache = server.admin("cache")
    last = cache["fleet_warm"]
    assert last is not None and last["results"][0]["name"] == "runs"
    assert str(last["process"]).split(":")[1] in {pid for _, pid in runs}
    assert last["at"] >= times[0]
    manual = httpx.post(f"{server.url}{ADMIN}/cache/warm", headers=HEADERS, json={}, timeout=30)
    assert manual.status_code == 200 and manual.json()["ok"]
