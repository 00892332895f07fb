"""The OpenAPI 3.1 document of the admin API, built from the route table and the msgspec
schemas (so it cannot drift from what the handlers answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

import perfkit
from perfkit.admin.http import ErrorBody
from perfkit.admin.routes import ROUTES, Param, Route

if TYPE_CHECKING:
    from perfkit.kit import Perfkit

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{name}"
_JSON = "application/json"
_ERRORS = {
    400: "A query parameter or body field is not valid (``detail`` names it).",
    401: "No credentials.",
    403: "Wrong credentials, or no way to authenticate is configured.",
    404: "The part this route needs is not configured.",
    409: "The job is not in a state that allows it.",
    413: "The body is larger than PERFKIT_ADMIN_MAX_BODY.",
    415: "The body is not application/json.",
    503: "A dependency the route needs is unavailable.",
}


def _schemas() -> tuple[dict[Route, dict[str, Any]], dict[Route, dict[str, Any]], dict[str, Any]]:
    typed = [
        route
        for route in ROUTES
        if isinstance(route.response, type) and issubclass(route.response, msgspec.Struct)
    ]
    with_body = [route for route in ROUTES if route.body is not None]
    types = [r.response for r in typed] + [r.body for r in with_body] + [ErrorBody]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    responses = dict(zip(typed, refs[: len(typed)], strict=True))
    bodies = dict(zip(with_body, refs[len(typed) : len(typed) + len(with_body)], strict=True))
    return responses, bodies, components


_RESPONSES, _BODIES, _COMPONENTS = _schemas()


def _parameter(param: Param, queues: list[str]) -> dict[str, Any]:
    if param.queue:
        schema: dict[str, Any] = {"type": "string", "enum": queues}
    else:
        schema = {
            "type": "integer",
            "minimum": param.minimum,
            "maximum": param.maximum,
            "default": param.default,
        }
    return {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": param.description,
        "schema": schema,
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": _REF.format(name="ErrorBody")}}},
    }


def _operation(route: Route, queues: list[str], health_open: bool) -> dict[str, Any]:
    if route.response is str:
        ok: dict[str, Any] = {"schema": {"type": "string"}}
    elif route.response is dict:
        ok = {"schema": {"type": "object"}}
    else:
        ok = {"schema": _RESPONSES[route]}
    media = route.content_type.split(";", 1)[0]
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {media: ok}}}
    statuses = {401, 403}
    if route.access == "page":
        statuses = {403}
    if route.params or route.body is not None:
        statuses.add(400)
    if route.body is not None:
        statuses |= {413, 415}
    if route.part is not None:
        statuses |= {404, 503}
    for status in sorted(statuses | set(route.errors)):
        if status == 503 and route.path.startswith("/health"):
            responses["503"] = {
                "description": "A required dependency is down.",
                "content": {_JSON: ok},
            }
        else:
            responses[str(status)] = _error(_ERRORS[status])
    operation: dict[str, Any] = {
        "operationId": route.handler,
        "summary": route.summary,
        "responses": responses,
    }
    if route.params:
        operation["parameters"] = [_parameter(param, queues) for param in route.params]
    if route.body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {_JSON: {"schema": _BODIES[route]}},
        }
    if route.access == "page" or (route.access == "health" and health_open):
        operation["security"] = []
    return operation


def openapi_document(kit: Perfkit, *, server: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``kit``'s admin API, mounted at ``server``."""
    queues = list(kit.queues)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        path = route.path or "/"
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route, queues, kit.health_open
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "perfkit admin API",
            "version": perfkit.__version__,
            "description": "Performance endpoints of perfkit (docs/admin.md). Every route "
            "needs 'Authorization: Bearer <PERFKIT_ADMIN_TOKEN>' or the host's authorize().",
        },
        "servers": [{"url": server or "/"}],
        "paths": paths,
        "components": {
            "schemas": _COMPONENTS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
