"""Generate the reference tables of docs/ from the code, so they cannot drift from it.

    python tools/gen_docs.py          # rewrite every generated region of docs/*.md
    python tools/gen_docs.py --check  # exit 1, with a diff, when one is out of date

A generated region sits between two marker lines; what is between them is replaced::

    <!-- generated: admin-routes -->
    ...
    <!-- end generated -->

The regions (their names, after ``generated:``):

- ``admin-routes``: the admin API's routes from ``perfkit.admin.ROUTES`` (paths, methods,
  query parameters as their kinds describe them, bodies from their msgspec schemas, the
  answer and the error statuses of the OpenAPI document).
- ``stats <Struct>``: the fields of a stats Struct a part's ``stats()`` returns (or one it
  holds): type, kind (the ``CounterField`` / ``GaugeField`` / ``DurationField`` marker),
  exported metric and description (the marker's HELP, or ``msgspec.Meta(description=)``).
- ``source-metrics``: every metric exported from the parts' stats, with its type, labels
  and HELP.
- ``cache-down-policy``: what each cache operation does while Redis is down, from its
  declaration in ``perfkit/cache/_ops.py``.

Every region of the list must be somewhere in docs/ and every marker must name one of
them, so a table can be neither lost nor misspelt.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal

import msgspec

from perfkit import Settings
from perfkit._stat_kinds import DurationField, StatKind
from perfkit.admin.openapi import document
from perfkit.admin.routes import ROUTES
from perfkit.admin.schemas import CHOICES
from perfkit.admin.spec import Route
from perfkit.cache import CacheStats
from perfkit.cache._ops import policy_table
from perfkit.jobs import JobStats
from perfkit.metrics import PerformanceMonitor
from perfkit.metrics.collectors import StatsCollector, declared_kinds, exported_name
from perfkit.queries import TimedPoolStats

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKERS = re.compile(
    r"(?P<open><!-- generated: (?P<name>[^>]*?) -->\n)(?P<body>.*?)"
    r"(?P<close><!-- end generated -->)",
    re.DOTALL,
)

# What each part's stats() returns, by the prefix of its metrics (PerformanceMonitor's).
SOURCES: dict[str, type[msgspec.Struct]] = {
    "perfkit_cache": CacheStats,
    "perfkit_db": TimedPoolStats,
    "perfkit_jobs": JobStats,
}


def _cell(text: str) -> str:
    """``text`` fit for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -- the stats Structs ------------------------------------------------------------------


class Found(typing.NamedTuple):
    """A stats Struct reached from a part's ``stats()``: the prefix of its metrics and
    the labels its values carry (one ``queue`` per ``QueueStats``)."""

    prefix: str
    labels: tuple[str, ...]


def _collectors() -> dict[str, StatsCollector]:
    """Each part's collector as the monitor makes it (its metric prefix, its label)."""

    class Source:
        def stats(self) -> None:
            return None

    monitor = PerformanceMonitor(settings=Settings(), cache=Source(), pool=Source(), jobs=Source())
    return {collector.prefix: collector for collector in monitor.sources}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _bare(hint: Any) -> Any:
    """``hint`` without its ``Annotated`` extras."""
    return hint.__origin__ if typing.get_origin(hint) is typing.Annotated else hint


def _nested(hint: Any) -> tuple[type[msgspec.Struct] | None, bool]:
    """The stats Struct a field holds, and whether it holds a list of them."""
    bare = _bare(hint)
    if isinstance(bare, type) and issubclass(bare, msgspec.Struct):
        return bare, False
    if typing.get_origin(bare) is list:
        (item,) = typing.get_args(bare)
        if isinstance(item, type) and issubclass(item, msgspec.Struct) and declared_kinds(item):
            return item, True
    return None, False


@functools.cache
def stats_structs() -> dict[type[msgspec.Struct], Found]:
    """Every stats Struct the metrics read, with its prefix and labels, walked the way
    :class:`perfkit.metrics.StatsCollector` walks a value: a nested Struct's metrics are
    named after its field, a list of Structs' are labelled."""
    found: dict[type[msgspec.Struct], Found] = {}

    def walk(cls: type[msgspec.Struct], where: Found, label: str) -> None:
        found[cls] = where
        kinds = declared_kinds(cls)
        for field, hint in _hints(cls).items():
            if field in kinds:
                continue
            nested, labelled = _nested(hint)
            if nested is None:
                continue
            if labelled:
                walk(nested, Found(where.prefix, (*where.labels, label)), label)
            else:
                walk(nested, Found(f"{where.prefix}{field}_", where.labels), label)

    collectors = _collectors()  # (a KeyError here: the monitor renamed a prefix)
    for prefix, cls in SOURCES.items():
        walk(cls, Found(f"{prefix}_", ()), collectors[prefix].label)
    return found


def _type(hint: Any) -> str:
    """A field's type as the docs write it: ``int | None``, ``list[QueueStats]``."""
    bare = _bare(hint)
    origin = typing.get_origin(bare)
    if origin is Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(bare))
    if origin in (typing.Union, UnionType):
        return " | ".join(_type(arg) for arg in typing.get_args(bare))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type(arg) for arg in typing.get_args(bare))}]"
    if bare is NoneType:
        return "None"
    return str(getattr(bare, "__name__", bare))


def _description(cls: type, field: str, hint: Any, kind: StatKind | None) -> str:
    if kind is not None:
        # The HELP text says what the metric holds, in base units.
        scaled = f" The metric is the field times {kind.scale:g}." if kind.scale != 1 else ""
        return kind.help + scaled
    for extra in getattr(hint, "__metadata__", ()):
        if isinstance(extra, msgspec.Meta) and extra.description:
            return extra.description
    raise SystemExit(
        f"{cls.__name__}.{field}: no description; give it a CounterField, GaugeField or "
        "DurationField, or msgspec.Meta(description=...) when it is not exported"
    )


