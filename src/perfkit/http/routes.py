"""The route label of a request: the host's route template, else a collapsed path.

``/orders/1234/items/6f1c...`` becomes ``/orders/{id}/items/{uuid}`` so that ids do not
become label values. A 404 or 405 that no route matched is :data:`UNMATCHED` (scanners'
probes must not take the label sets real routes need). What is left (slugs, free text in
apps without templates) is bounded by the registry's cap on label sets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perfkit._errors import ConfigError

__all__ = [
    "DEFAULT_EXCLUDE",
    "PENDING",
    "UNMATCHED",
    "Exclude",
    "collapse_path",
    "exclusion",
    "route_label",
    "route_template",
]

UNMATCHED = "<unmatched>"
"""The route label of every 404/405 answered without a route template."""

PENDING = "<pending>"
"""The in-flight label of every request whose route template is not known (yet): never
the path, so requests in flight take one label set per route, not one per URL."""

DEFAULT_EXCLUDE: tuple[str, ...] = ("/api/admin/performance", "/metrics", "/health", "/healthz")
"""Paths (and what is below them) the request middleware does not measure by default: the
admin API (the dashboard polls it), the Prometheus scrape and health checks."""

Exclude = Sequence[str] | Callable[[str], bool]
"""Paths whose requests are not measured: path prefixes (a prefix matches itself and what
is below it, ``/metrics`` but not ``/metricsx``), or a predicate on the path."""

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_CACHE_SIZE = 4096
_collapsed: dict[str, str] = {}
# (id(route), root path after, root path before) -> (route, template) for mounted routes;
# the route is kept to tell a reused id from the same route.
_mounted: dict[tuple[int, str, str], tuple[Any, str | None]] = {}


def collapse_path(path: str) -> str:
    """``path`` with numeric segments as ``{id}`` and uuid segments as ``{uuid}``."""
    known = _collapsed.get(path)
    if known is not None:
        return known
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if segment.isdigit():
            segments[i] = "{id}"
        elif len(segment) in (32, 36) and _UUID.match(segment):
            segments[i] = "{uuid}"
    collapsed = "/".join(segments)
    if len(_collapsed) >= _CACHE_SIZE:
        # Wholesale reset keeps the memo bounded without LRU bookkeeping on the hot path.
        _collapsed.clear()
    _collapsed[path] = collapsed
    return collapsed


def exclusion(exclude: Exclude | None) -> Callable[[str], bool] | None:
    """A predicate on paths from an ``exclude`` option (``None``: nothing is excluded)."""
    if exclude is None:
        return None
    if callable(exclude):
        return exclude
    if isinstance(exclude, str):
        raise ConfigError(f"exclude must be a list of paths or a predicate, got {exclude!r}")
    prefixes = tuple(p.rstrip("/") for p in exclude)
    for prefix in prefixes:
        if not prefix.startswith("/"):
            raise ConfigError(f"exclude: {prefix!r} is not a path (paths start with '/')")
    if not prefixes:
        return None

    def excluded(path: str) -> bool:
        # startswith(tuple) runs in C; the boundary check only on a hit.
        if not path.startswith(prefixes):
            return False
        return any(path == p or path.startswith(p + "/") for p in prefixes)

    return excluded


def route_label(
    scope_or_environ: Mapping[str, Any], path: str, status: int, root_path: str = ""
) -> str:
    """The route label: the template, else :data:`UNMATCHED` for a 404/405, else the
    collapsed path (apps without route templates)."""
    template = route_template(scope_or_environ, root_path)
    if template is not None:
        return template
    if status in (404, 405):
        return UNMATCHED
    return collapse_path(path)


def route_template(scope_or_environ: Mapping[str, Any], root_path: str = "") -> str | None:
    """The route template the host recorded for this request, if it exposes one.

    Understands ``perfkit.route`` (any app may set it; perfkit's Django middleware does),
    Starlette/FastAPI's ``route`` (``path_format``, with the templates of the mounts it
    sits under; ``root_path`` is the scope's root path before the app ran), Litestar's
    ``path_template``, and a werkzeug (Flask) request's ``url_rule`` in a WSGI environ
    (read it before Flask's teardown clears it, e.g. when the app calls start_response).
    """
    explicit = scope_or_environ.get("perfkit.route")
    if isinstance(explicit, str):
        return explicit
    route = scope_or_environ.get("route")
    if route is not None:
        if isinstance(route, str):
            return route
        mounted = scope_or_environ.get("root_path", "") != root_path or hasattr(route, "routes")
        router = scope_or_environ.get("router")
        if mounted and router is not None:
            # The same route under the same literal mount path has the same template.
            key = (id(route), scope_or_environ.get("root_path", ""), root_path)
            known = _mounted.get(key)
            if known is not None and known[0] is route:
                return known[1]
            template = _mounted_template(router, scope_or_environ, root_path)
            if len(_mounted) >= _CACHE_SIZE:
                _mounted.clear()
            _mounted[key] = (route, template)
            return template
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if isinstance(template, str):
            return template
    template = scope_or_environ.get("path_template")
    if isinstance(template, str):
        return template
    request = scope_or_environ.get("werkzeug.request")
    rule = getattr(getattr(request, "url_rule", None), "rule", None)
    if isinstance(rule, str):
        return rule
    return None


def _mounted_template(router: Any, scope: Mapping[str, Any], root_path: str) -> str | None:
    """The full template of a request routed through Starlette mounts, found by matching
    the routes again from the outermost router (only the mounts' requests pay for this)."""
    probe: dict[str, Any] = {
        "type": scope.get("type", "http"),
        "path": scope.get("path", ""),
        "root_path": root_path,
        "method": scope.get("method", "GET"),
    }
    template = ""
    routes = getattr(router, "routes", None)
    while routes:
        found: Any = None
        child: Mapping[str, Any] = {}
        for route in routes:
            match, scope_update = route.matches(probe)
            name = getattr(match, "name", "")
            if name == "FULL":
                found, child = route, scope_update
                break
            if name == "PARTIAL" and found is None:
                found, child = route, scope_update
        if found is None:
            return None
        path_format = getattr(found, "path_format", None)
        if not isinstance(path_format, str):
            return None
        if "root_path" not in child:  # a route, not a mount
            return template + path_format
        inner = getattr(found, "routes", None)
        if not inner:  # a mounted app without routes (static files, a WSGI app)
            return template + path_format
        template += path_format.removesuffix("/{path}")
        probe = {**probe, **child}
        routes = inner
    return None
