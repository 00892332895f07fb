"""The admin API as an ASGI 3 app: a thin adapter from the scope to the core's Request."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qs

from perfkit.admin.core import AdminCore
from perfkit.admin.http import AdminError, Request, too_large
from perfkit.types import ASGIApp, Receive, Scope, Send

__all__ = ["ASGIAdmin", "mount_asgi"]


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _relative(scope: Scope) -> tuple[str, str]:
    """The path below the mount point, and the mount point (``root_path``)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    # Starlette's Mount (and uvicorn --root-path) keep the full path and extend root_path.
    if root and path.startswith(root):
        path = path[len(root) :]
    return path, root


class ASGIAdmin:
    """``await app(scope, receive, send)`` for the admin routes of one :class:`AdminCore`."""

    def __init__(self, core: AdminCore) -> None:
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
            return
        path, root = _relative(scope)
        client = scope.get("client")
        request = Request(
            method=scope.get("method", "GET").upper(),
            path=path,
            headers=_headers(scope),
            query=parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ),
            client=client[0] if client else None,
            mount=root,
            native=scope,
        )

        async def read_body(limit: int) -> bytes:
            declared = request.headers.get("content-length")
            if declared is not None:
                if not declared.isdigit():
                    raise AdminError(400, "bad_request", "content-length: not a number")
                if int(declared) > limit:
                    raise too_large(limit)
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise AdminError(400, "bad_request", "body: the client went away")
                body += message.get("body", b"")
                if len(body) > limit:
                    raise too_large(limit)
                if not message.get("more_body", False):
                    return bytes(body)

        response = await self.core.handle(request, read_body)
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Served on its own (uvicorn perfkit_app:admin): acknowledge; the kit's background
    # work is started by the host with `with kit:` / `async with kit:`.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def mount_asgi(app: ASGIApp, prefix: str, admin: ASGIApp) -> ASGIApp:
    """``app`` with ``admin`` answering under ``prefix`` (any ASGI host, no framework)."""
    prefix = "/" + prefix.strip("/")

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, root = _relative(scope)
            if path == prefix or path.startswith(prefix + "/"):
                await admin({**scope, "root_path": root + prefix}, receive, send)
                return
        await app(scope, receive, send)

    return mounted


# The reason phrases the WSGI adapter needs, kept next to the ASGI one for symmetry.
def status_line(status: int) -> str:
    """``"404 Not Found"`` for 404."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"
