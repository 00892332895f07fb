"""What an admin route is: its handler, its query parameters, the part it needs.

Dispatch (:mod:`perfkit.admin.core`), validation and the OpenAPI document
(:mod:`perfkit.admin.openapi`) read these; the table itself is :mod:`perfkit.admin.routes`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple

from perfkit.admin.handlers import Ask, Handlers
from perfkit.admin.http import AdminError, Request
from perfkit.admin.params import Choices, Kind
from perfkit.admin.source import AdminSource

__all__ = ["CACHE", "JOBS", "POOL", "WARMING", "Handler", "Param", "Part", "Route"]

Access = Literal["admin", "health", "page"]

Handler = Callable[[Handlers, Ask], Awaitable[Any]]
"""A route's handler: given the handlers' context and the validated request, answers a
msgspec Struct (JSON 200) or a :class:`~perfkit.admin.http.Response`."""


class Part(NamedTuple):
    """A part of the app a route needs: ``attribute`` of the
    :class:`~perfkit.admin.source.AdminSource`, ``label`` in the 404 answer."""

    attribute: Literal["cache", "warmer", "pool", "jobs"]
    label: str

    def resolve(self, source: AdminSource) -> Any:
        """The part of ``source``, or the 404 "not configured" answer."""
        part = getattr(source, self.attribute)
        if part is None:
            raise AdminError(
                404, "not_configured", f"{self.label} is not configured in this Perfkit"
            )
        return part


CACHE = Part("cache", "cache")
WARMING = Part("warmer", "cache warming")
POOL = Part("pool", "database pool")
JOBS = Part("jobs", "jobs")


class Param(NamedTuple):
    """A query parameter: its ``name``, what it is for, and its ``kind``
    (:mod:`perfkit.admin.params`), which reads it and describes it."""

    name: str
    description: str
    kind: Kind

    def read(self, request: Request, choices: Choices) -> Any:
        """This parameter's value in ``request`` (the kind's default when absent), or 400
        naming it."""
        raw = request.param(self.name)
        if raw is None:
            return self.kind.default
        return self.kind.convert(self.name, raw, choices)


class Route(NamedTuple):
    """One route, relative to the mount point.

    ``part``: the route answers 404 "not configured" without it (and 503 while it is
    away); ``response``/``body``: the msgspec types answered and read (``str`` / ``dict``
    for text and free-form JSON); ``errors``: statuses beyond those every route documents.
    """

    method: Literal["GET", "POST"]
    path: str
    handler: Handler
    summary: str
    response: Any
    body: Any = None
    params: tuple[Param, ...] = ()
    part: Part | None = None
    access: Access = "admin"
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """The handler's name (the OpenAPI operationId)."""
        return self.handler.__name__