def _kind_name(kind: StatKind) -> str:
    return "duration" if isinstance(kind, DurationField) else kind.kind


def _metric(where: Found, field: str, kind: StatKind) -> str:
    name = exported_name(where.prefix, field, kind)
    return f"{name}{{{','.join(where.labels)}}}" if where.labels else name


def stats_table(cls: type[msgspec.Struct], where: Found) -> str:
    """The fields of ``cls``: type, kind, exported metric, description."""
    rows = []
    kinds = declared_kinds(cls)
    for field, hint in _hints(cls).items():
        kind = kinds.get(field)
        if kind is not None:
            kind_name, metric = _kind_name(kind), f"`{_metric(where, field, kind)}`"
        else:
            nested, labelled = _nested(hint)
            kind_name, metric = "—", "—"
            if nested is not None:
                inner = stats_structs()[nested]
                labels = f"{{{','.join(inner.labels)}}}" if labelled else ""
                metric = f"`{inner.prefix}…{labels}`"
        description = _description(cls, field, hint, kind)
        rows.append((f"`{field}`", f"`{_type(hint)}`", kind_name, metric, description))
    return _table(("field", "type", "kind", "metric", "what"), rows)


def source_metrics() -> str:
    """Every metric exported from the parts' stats."""
    rows = []
    for cls, where in stats_structs().items():
        for field, kind in declared_kinds(cls).items():
            kind_name = kind.kind if kind.kind == "counter" else f"gauge ({kind.mode})"
            name = exported_name(where.prefix, field, kind)
            rows.append((f"`{name}`", kind_name, ", ".join(where.labels), kind.help))
    return _table(("metric", "type", "labels", "what"), rows)


# -- the admin routes -------------------------------------------------------------------


def _schema_words(node: dict[str, Any]) -> str:
    """A body field's JSON schema in a few words: ``string (1..256 characters)``,
    ``list (1..1000 items) of string (1..256 characters)``, ``one of the app's queues``."""
    if "anyOf" in node:
        return ", or ".join(_schema_words(option) for option in node["anyOf"])
    if CHOICES in node:
        return f"one of the app's {node[CHOICES]}"
    kind = node.get("type", "any")
    if kind == "string":
        return f"string ({node.get('minLength', 0)}..{node['maxLength']} characters)"
    if kind == "array":
        low, high = node.get("minItems", 0), node["maxItems"]
        return f"list ({low}..{high} items) of {_schema_words(node['items'])}"
    return str(kind)


def _body(route: Route) -> str:
    if route.body is None:
        return ""
    schema = msgspec.json.schema(route.body)
    (definition,) = schema["$defs"].values()
    fields = definition["properties"]
    if not fields:
        return "`{}` or none"
    words = []
    for name, node in fields.items():
        needed = "" if name in definition["required"] else " (optional)"
        words.append(f"`{name}`{needed}: {_schema_words(node)}")
    if route.body.min_fields:
        words.append(f"at least {route.body.min_fields} of them")
    return "<br>".join(words)


def _answer(route: Route) -> str:
    if isinstance(route.response, type) and issubclass(route.response, msgspec.Struct):
        return f"`{route.response.__name__}`"
    if route.response is dict:
        return "JSON object"
    return route.content_type.split(";", 1)[0]


def admin_routes() -> str:
    """The routes: method, path, summary, parameters, body, answer, error statuses."""
    paths = document(ROUTES, queues=(), health_open=False)["paths"]
    rows = []
    for route in ROUTES:
        path = route.path or "/"
        statuses = [s for s in paths[path][route.method.lower()]["responses"] if s != "200"]
        params = "<br>".join(
            f"`{param.name}`: {param.kind.describe()}. {param.description}"
            for param in route.params
        )
        rows.append(
            (
                route.method,
                f"`{path}`",
                route.summary,
                params,
                _body(route),
                _answer(route),
                ", ".join(statuses),
            )
        )
    header = ("method", "path", "what", "query parameters", "body", "answers", "errors")
    return _table(header, rows)


# -- the regions ------------------------------------------------------------------------


def regions() -> dict[str, Callable[[], str]]:
    """Each region's name and what writes it."""
    found: dict[str, Callable[[], str]] = {
        "admin-routes": admin_routes,
        "source-metrics": source_metrics,
        "cache-down-policy": policy_table,
    }
    for cls, where in stats_structs().items():
        found[f"stats {cls.__name__}"] = functools.partial(stats_table, cls, where)
    return found


def generated(text: str, writers: dict[str, Callable[[], str]], seen: set[str]) -> str:
    """``text`` with each generated region rewritten; adds the region names to ``seen``."""

    def rewrite(match: re.Match[str]) -> str:
        name = match["name"].strip()
        if name not in writers:
            raise SystemExit(f"unknown generated region {name!r}; known: {sorted(writers)}")
        seen.add(name)
        return f"{match['open']}{writers[name]()}{match['close']}"

    return MARKERS.sub(rewrite, text)


def main() -> int:
    check = "--check" in sys.argv
    writers = regions()
    seen: set[str] = set()
    stale = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        new = generated(text, writers, seen)
        if new == text:
            continue
        name = str(path.relative_to(ROOT))
        if check:
            stale.append(name)
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True), new.splitlines(keepends=True), name, name
                )
            )
        else:
            path.write_text(new)
            print(f"rewrote {name}")
    missing = sorted(set(writers) - seen)
    for name in missing:
        print(f"no region 'generated: {name}' in docs/*.md")
    for name in stale:
        print(f"{name} is out of date: run python tools/gen_docs.py")
    return 1 if stale or missing else 0


if __name__ == "__main__":
    sys.exit(main())
