"""Dispatch: authenticate, find the route, check the method, resolve the part it needs,
validate its query parameters, read and validate the body, run its handler, and answer
every failure as a JSON error — all as the route table says. Shared by both adapters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec
import structlog

from perfkit._compat.structlog import traceback_field
from perfkit.admin.auth import Guard
from perfkit.admin.calls import Caller
from perfkit.admin.handlers import Ask, Handlers
from perfkit.admin.http import AdminError, BodyReader, Request, Response
from perfkit.admin.routes import ROUTES
from perfkit.admin.schemas import largest_body
from perfkit.admin.source import AdminSource
from perfkit.admin.spec import Route

__all__ = ["AdminCore"]

_log = structlog.get_logger("perfkit.admin")

_BY_PATH: dict[str, dict[str, Route]] = {}
for _route in ROUTES:
    _BY_PATH.setdefault(_route.path, {})[_route.method] = _route

_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})

_AT_FIELD = re.compile(r"^(?P<what>.*?)(?: - at `\$\.?(?P<field>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<field>[^`]*)`")


def decode_body(raw: bytes, content_type: str, body_type: Any) -> Any:
    """The JSON body as ``body_type``; 415 for another media type, 400 naming the field."""
    if not raw:  # no body; whitespace is not JSON (openapi.json: 400)
        raw = b"{}"
    elif content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise AdminError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        unknown = _UNKNOWN_FIELD.search(message)
        if unknown:
            detail = f"{unknown['field']}: unknown field"
        else:
            match = _AT_FIELD.match(message)
            field = match["field"] if match and match["field"] else "body"
            what = match["what"] if match else message
            detail = f"{field}: {what}"
        raise AdminError(400, "bad_request", detail) from None
    except msgspec.DecodeError:
        raise AdminError(400, "bad_request", "body: not valid JSON") from None
    fields = body.__struct_fields__
    given = sum(getattr(body, field) is not msgspec.UNSET for field in fields)
    if given < body.min_fields:
        raise AdminError(
            400, "bad_request", f"{', '.join(fields)}: give at least {body.min_fields} of them"
        )
    return body


class AdminCore:
    """Answers admin requests over ``source`` (a :class:`~perfkit.Perfkit`, or anything
    implementing :class:`~perfkit.admin.source.AdminSource`), with I/O through ``call``
    (see calls.py)."""

    def __init__(
        self,
        source: AdminSource,
        call: Caller,
        *,
        guard: Guard,
        max_body: int,
        health_open: bool,
    ) -> None:
        self.source = source
        self.handlers = Handlers(source, call)
        self.guard = guard
        self.max_body = max_body
        self.health_open = health_open

    def _public(self, route: Route | None) -> bool:
        if route is None:
            return False
        if route.access == "health":
            return self.health_open
        # The page is a static shell holding no data: it must load for the user to type
        # the token its fetches then carry. Still refused while nothing is configured.
        return route.access == "page" and self.guard.configured

    async def handle(self, request: Request, read_body: BodyReader) -> Response:
        """Answer one request; never raises."""
        try:
            response = await self._dispatch(request, read_body)
        except AdminError as exc:
            response = exc.response()
        except Exception as exc:
            # The traceback as text, never exc_info: a renderer that shows locals (rich's,
            # structlog's development default) would print the request, token included.
            _log.error(
                "admin.handler_failed",
                path=request.path,
                method=request.method,
                **traceback_field(exc),
            )
            response = AdminError(500, "internal", "internal error; see the server log").response()
        return response.finished(head=request.method == "HEAD")

    async def _dispatch(self, request: Request, read_body: BodyReader) -> Response:
        path = request.path.rstrip("/")
        methods = _BY_PATH.get(path)
        method = "GET" if request.method == "HEAD" else request.method
        route = methods.get(method) if methods else None
        if not self._public(route):
            await self.guard.check(request)
        if methods is None:
            raise AdminError(404, "not_found", f"no admin route {request.path!r}")
        if route is None:
            allow = ", ".join(sorted({*methods, *(("HEAD",) if "GET" in methods else ())}))
            raise AdminError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {allow}",
                [("allow", allow)],
            )
        part = route.part.resolve(self.source) if route.part is not None else None
        params = _NO_PARAMS
        if route.params:
            choices = {"queues": self.source.queues}
            params = {param.name: param.read(request, choices) for param in route.params}
        body = None
        if route.body is not None:
            raw = await read_body(max(self.max_body, largest_body(route.body)))
            body = decode_body(raw, request.headers.get("content-type", ""), route.body)
        result = await route.handler(self.handlers, Ask(request, params, body, part))
        return result if isinstance(result, Response) else Response.json(result)
