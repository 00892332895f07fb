"""The admin API as a WSGI (PEP 3333) app: a thin adapter from the environ to the core's
Request. The handlers run in the server's request thread, without an event loop."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs

from perfkit.admin.asgi import status_line
from perfkit.admin.calls import run_inline
from perfkit.admin.core import AdminCore
from perfkit.admin.http import AdminError, Request, too_large
from perfkit.types import Environ, StartResponse, WSGIApp

__all__ = ["WSGIAdmin", "mount_wsgi"]


def _text(value: str) -> str:
    # PEP 3333 gives paths as latin-1 decoded bytes; the bytes were UTF-8.
    return value.encode("latin-1").decode("utf-8", "replace")


def _headers(environ: Environ) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


class WSGIAdmin:
    """``app(environ, start_response)`` for the admin routes of one :class:`AdminCore`."""

    def __init__(self, core: AdminCore) -> None:
        self.core = core

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers = _headers(environ)
        request = Request(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=_text(environ.get("PATH_INFO", "")),
            headers=headers,
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            client=environ.get("REMOTE_ADDR"),
            mount=_text(environ.get("SCRIPT_NAME", "")),
            native=environ,
        )

        async def read_body(limit: int) -> bytes:
            declared = headers.get("content-length", "")
            stream = environ["wsgi.input"]
            if declared:
                if not declared.isdigit():
                    raise AdminError(400, "bad_request", "content-length: not a number")
                if int(declared) > limit:
                    raise too_large(limit)
                body: bytes = stream.read(int(declared))
                return body
            if environ.get("wsgi.input_terminated"):
                body = stream.read(limit + 1)
                if len(body) > limit:
                    raise too_large(limit)
                return body
            return b""  # PEP 3333: without a length there is no body to read

        response = run_inline(self.core.handle(request, read_body))
        start_response(status_line(response.status), response.headers)
        return [response.body]


def mount_wsgi(app: WSGIApp, prefix: str, admin: WSGIApp) -> WSGIApp:
    """``app`` with ``admin`` answering under ``prefix`` (Django, any WSGI app)."""
    prefix = "/" + prefix.strip("/")

    def mounted(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(prefix + "/"):
            inner = dict(environ)
            inner["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            inner["PATH_INFO"] = path[len(prefix) :]
            return admin(inner, start_response)
        return app(environ, start_response)

    return mounted
