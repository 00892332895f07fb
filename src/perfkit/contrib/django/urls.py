"""perfkit's admin API and dashboard in a Django project's ``urls.py``::

    from perfkit.contrib.django.urls import admin_urls

    urlpatterns = [..., path("api/admin/performance/", include(admin_urls(kit)))]

The admin is perfkit's WSGI app (``kit.wsgi_admin()``); the view hands it the request under
the prefix Django matched, so its links and routes work wherever it is mounted.
:func:`admin_urls` also starts the kit in the process that loads the URLconf — each
worker of gunicorn, runserver's — so that every process publishes its numbers to the
fleet view, and stops it when the process exits.
"""

from __future__ import annotations

import atexit
import io
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from perfkit.kit import Perfkit
from perfkit.types import WSGIApp

__all__ = ["admin_urls", "admin_view"]


def admin_view(admin: WSGIApp) -> Any:
    """A Django view answering with the WSGI app ``admin`` (the URL pattern must capture
    the path below the mount point as ``path``)."""

    def view(request: HttpRequest, path: str = "") -> HttpResponse:
        environ = dict(request.META)
        full = request.path_info
        script = request.META.get("SCRIPT_NAME", "") + full[: len(full) - len(path) - 1]
        environ["SCRIPT_NAME"] = script.rstrip("/")
        environ["PATH_INFO"] = "/" + path
        body = request.body
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        chunks = admin(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = started
        response = HttpResponse(content, status=int(status.split(" ", 1)[0]))
        for name, value in headers:
            response[name] = value
        return response

    # The admin authenticates with a bearer token, not a cookie: CSRF does not apply.
    return csrf_exempt(view)


def admin_urls(kit: Perfkit) -> list[Any]:
    """URL patterns serving ``kit``'s admin API and dashboard; ``include()`` them under
    the prefix of your choice.

    Django loads the URLconf in each process that serves (a gunicorn worker loads it
    after the fork), so this is where the kit starts: :meth:`Perfkit.start` (fleet
    publishing, warming schedule, performance log; a second call does nothing more), and
    :meth:`Perfkit.stop` when the process exits.
    """
    admin = admin_view(kit.wsgi_admin())
    kit.start()
    atexit.register(kit.stop)
    return [re_path(r"^(?P<path>.*)$", admin)]
