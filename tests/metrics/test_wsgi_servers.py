"""Flask, Django and a plain WSGI app under real servers (waitress, gunicorn): route labels
from the framework, and full responses that keep Content-Length, ETag and 304 on the wire."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from perfkit.embedded import free_port
from perfkit_demo.stack import wait_for_http
from tests.metrics.test_registry import families

ROOT = Path(__file__).resolve().parents[2]
GZIP = {"Accept-Encoding": "gzip"}


def _start(argv: Callable[[int], list[str]]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", *argv(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/metrics", 60, process)
    except BaseException:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise RuntimeError(err.decode(errors="replace")[-2000:]) from None
    return process, url


@pytest.fixture
def serve() -> Iterator[Callable[[str, str], str]]:
    """Start ``site`` (a name in wsgi_sites.py) under ``server``; returns its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(server: str, site: str) -> str:
        target = f"tests.metrics.wsgi_sites:{site}"
        if server == "waitress":
            process, url = _start(lambda port: ["waitress", f"--listen=127.0.0.1:{port}", target])
        else:
            process, url = _start(lambda port: ["gunicorn", "-w", "1", "-b",
                                                f"127.0.0.1:{port}", target])  # fmt: skip
        processes.append(process)
        return url

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def scrape(url: str) -> dict[tuple[str, str], float]:
    """http_requests_total by (route, status_class), from the site's own /metrics."""
    text = httpx.get(f"{url}/metrics").text
    samples = families(text).get("http_requests", {})
    out: dict[tuple[str, str], float] = {}
    for (_, labels), value in samples.items():
        named = dict(labels)
        key = (named["route"], named["status_class"])
        out[key] = out.get(key, 0) + value
    return out


def assert_full_response(url: str) -> None:
    """A compressible JSON answer: gzip whole, Content-Length and ETag kept, then a 304."""
    with httpx.Client() as client:
        first = client.get(url, headers=GZIP)
        assert first.status_code == 200
        assert first.headers["content-encoding"] == "gzip"
        assert "transfer-encoding" not in first.headers
        assert int(first.headers["content-length"]) == first.num_bytes_downloaded
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert len(first.content) >= 5000  # httpx decoded the gzip body
        again = client.get(url, headers={**GZIP, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag


def assert_streamed(url: str) -> None:
    response = httpx.get(url, headers=GZIP)
    assert response.status_code == 200
    assert response.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.headers
    assert "etag" not in response.headers


# -- Flask under waitress --------------------------------------------------------------------


def test_flask_routes_are_its_url_rules_and_probes_share_one_label(
    serve: Callable[[str, str], str],
) -> None:
    url = serve("waitress", "flask_site")
    for path in ("/authors/ann/books", "/authors/bob/books", "/shop/items/3",
                 "/random-2691", "/wp-login.php"):  # fmt: skip
        httpx.get(url + path)
    counts = scrape(url)
    assert counts[("/authors/<name>/books", "2xx")] == 2
    assert counts[("/shop/items/<int:item_id>", "2xx")] == 1
    assert counts[("<unmatched>", "4xx")] == 2
    routes = {route for route, _ in counts}
    assert not [r for r in routes if "ann" in r or "random" in r or "wp-login" in r]
    assert "/metrics" not in routes  # excluded by default: the scrape is not app traffic


def test_flask_full_response_keeps_content_length_etag_and_304(
    serve: Callable[[str, str], str],
) -> None:
    url = serve("waitress", "flask_site")
    assert_full_response(f"{url}/authors/ann/books")
    assert_streamed(f"{url}/stream")


# -- Django under gunicorn -------------------------------------------------------------------


def test_django_routes_come_from_the_shipped_middleware(serve: Callable[[str, str], str]) -> None:
    url = serve("gunicorn", "django_site")
    for path in ("/authors/ann/books", "/authors/bob/books", "/api/items/7", "/random-2691"):
        httpx.get(url + path)
    counts = scrape(url)
    assert counts[("/authors/<str:name>/books", "2xx")] == 2
    assert counts[("/api/items/<int:pk>", "2xx")] == 1
    assert counts[("<unmatched>", "4xx")] == 1


def test_django_full_response_keeps_content_length_etag_and_304(
    serve: Callable[[str, str], str],
) -> None:
    url = serve("gunicorn", "django_site")
    assert_full_response(f"{url}/authors/ann/books")


# -- a plain WSGI app under waitress ---------------------------------------------------------


def test_plain_wsgi_full_stream_and_one_element_responses(
    serve: Callable[[str, str], str],
) -> None:
    url = serve("waitress", "plain_site")
    assert_full_response(f"{url}/sized")
    assert_full_response(f"{url}/one")
    assert_streamed(f"{url}/stream")
    httpx.get(f"{url}/nothing-here-42")
    counts = scrape(url)
    assert counts[("<unmatched>", "4xx")] == 1
    assert counts[("/sized", "2xx")] == 1
    assert counts[("/sized", "3xx")] == 1  # the 304
