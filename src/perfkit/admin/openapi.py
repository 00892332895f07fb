"""The OpenAPI 3.1 document of the admin API, built from the route table and the msgspec
schemas (so it cannot drift from what the handlers answer).

:func:`perfkit.admin.routes.openapi_document` gives it for an app; :func:`document` builds it
from any table of :class:`~perfkit.admin.spec.Route`."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import msgspec

from perfkit.admin.http import ErrorBody
from perfkit.admin.schemas import CHOICES
from perfkit.admin.spec import Param, Route

__all__ = ["document"]

# The distribution's version, read without importing the perfkit package (which imports
# the kit, which imports the admin).
_VERSION = metadata.version("perfkit")
_REF = "#/components/schemas/{name}"
_JSON = "application/json"
_ERRORS = {
    400: "A query parameter or body field is not valid (``detail`` names it).",
    401: "No credentials.",
    403: "Wrong credentials, or no way to authenticate is configured.",
    404: "The part this route needs is not configured.",
    409: "The job is not in a state that allows it.",
    413: "The body is larger than PERFKIT_ADMIN_MAX_BODY and than any body this document allows.",
    415: "The body is not application/json.",
    503: "A dependency the route needs is unavailable.",
}


Schemas = tuple[dict[Route, dict[str, Any]], dict[Route, dict[str, Any]], dict[str, Any]]


@functools.cache
def _schemas(routes: tuple[Route, ...]) -> Schemas:
    """Each route's response and body schema references, and the components they use."""
    typed = [
        route
        for route in routes
        if isinstance(route.response, type) and issubclass(route.response, msgspec.Struct)
    ]
    with_body = [route for route in routes if route.body is not None]
    types = [r.response for r in typed] + [r.body for r in with_body] + [ErrorBody]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    for route in with_body:
        if route.body.min_fields:
            components[route.body.__name__]["minProperties"] = route.body.min_fields
    responses = dict(zip(typed, refs[: len(typed)], strict=True))
    bodies = dict(zip(with_body, refs[len(typed) : len(typed) + len(with_body)], strict=True))
    return responses, bodies, components


def _with_choices(node: Any, choices: dict[str, list[str]]) -> Any:
    """``node`` (a JSON schema) with each string marked :data:`CHOICES` given the app's
    values as its ``enum``."""
    if isinstance(node, list):
        return [_with_choices(item, choices) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _with_choices(value, choices) for key, value in node.items() if key != CHOICES}
    if CHOICES in node:
        out["enum"] = choices[node[CHOICES]]
    return out


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


def _operation(
    route: Route, schemas: Schemas, queues: list[str], health_open: bool
) -> dict[str, Any]:
    responses_refs, bodies_refs, _ = schemas
    if route.response is str:
        ok: dict[str, Any] = {"schema": {"type": "string"}}
    elif route.response is dict:
        ok = {"schema": {"type": "object"}}
    else:
        ok = {"schema": responses_refs[route]}
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
        "operationId": route.name,
        "summary": route.summary,
        "responses": responses,
    }
    if route.params:
        operation["parameters"] = [_parameter(param, queues) for param in route.params]
    if route.body is not None:
        # Required when an empty object would not do (no body is read as ``{}``).
        fields = msgspec.structs.fields(route.body)
        needed = route.body.min_fields > 0 or any(field.required for field in fields)
        operation["requestBody"] = {
            "required": needed,
            "content": {_JSON: {"schema": bodies_refs[route]}},
        }
    if route.access == "page" or (route.access == "health" and health_open):
        operation["security"] = []
    return operation


def document(
    routes: tuple[Route, ...],
    *,
    queues: Iterable[str],
    warmers: Iterable[str] = (),
    health_open: bool,
    server: str = "",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` mounted at ``server``, for an app with
    ``queues`` and ``warmers`` (the values of ``queue`` and of warmer ``names``) and
    ``health_open``."""
    schemas = _schemas(routes)
    names = list(queues)
    choices = {"queues": names, "warmers": list(warmers)}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = route.path or "/"
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route, schemas, names, health_open
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "perfkit admin API",
            "version": _VERSION,
            "description": "Performance endpoints of perfkit (docs/admin.md). Every route "
            "needs 'Authorization: Bearer <PERFKIT_ADMIN_TOKEN>' or the host's authorize().",
        },
        "servers": [{"url": server or "/"}],
        "paths": paths,
        "components": {
            "schemas": _with_choices(schemas[2], choices),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
