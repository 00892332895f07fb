"""The app of the fleet tests, as a new user writes one: a Starlette app with a
``Perfkit(cache=...)``, its admin API mounted, ``kit.asgi(app)`` around it, the kit
started in the lifespan — served by ``uvicorn --workers 3`` or gunicorn with uvicorn
workers (``tests.fleet._app:app``).

Configured by the environment: ``PKFLEET_REDIS_URL``, ``PKFLEET_NAMESPACE`` and
``PKFLEET_WARM_INTERVAL`` (seconds). Its one warmer appends ``<time> <pid>`` to the Redis
list ``<namespace>:warm-runs`` each time it runs, so the test can count the warm-ups.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from perfkit import Perfkit, Settings
from perfkit.cache import CacheWarmer, RedisService

TOKEN = "fleet-test-token"
FLEET_INTERVAL = 1.0

URL = os.environ["PKFLEET_REDIS_URL"]
NAMESPACE = os.environ["PKFLEET_NAMESPACE"]
settings = Settings(redis_socket_timeout=5.0)
control = redis.Redis.from_url(URL)
cache = RedisService(URL, namespace=NAMESPACE, settings=settings)
warmer = CacheWarmer(delay=0.2, interval=float(os.environ["PKFLEET_WARM_INTERVAL"]),
                     settings=settings)  # fmt: skip


@warmer.register("runs")
def record_run() -> int:
    control.rpush(f"{NAMESPACE}:warm-runs", f"{time.time()} {os.getpid()}")
    return 1


kit = Perfkit(cache=cache, warmer=warmer, token=TOKEN, settings=settings, health_open=True,
              fleet_interval=FLEET_INTERVAL)  # fmt: skip


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with kit:
        yield


app = kit.asgi(
    Starlette(
        routes=[Route("/hello", hello), Mount("/api/admin/performance", kit.asgi_admin())],
        lifespan=lifespan,
    )
)
