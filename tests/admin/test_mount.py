"""Mounting is one line in each host: FastAPI, Starlette, Flask, Django, plain ASGI/WSGI.

Each test serves the host's own route and the admin API side by side, in-process, with
the kit's request middleware around the whole app so the admin sees the host's traffic.
"""

from __future__ import annotations

import asyncio

import django
import httpx
import pytest
from django.conf import settings as django_settings
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from perfkit import Perfkit, Settings
from perfkit.admin import mount_asgi, mount_wsgi
from perfkit.types import Environ, Receive, Scope, Send, StartResponse
from tests.admin.conftest import AUTH, TOKEN, Client, asgi_client, wsgi_client

PREFIX = "/api/admin/performance"


@pytest.fixture
def kit() -> Perfkit:
    return Perfkit(settings=Settings(perfkit_admin_token=TOKEN), performance_log=False)


def check(client: Client, own_path: str, own_text: str) -> None:
    for _ in range(2):
        own = client.get(own_path)
        assert own.status_code == 200 and own.text == own_text
    summary = client.get(f"{PREFIX}/summary", headers=AUTH)
    assert summary.status_code == 200, summary.text
    assert summary.json()["requests"]["requests"] >= 2  # the host's traffic, measured
    assert client.get(f"{PREFIX}/summary").status_code == 401
    document = client.get(f"{PREFIX}/openapi.json", headers=AUTH).json()
    assert document["servers"] == [{"url": PREFIX}]
    page = client.get(f"{PREFIX}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get(f"{PREFIX}/cache/warm", headers=AUTH).status_code == 405


def test_fastapi(kit: Perfkit) -> None:
    app = FastAPI()

    @app.get("/hello", response_class=PlainTextResponse)
    def hello() -> str:
        return "hello from fastapi"

    app.mount(PREFIX, kit.asgi_admin())
    check(asgi_client(kit.asgi(app)), "/hello", "hello from fastapi")


def test_starlette(kit: Perfkit) -> None:
    def hello(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("hello from starlette")

    app = Starlette(routes=[Route("/hello", hello), Mount(PREFIX, app=kit.asgi_admin())])
    check(asgi_client(kit.asgi(app)), "/hello", "hello from starlette")


def test_flask(kit: Perfkit) -> None:
    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "hello from flask"

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {PREFIX: kit.wsgi_admin()})  # type: ignore[method-assign]
    check(wsgi_client(kit.wsgi(app)), "/hello", "hello from flask")


def test_django(kit: Perfkit) -> None:
    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False,
            SECRET_KEY="perfkit-admin-mount-test",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="tests.admin._django_urls",
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
            USE_TZ=True,
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    application = mount_wsgi(get_wsgi_application(), PREFIX, kit.wsgi_admin())
    check(wsgi_client(kit.wsgi(application)), "/hello", "hello from django")


def test_plain_asgi(kit: Perfkit) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello from asgi"})

    check(
        asgi_client(kit.asgi(mount_asgi(app, PREFIX, kit.asgi_admin()))),
        "/hello",
        "hello from asgi",
    )


def test_plain_wsgi(kit: Perfkit) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello from wsgi"]

    check(
        wsgi_client(kit.wsgi(mount_wsgi(app, PREFIX, kit.wsgi_admin()))),
        "/hello",
        "hello from wsgi",
    )


def test_asgi_root_path_from_the_server(kit: Perfkit) -> None:
    # uvicorn --root-path /shop: the path keeps the prefix, root_path names it.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the admin prefix should have been matched")

    mounted = mount_asgi(app, PREFIX, kit.asgi_admin())

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=mounted, root_path="/shop")
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
            return await client.get(f"/shop{PREFIX}/openapi.json", headers=AUTH)

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.json()["servers"] == [{"url": f"/shop{PREFIX}"}]
