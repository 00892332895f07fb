"""Real WSGI apps (Flask, Django, plain) wrapped by perfkit, for waitress and gunicorn.

Each site is ``<framework>_site``: the app wrapped with request metrics and compression,
answering ``/metrics`` itself (the default ``exclude`` keeps that route unmeasured). The
servers import this module in their own process (Django's settings are per process).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from perfkit.metrics import CONTENT_TYPE, PerformanceMonitor
from perfkit.types import Environ, StartResponse, WSGIApp

BLOB = "y" * 5000


def _with_metrics(app: WSGIApp) -> WSGIApp:
    monitor = PerformanceMonitor()

    def site(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics":
            body = monitor.exposition().encode()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE),
                                      ("Content-Length", str(len(body)))])  # fmt: skip
            return [body]
        return app(environ, start_response)

    return monitor.wsgi(site)


# -- Flask ---------------------------------------------------------------------------------


def _flask() -> WSGIApp:
    from flask import Blueprint, Flask, Response, jsonify

    app = Flask(__name__)

    @app.get("/authors/<name>/books")
    def books(name: str) -> Response:
        return jsonify({"author": name, "blob": BLOB})

    @app.get("/stream")
    def stream() -> Response:
        return Response((b"x" * 1000 for _ in range(20)), mimetype="text/plain")

    shop = Blueprint("shop", __name__, url_prefix="/shop")

    @shop.get("/items/<int:item_id>")
    def item(item_id: int) -> Response:
        return jsonify({"item": item_id})

    app.register_blueprint(shop)
    return app


flask_site = _with_metrics(_flask())


# -- plain WSGI ----------------------------------------------------------------------------


def _plain(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = BLOB.encode()
    path = environ.get("PATH_INFO", "")
    if path == "/sized":  # a generator that declares its length: full
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])  # fmt: skip
        return _chunks(body, 1000)
    if path == "/stream":  # no length: streamed
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _chunks(body, 1000)
    if path == "/one":  # one element, not a list
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _One(body)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


class _One:
    """An iterable of one element that is not a list (as many frameworks return)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[bytes]:
        yield self.body


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


plain_site = _with_metrics(_plain)


# -- Django --------------------------------------------------------------------------------


def _django() -> WSGIApp:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="perfkit-tests-only",  # a test site's, never deployed
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__ + "_django_urls",
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "perfkit.contrib.django.middleware.RouteMiddleware",
        ],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()  # type: ignore[no-any-return]


def django_site(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Built on the first request, so that importing this module does not set up Django."""
    global _django_site
    if _django_site is None:
        _django_site = _with_metrics(_django())
    return _django_site(environ, start_response)


_django_site: WSGIApp | None = None
