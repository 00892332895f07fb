"""The HTML dashboard in headless Chromium: it loads with a token, shows real numbers after
real traffic, renders untrusted text as text, retries a failed job, and a screenshot is
taken (PNG, kept in the test's tmp_path)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from perfkit import Perfkit
from perfkit.admin import mount_asgi
from perfkit.metrics import PerformanceMonitor, Trends
from perfkit.types import Receive, Scope, Send
from tests.admin._chromium import Chromium, chromium_binary
from tests.admin._processors import FAILURE
from tests.admin.conftest import AUTH, FAILED_JOBS, QUEUES, TOKEN, make_traffic
from tests.metrics.conftest import UvicornThread

PREFIX = "/api/admin/performance"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def browser() -> Iterator[Chromium]:
    if chromium_binary() is None:
        # Like the servers: CI (PERFKIT_REQUIRE_SERVICES=1, .ci/run installs Chromium) fails,
        # a machine without a browser skips.
        message = "chromium is not installed (apt-get install chromium; .ci/run does)"
        if os.environ.get("PERFKIT_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    chromium = Chromium()
    yield chromium
    chromium.close()


async def shop(scope: Scope, receive: Receive, send: Send) -> None:
    status = 500 if scope["path"].startswith("/broken") else 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.slow
def test_the_dashboard_shows_real_numbers(
    make_kit: Callable[..., Perfkit], browser: Chromium, tmp_path: Path
) -> None:
    base = make_kit()
    make_traffic(base)
    # The monitor's trends run on a clock the test moves, to have an hour with history.
    clock = Clock(time.time() - 11 * 60)
    monitor = PerformanceMonitor(
        settings=base.settings,
        cache=base.cache,
        pool=base.pool,
        jobs=base.jobs,
        trends=Trends(clock=clock),
    )
    kit = Perfkit(
        cache=base.cache,
        pool=base.pool,
        jobs=base.jobs,
        warmer=base.warmer,
        settings=base.settings,
        queues=QUEUES,
        metrics=monitor,
    )
    assert kit.cache is not None and kit.pool is not None and kit.jobs is not None
    server = UvicornThread(kit.asgi(mount_asgi(shop, PREFIX, kit.asgi_admin())))
    try:
        with httpx.Client(base_url=server.url) as client:
            for minute in range(12):
                for i in range(20 + 4 * minute):
                    client.get(f"/products/{i}")
                for _ in range(minute % 3):
                    client.get("/broken")
                for i in range(12):
                    kit.cache.get("hot" if i < minute else f"cold-{minute}-{i}")
                with kit.pool.connection() as conn:
                    for i in range(minute):
                        conn.execute("SELECT name FROM items WHERE id = %s", (i,))
                kit.jobs.enqueue("admintest.report", {"name": f"waiting-{minute}"})
                kit.monitor.refresh()
                kit.monitor.sample_trends()
                clock.now += 60
        # Without a token: the sign-in form, no data.
        browser.navigate(f"{server.url}{PREFIX}")
        assert browser.evaluate("document.getElementById('dashboard').hidden") is True
        # A wrong token is refused and the form says why.
        browser.evaluate("document.getElementById('token').value = 'not-the-token-at-all'")
        browser.evaluate("document.querySelector('#login-form button').click()")
        browser.wait_for("document.getElementById('login-message').textContent.length > 0")
        assert browser.evaluate("sessionStorage.length") == 0

        browser.evaluate(f"document.getElementById('token').value = {json.dumps(TOKEN)}")
        browser.evaluate("document.querySelector('#login-form button').click()")
        browser.wait_for("document.body.dataset.loaded === 'true'")
        browser.wait_for("document.querySelectorAll('#failed tbody tr').length > 0")

        cards = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#cards .card')]"
            ".map(c => [c.children[0].textContent, c.children[1].textContent]))"
        )
        assert int(cards["Requests"].replace(",", "")) >= 12 * 20
        assert cards["Cache hit rate"].endswith(" %")
        assert cards["Failed jobs"] == str(FAILED_JOBS)
        assert cards["Avg response"].endswith(" ms")
        assert float(cards["Slow queries"].rstrip(" %")) > 0
        # Charts drawn from the trends: a line with points for the requests per minute.
        assert browser.evaluate("document.querySelectorAll('#chart-requests circle').length") >= 12
        assert browser.evaluate("document.querySelectorAll('#chart-queues circle').length") >= 12
        # The time axis fits the 12 minutes of data: the first point is at the left edge,
        # not squeezed at the right of an empty hour.
        first_x = browser.evaluate(
            "document.querySelector('#chart-requests circle').cx.baseVal.value"
        )
        width = browser.evaluate("document.getElementById('chart-requests').clientWidth")
        assert first_x < width * 0.2
        # Counts get whole-number ticks (the y labels are drawn at x=4).
        for chart in ("chart-requests", "chart-queues"):
            ticks = browser.evaluate(
                f"[...document.querySelectorAll('#{chart} text[x=\"4\"]')].map(t => t.textContent)"
            )
            assert len(ticks) == 3 and all(t.replace(",", "").isdigit() for t in ticks), ticks
        # Numeric columns: header aligned with its cells.
        aligns = browser.evaluate(
            "[...document.querySelectorAll('#queues th')].map(th => getComputedStyle(th).textAlign)"
        )
        assert aligns[0] == "left" and aligns[2] == "right"
        statements = browser.evaluate("document.getElementById('queries').textContent")
        assert "pg_sleep" in statements
        # The per-process breakdown: this (one) process, by its pid.
        pids = browser.evaluate(
            "[...document.querySelectorAll('#processes tbody tr')]"
            ".map(r => r.children[1].textContent)"
        )
        assert pids == [str(os.getpid())]
        assert "cache_hit_rate" in browser.evaluate(
            "document.getElementById('recommendations').textContent"
        )
        # Job errors are untrusted: shown as text, never parsed into elements.
        assert FAILURE in browser.evaluate("document.getElementById('failed').textContent")
        assert browser.evaluate("document.querySelectorAll('main img').length") == 0

        screenshot = browser.screenshot(tmp_path / "dashboard.png")
        assert screenshot.read_bytes().startswith(PNG_MAGIC)
        assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one

        # The retry button posts with the token and the job goes back on its queue.
        browser.evaluate("document.querySelector('#failed tbody button').click()")
        # The table is refreshed after the retry: one failed job fewer.
        browser.wait_for(
            "document.getElementById('failed').textContent"
            f".includes('{FAILED_JOBS - 1} failed job(s)')"
        )
        with httpx.Client(base_url=f"{server.url}{PREFIX}/", headers=AUTH) as admin:
            assert admin.get("jobs/failed").json()["total"] == FAILED_JOBS - 1
            admin.post("jobs/retry", json={}).raise_for_status()  # every failed job
        # No failed jobs left: one empty-state message, not a caption and a message.
        browser.wait_for(
            "document.getElementById('failed').textContent === 'No failed jobs.'", timeout=30
        )
        assert browser.evaluate("document.querySelectorAll('#failed .empty').length") == 1
    finally:
        server.stop()
