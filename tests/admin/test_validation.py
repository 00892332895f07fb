"""Bad requests: 400 naming the field, 404, 405, 413, 415, parts not configured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from perfkit import Perfkit, Settings
from perfkit.admin.schemas import InvalidateBody, largest_body
from tests.admin.conftest import AUTH, TOKEN, Client


def error(response, status: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    return str(body["detail"])


def test_bad_bodies_and_parameters_name_the_field(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    client = in_process(make_kit())
    post = client.post
    assert error(post("cache/invalidate", headers=AUTH, json={"tags": ["ok", 3]}), 400).startswith(
        "tags[1]:"
    )
    assert error(post("cache/invalidate", headers=AUTH, json={"patern": "x"}), 400) == (
        "patern: unknown field"
    )
    assert error(post("cache/invalidate", headers=AUTH, json={}), 400).startswith("pattern, tags")
    assert error(post("cache/invalidate", headers=AUTH, json={"tags": None}), 400).startswith(
        "tags:"
    )
    assert error(post("cache/invalidate", headers=AUTH, json=[1]), 400).startswith("body:")
    assert "not valid JSON" in error(
        post(
            "cache/invalidate",
            headers={**AUTH, "content-type": "application/json"},
            content=b'{"pattern": ',
        ),
        400,
    )
    assert error(post("cache/invalidate", headers=AUTH, json={"pattern": ""}), 400).startswith(
        "pattern:"
    )
    assert error(post("cache/warm", headers=AUTH, json={"names": ["nope"]}), 400).startswith(
        "names: unknown warmer"
    )
    assert error(post("jobs/retry", headers=AUTH, json={"queue": "other"}), 400).startswith(
        "queue: unknown queue"
    )
    assert error(post("jobs/retry", headers=AUTH, json={"job_id": "a b"}), 400).startswith(
        "job_id:"
    )
    assert error(post("metrics/reset", headers=AUTH, json={"x": 1}), 400) == "x: unknown field"
    # No body is the empty object; whitespace is not JSON (schemathesis sent "\r\n": 200).
    blank = post(
        "metrics/reset", headers={**AUTH, "content-type": "application/json"}, content=b"\r\n"
    )
    assert error(blank, 400) == "body: not valid JSON"
    get = client.get
    assert error(get("queries?top=0", headers=AUTH), 400).startswith("top:")
    assert error(get("queries?top=many", headers=AUTH), 400).startswith("top:")
    assert error(get("trends?last=99999", headers=AUTH), 400).startswith("last:")
    assert error(get("jobs/failed?limit=101", headers=AUTH), 400).startswith("limit:")
    assert error(get("jobs/failed?offset=-1", headers=AUTH), 400).startswith("offset:")
    assert error(get("jobs/failed?queue=x", headers=AUTH), 400).startswith("queue:")


def test_media_type_and_size(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    client = in_process(make_kit(max_body=1024))
    form = client.post(
        "cache/invalidate",
        headers={**AUTH, "content-type": "text/plain"},
        content=b'{"pattern": "x"}',
    )
    assert error(form, 415) == "send the body as application/json"
    # Over max_body but within what the document allows: read, and judged by the document.
    long = client.post("cache/invalidate", headers=AUTH, json={"pattern": "x" * 2000})
    assert error(long, 400).startswith("pattern:")
    assert client.post("cache/warm", headers=AUTH, content=b"").status_code == 200
    # Larger than any body the document allows: 413, the limit named.
    limit = largest_body(InvalidateBody)
    huge = client.post("cache/invalidate", headers=AUTH, json={"tags": ["x" * 256] * 20_000})
    assert f"{limit} bytes" in error(huge, 413)


def test_a_body_the_document_allows_is_never_413(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    # Issue 25: tags over maxItems answered 413 (the body passed PERFKIT_ADMIN_MAX_BODY),
    # and so would the largest valid list: the document allows 1,000 tags of 256 characters.
    client = in_process(make_kit())
    tags = [f"{i:04}" + "t" * 252 for i in range(1000)]
    valid = client.post("cache/invalidate", headers=AUTH, json={"tags": tags})
    assert valid.status_code == 200, valid.text
    assert valid.json()["tags"] == 1000
    over = client.post("cache/invalidate", headers=AUTH, json={"tags": [*tags, "one-more"]})
    assert error(over, 400).startswith("tags:")
    # The same of astral characters, escaped by the encoder: 12 bytes each.
    astral = client.post(
        "cache/invalidate", headers=AUTH, json={"tags": ["\U0001f600" * 256] * 1000}
    )
    assert astral.status_code == 200, astral.text[:200]


def test_a_streamed_body_without_length_is_cut_at_the_limit(
    make_kit: Callable[..., Perfkit],
) -> None:
    app = make_kit(max_body=1024).asgi_admin()
    received: list[dict] = []
    # cache/warm's largest valid body is 240 KB (100 names of 200 characters): past that,
    # whatever max_body says, the body can only be refused.
    chunks = [{"type": "http.request", "body": b" " * 100_000, "more_body": True}] * 5

    async def receive() -> dict:
        return chunks.pop(0)

    async def send(message: dict) -> None:
        received.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/cache/warm",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", AUTH["authorization"].encode()),
            (b"content-type", b"application/json"),
        ],
    }
    asyncio.run(app(scope, receive, send))
    assert received[0]["status"] == 413
    assert len(chunks) == 2  # stopped reading after the third chunk


def test_unknown_route_and_method(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    client = in_process(make_kit())
    assert error(client.get("nope", headers=AUTH), 404).startswith("no admin route")
    response = client.request("DELETE", "jobs/failed", headers=AUTH)
    assert error(response, 405).startswith("DELETE is not allowed")
    assert response.headers["allow"] == "GET, HEAD"
    head = client.request("HEAD", "summary", headers=AUTH)
    assert head.status_code == 200 and head.content == b""
    assert client.get("summary/", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "part"),
    [
        ("GET", "queries", "database pool"),
        ("GET", "cache", "cache"),
        ("GET", "jobs", "jobs"),
        ("GET", "jobs/failed", "jobs"),
        ("POST", "cache/warm", "cache warming"),
        ("POST", "cache/invalidate", "cache"),
        ("POST", "jobs/retry", "jobs"),
        ("POST", "jobs/clear", "jobs"),
    ],
)
def test_parts_not_configured_answer_404(
    in_process: Callable[[Perfkit], Client], method: str, path: str, part: str
) -> None:
    kit = Perfkit(settings=Settings(), token=TOKEN, performance_log=False)
    client = in_process(kit)
    response = client.request(method, path, headers=AUTH, json={} if method == "POST" else None)
    assert error(response, 404) == f"{part} is not configured in this Perfkit"
    assert response.json()["error"] == "not_configured"


def test_a_kit_without_parts_still_serves_the_rest(
    in_process: Callable[[Perfkit], Client],
) -> None:
    client = in_process(Perfkit(settings=Settings(), token=TOKEN, performance_log=False))
    for path in (
        "summary",
        "dashboard",
        "realtime",
        "trends",
        "metrics",
        "health",
        "health/detailed",
        "openapi.json",
    ):
        assert client.get(path, headers=AUTH).status_code == 200, path
    dashboard = client.get("dashboard", headers=AUTH).json()
    assert dashboard["cache"] is None and dashboard["jobs"] is None
    assert dashboard["database"] is None
    assert client.post("metrics/reset", headers=AUTH).json() == {"reset": []}
