"""The route label of a request: the host's route template, else a collapsed path.

``/orders/1234/items/6f1c...`` becomes ``/orders/{id}/items/{uuid}`` so that ids do not
become label values. What is left (slugs, free text) is bounded by the registry's cap on
label sets, which sends new label sets to the overflow child.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["collapse_path", "route_template"]

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_CACHE_SIZE = 4096
_collapsed: dict[str, str] = {}


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


def route_template(scope_or_environ: Mapping[str, Any]) -> str | None:
    """The route template the host recorded for this request, if it exposes one.

    Understands ``perfkit.route`` (any app may set it), Starlette/FastAPI's ``route``
    object (``path_format`` or ``path``), Litestar's ``path_template``, and a werkzeug
    (Flask) request's ``url_rule`` in a WSGI environ.
    """
    explicit = scope_or_environ.get("perfkit.route")
    if isinstance(explicit, str):
        return explicit
    route = scope_or_environ.get("route")
    if route is not None:
        if isinstance(route, str):
            return route
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
