"""A Django middleware that hands the matched route template to perfkit's request metrics,
and makes each request a unit of work for N+1 detection.

Django resolves the URL inside its handler, out of reach of a WSGI/ASGI middleware, so
without this every ``/authors/ann/books`` is its own label. Add it to ``MIDDLEWARE`` and
wrap the application with perfkit's request metrics as usual::

    MIDDLEWARE = [..., "perfkit.contrib.django.middleware.RouteMiddleware"]
    # wsgi.py
    application = kit.wsgi(get_wsgi_application())

The template (``/authors/<str:name>/books``) is stored as ``perfkit.route`` in the WSGI
environ (``request.META`` is the environ) or the ASGI scope, which
:func:`perfkit.http.routes.route_template` reads first. A request no URL pattern matched
gets none, and is counted as ``<unmatched>`` when answered 404.

Each request is a unit of work (see docs/queries.md, "N+1 detection"): statements
repeated in it are reported under the route template. Inside perfkit's WSGI/ASGI
middleware that one owns the unit, and this one only names the route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from perfkit import _units
from perfkit.http.routes import UNMATCHED

__all__ = ["RouteMiddleware"]


class RouteMiddleware:
    """Records ``request.resolver_match.route`` for perfkit (sync and async capable).

    ``process_view`` runs once Django has resolved the URL; the call itself opens the
    request's unit of work and hands the request straight on.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            # Django awaits an async chain: say this one returns the awaitable it gets.
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self._acall(request)
        unit = _units.begin("request")
        try:
            return self.get_response(request)
        finally:
            _units.end(unit, request.META.get("perfkit.route", UNMATCHED))

    async def _acall(self, request: Any) -> Any:
        unit = _units.begin("request")
        try:
            return await self.get_response(request)
        finally:
            _units.end(unit, request.META.get("perfkit.route", UNMATCHED))

    def process_view(
        self,
        request: Any,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        """Store the route template of the matched URL pattern; never answers itself."""
        match = request.resolver_match
        route = getattr(match, "route", None)
        if not route:
            return None
        template = route if route.startswith("/") else "/" + route
        request.META["perfkit.route"] = template
        # ASGI: META is a copy; the scope is the dict the outer middleware holds.
        scope = getattr(request, "scope", None)
        if isinstance(scope, dict):
            scope["perfkit.route"] = template
        return None
