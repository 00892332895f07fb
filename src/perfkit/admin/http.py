"""The admin core's view of HTTP: a host-neutral request, a response, and the JSON errors.

The ASGI and WSGI adapters translate to and from these; the handlers never see a scope
or an environ (except through :attr:`Request.native`, for a host's own ``authorize``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

__all__ = ["AdminError", "ErrorBody", "Request", "Response"]

JSON = "application/json"
_encoder = msgspec.json.Encoder()

# Sent on every answer: nothing here may be cached, sniffed, framed or leak a referrer.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One request as the admin core sees it, whatever the host.

    ``path`` is relative to the mount point (``""`` or starting with ``/``); header names
    are lower case (repeated headers joined with ``", "``); ``query`` maps each parameter to
    its values; ``native`` is the ASGI scope or the WSGI environ, for an ``authorize``
    callable that needs the host's own data (a session, a user object).
    """

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, list[str]]
    client: str | None = None
    mount: str = ""
    native: Mapping[str, Any] = msgspec.field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or ``None``."""
        values = self.query.get(name)
        return values[-1] if values else None


# Reads the request body, raising AdminError(413) beyond the given number of bytes.
BodyReader = Callable[[int], Awaitable[bytes]]


class Response(msgspec.Struct, kw_only=True):
    """What a handler answers: status, headers (lower-case names) and body."""

    status: int = 200
    headers: list[tuple[str, str]] = msgspec.field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        """``value`` (a msgspec Struct, dict, list ...) encoded as JSON."""
        return cls(status=status, headers=[("content-type", JSON)], body=_encoder.encode(value))

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or ``None``."""
        return next((value for key, value in self.headers if key == name), None)

    def finished(self, *, head: bool = False) -> Response:
        """This response with the security headers and Content-Length (no body for HEAD)."""
        headers = [*self.headers, *SECURITY_HEADERS, ("content-length", str(len(self.body)))]
        return Response(status=self.status, headers=headers, body=b"" if head else self.body)


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every error answer: a short machine-readable ``error`` and a sentence of ``detail``."""

    error: str
    detail: str


class AdminError(Exception):
    """Raised by handlers and adapters to answer with a JSON error."""

    def __init__(
        self, status: int, error: str, detail: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or []

    def response(self) -> Response:
        """The JSON error response."""
        response = Response.json(ErrorBody(error=self.error, detail=self.detail), self.status)
        response.headers.extend(self.headers)
        return response


def too_large(limit: int) -> AdminError:
    """The 413 answer for a body over ``limit`` bytes."""
    return AdminError(413, "payload_too_large", f"the request body is over {limit} bytes")
