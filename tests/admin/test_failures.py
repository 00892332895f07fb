"""When something under the admin API fails: bytes another client wrote in the cache's
namespace break no route, and a request that does fail is logged without the locals a rich
traceback would show (the request's headers, the token), whatever renders the log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
import structlog

from perfkit import Perfkit, Settings
from perfkit.admin import Request
from tests.admin.conftest import AUTH, TOKEN, asgi_client, wsgi_client


@pytest.fixture
def dev_logging() -> Iterator[None]:
    """structlog's default development output: a ConsoleRenderer whose tracebacks come from
    rich with local variables shown (rich is installed by the dev extra)."""
    pytest.importorskip("rich")
    structlog.reset_defaults()
    renderer = structlog.get_config()["processors"][-1]
    assert isinstance(renderer, structlog.dev.ConsoleRenderer)
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_a_failing_admin_request_logs_no_token(
    dev_logging: None, capsys: pytest.CaptureFixture[str], adapter: str
) -> None:
    cookie = "session=" + uuid.uuid4().hex

    def authorize(request: Request) -> bool:
        raise RuntimeError("the host's session store is down")

    kit = Perfkit(settings=Settings(), performance_log=False, authorize=authorize)
    client = asgi_client(kit.asgi_admin()) if adapter == "asgi" else wsgi_client(kit.wsgi_admin())
    response = client.get("summary", headers={**AUTH, "cookie": cookie})
    assert response.status_code == 500
    log = capsys.readouterr().out
    # The failure is logged, with its traceback...
    assert "admin.handler_failed" in log and "the host's session store is down" in log
    assert "Traceback" in log
    # ...and without the credentials the request carried.
    assert TOKEN not in log and cookie not in log


def test_foreign_bytes_in_the_cache_namespace_break_no_admin_route(
    kit: Perfkit, kit_redis: redis.Redis
) -> None:
    # Another client's keys: a name that is not UTF-8, a tag generation that is not.
    kit_redis.set(b"admintest:\xff\xfe", b"\x00\x01")
    kit_redis.set(b"admintest:__perfkit__:tag:t", b"\xff\xfe")
    kit_redis.set(b"admintest:entry", b"\x01t\x1f\xff\xfe\x1d\x01")
    client = asgi_client(kit.asgi_admin())
    for path in ("summary", "dashboard", "cache", "metrics", "realtime"):
        answer = client.get(path, headers=AUTH)
        assert answer.status_code == 200, (path, answer.text)
    answer = client.post("cache/invalidate", headers=AUTH, json={"pattern": "*", "tags": ["t"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"] >= 2
