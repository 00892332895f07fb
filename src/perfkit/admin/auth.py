"""Who may use the admin API: a bearer token compared in constant time, or the host's own
``authorize(request) -> bool``. With neither, everything is refused (403), never open."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

import structlog

from perfkit._acompat import resolve
from perfkit._errors import ConfigError
from perfkit.admin.http import AdminError, Request

__all__ = ["Authorize", "Guard"]

_log = structlog.get_logger("perfkit.admin")

# A host's admin check: sync or async, given the request (``request.native`` holds the
# ASGI scope or WSGI environ, e.g. a session a middleware put there).
Authorize = Callable[[Request], bool | Awaitable[bool]]

_CHALLENGE = [("www-authenticate", 'Bearer realm="perfkit-admin"')]
LOCKED_DETAIL = "the admin API is locked: set PERFKIT_ADMIN_TOKEN or pass authorize= to enable it"


def _digest(value: str) -> bytes:
    # Comparing fixed-length digests: compare_digest on the raw strings would return
    # early on a length mismatch, telling an attacker the token's length.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class Guard:
    """Decides each request: raises :class:`AdminError` 401/403, or returns when allowed.

    - ``token``: ``Authorization: Bearer <token>`` must match (constant time). A request
      without credentials gets 401, a wrong token 403.
    - ``authorize``: asked when the request carries no bearer token; ``False`` is 403 if
      the request carried any credentials (Authorization header or cookie), else 401.
    - Neither: every request gets 403, and one log line at creation says why.
    """

    def __init__(self, *, token: str | None = None, authorize: Authorize | None = None) -> None:
        if token is not None and len(token) < 16:
            raise ConfigError("the admin token must be at least 16 characters long")
        self._digest = _digest(token) if token is not None else None
        self.authorize = authorize
        if not self.configured:
            _log.warning("admin.locked", detail=LOCKED_DETAIL)

    @property
    def configured(self) -> bool:
        """Whether any way to authenticate is configured."""
        return self._digest is not None or self.authorize is not None

    async def check(self, request: Request) -> None:
        """Return if ``request`` may use the admin API, else raise 401 or 403."""
        if not self.configured:
            raise AdminError(403, "forbidden", LOCKED_DETAIL)
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else ""
        if bearer and self._digest is not None:
            if hmac.compare_digest(_digest(bearer), self._digest):
                return
            raise _denied(request, "wrong token", "the bearer token is not valid")
        if self.authorize is not None:
            allowed = await resolve(self.authorize(request))
            if allowed is True:
                return
            if header or "cookie" in request.headers:
                raise _denied(
                    request, "authorize refused", "these credentials may not use the admin API"
                )
        elif header:
            raise _denied(
                request,
                "not a bearer token",
                "the Authorization header must be 'Bearer <token>'",
            )
        raise AdminError(
            401,
            "unauthorized",
            "credentials are required: send 'Authorization: Bearer <token>'",
            _CHALLENGE,
        )


def _denied(request: Request, reason: str, detail: str) -> AdminError:
    # Logged without the credentials themselves: only why, where and from whom.
    _log.info("admin.denied", reason=reason, path=request.path, client=request.client)
    return AdminError(403, "forbidden", detail)
