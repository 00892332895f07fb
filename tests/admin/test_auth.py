"""Secure by default: every route refuses without credentials (401), with wrong ones
(403), and when nothing is configured (403, with one log line saying why)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from perfkit import ConfigError, Perfkit, Settings
from perfkit.admin import Request
from perfkit.admin.routes import ROUTES
from tests.admin.conftest import AUTH, TOKEN, Client, asgi_client, wsgi_client

ALL_ROUTES = [(route.method, route.path.lstrip("/")) for route in ROUTES]
DATA_ROUTES = [(method, path) for method, path in ALL_ROUTES if path]  # not the page shell


def bare_kit(**options: object) -> Perfkit:
    """A kit without parts: security does not depend on them."""
    return Perfkit(settings=Settings(), performance_log=False, **options)  # type: ignore[arg-type]


@pytest.fixture(params=["asgi", "wsgi"])
def adapter(request: pytest.FixtureRequest) -> Callable[[Perfkit], Client]:
    return asgi_client_of if request.param == "asgi" else wsgi_client_of


def asgi_client_of(kit: Perfkit) -> Client:
    return asgi_client(kit.asgi_admin())


def wsgi_client_of(kit: Perfkit) -> Client:
    return wsgi_client(kit.wsgi_admin())


@pytest.mark.parametrize(("method", "path"), DATA_ROUTES)
def test_every_route_refuses_missing_and_wrong_tokens(
    adapter: Callable[[Perfkit], Client], method: str, path: str
) -> None:
    client = adapter(bare_kit(token=TOKEN))
    missing = client.request(method, path)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.request(method, path, headers={"authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 403
    assert set(wrong.json()) == {"error", "detail"}
    basic = client.request(method, path, headers={"authorization": "Basic YWRtaW46YWRtaW4="})
    assert basic.status_code == 403
    # Unknown routes do not tell an anonymous client what exists.
    assert client.get("no/such/route").status_code == 401


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_nothing_configured_refuses_everything(
    adapter: Callable[[Perfkit], Client], method: str, path: str
) -> None:
    client = adapter(bare_kit())
    for headers in ({}, AUTH):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 403
        assert "PERFKIT_ADMIN_TOKEN" in response.json()["detail"]


def test_a_locked_kit_says_why_in_one_log_line() -> None:
    kit = bare_kit()
    with capture_logs() as logs:
        client = asgi_client(kit.asgi_admin())
        wsgi = wsgi_client(kit.wsgi_admin())
        for _ in range(3):
            assert client.get("summary").status_code == 403
            assert wsgi.get("summary").status_code == 403
    locked = [entry for entry in logs if entry["event"] == "admin.locked"]
    assert len(locked) == 1
    assert "PERFKIT_ADMIN_TOKEN" in locked[0]["detail"]


def test_the_page_shell_is_public_once_credentials_exist(
    adapter: Callable[[Perfkit], Client],
) -> None:
    client = adapter(bare_kit(token=TOKEN))
    page = client.get("")
    assert page.status_code == 200
    assert b"<!doctype html>" in page.content.lower()
    assert TOKEN not in page.text


def test_health_can_be_opened_for_load_balancers(adapter: Callable[[Perfkit], Client]) -> None:
    closed = adapter(bare_kit(token=TOKEN))
    assert closed.get("health").status_code == 401
    opened = adapter(bare_kit(token=TOKEN, health_open=True))
    assert opened.get("health").json() == {"status": "ok"}
    assert opened.get("health/detailed").status_code == 401
    assert opened.get("summary").status_code == 401
    from_env = adapter(
        Perfkit(settings=Settings(perfkit_admin_health_open=True), performance_log=False)
    )
    assert from_env.get("health").status_code == 200
    assert from_env.get("summary").status_code == 403  # still locked


def test_token_from_settings() -> None:
    client = asgi_client(Perfkit(settings=Settings(perfkit_admin_token=TOKEN)).asgi_admin())
    assert client.get("summary", headers=AUTH).status_code == 200
    assert client.get("summary").status_code == 401


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ConfigError, match="16 characters"):
        bare_kit(token="short").asgi_admin()


def test_host_authorize_callable(adapter: Callable[[Perfkit], Client]) -> None:
    seen: list[Request] = []

    def authorize(request: Request) -> bool:
        seen.append(request)
        return request.headers.get("cookie") == "session=admin"

    client = adapter(bare_kit(authorize=authorize))
    assert client.get("summary", headers={"cookie": "session=admin"}).status_code == 200
    assert client.get("summary", headers={"cookie": "session=user"}).status_code == 403
    assert client.get("summary").status_code == 401
    assert seen[0].path == "/summary"
    assert "REQUEST_METHOD" in seen[0].native or seen[0].native["type"] == "http"


def test_token_and_authorize_together() -> None:
    client = asgi_client(bare_kit(token=TOKEN, authorize=lambda request: False).asgi_admin())
    assert client.get("summary", headers=AUTH).status_code == 200
    assert client.get("summary", headers={"authorization": "Bearer " + "y" * 30}).status_code == 403
    assert client.get("summary").status_code == 401


def test_async_authorize_under_asgi() -> None:
    async def authorize(request: Request) -> bool:
        return request.headers.get("x-admin") == "yes"

    client = asgi_client(bare_kit(authorize=authorize).asgi_admin())
    assert client.get("summary", headers={"x-admin": "yes"}).status_code == 200
    assert client.get("summary", headers={"x-admin": "no"}).status_code == 401


def test_tokens_never_reach_the_logs(adapter: Callable[[Perfkit], Client]) -> None:
    client = adapter(bare_kit(token=TOKEN))
    wrong = "Bearer wrong-token-" + "z" * 20
    with capture_logs() as logs:
        client.get("summary", headers=AUTH)
        client.get("summary", headers={"authorization": wrong})
    text = repr(logs)
    assert "admin.denied" in text
    assert TOKEN not in text and "wrong-token" not in text
    assert TOKEN not in repr(bare_kit(token=TOKEN))
