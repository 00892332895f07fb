"""Query plans as perfkit keeps them: bounded trees with no values in them.

``EXPLAIN (FORMAT JSON, VERBOSE)`` output is read into a :class:`QueryPlan`: a tree of at
most ``max_nodes`` :class:`PlanNode` s keeping the node type, the relation, the index, the
costs and rows, and the filter and condition expressions with every literal replaced by
``?`` (the planner writes the statement's parameter values into them: they are scrubbed
here, before anything is kept). The node that costs the most by itself is marked.

Also here, without I/O: which statements may be EXPLAINed, and which of them only read
(:func:`statement_kind`), and what a plan says about missing indexes (:func:`seq_scans`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from hashlib import blake2b
from typing import Any, Literal

import msgspec

from perfkit.queries._fingerprint import _KEYWORDS, Fingerprint, _tokens, normalize_sql

__all__ = [
    "PlanNode",
    "QueryPlan",
    "SeqScan",
    "merge_plans",
    "parse_plan",
    "seq_scans",
    "statement_kind",
]

# Longest expression kept on a node (a filter over many columns is cut, marked with …).
MAX_EXPRESSION = 300

# The plan keys whose text is a condition of the node (parameter values scrubbed).
_CONDITIONS = ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter")


class PlanNode(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One node of a plan. Costs in the planner's units; ``self_cost`` is the node's own
    (its total less its children's); ``actual_ms`` is over all loops (ANALYZE only)."""

    node: str
    cost: float
    self_cost: float
    rows: float
    relation: str | None = None
    index: str | None = None
    join: str | None = None
    filter: str | None = None
    condition: str | None = None
    table_rows: int | None = None
    actual_ms: float | None = None
    actual_rows: float | None = None
    rows_removed: float | None = None
    costliest: bool = False
    children: list[PlanNode] = []


class QueryPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The plan captured for one statement fingerprint (never its parameter values).

    ``shape`` hashes the node types, relations and indexes of the whole plan: it changes
    when the plan does. ``captured_at`` is Unix time; ``duration_ms`` the slow run that
    asked for it; ``captures`` how many EXPLAINs of the fingerprint this process made,
    ``shape_changes`` how many of them found another shape than the one before.
    """

    fingerprint: str
    fingerprint_id: str
    shape: str
    analyzed: bool
    captured_at: float
    duration_ms: float
    total_cost: float
    nodes: int
    truncated: int
    captures: int
    shape_changes: int
    root: PlanNode


class SeqScan(msgspec.Struct, frozen=True):
    """A sequential scan of ``relation`` (``table_rows`` rows) filtering on ``columns``."""

    fingerprint_id: str
    relation: str
    table_rows: int
    columns: list[str]


# -- which statements ------------------------------------------------------------------------

StatementKind = Literal["read", "write"]

# The statements EXPLAIN takes, by their first word.
_EXPLAINABLE = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE"})
# Words that make a statement more than a read, wherever they appear: data-modifying CTEs,
# SELECT INTO, row locks (FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR KEY SHARE).
_WRITE_WORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "INTO", "SHARE", "LOCK", "COPY", "CALL", "DO",
        "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "SET", "EXECUTE", "PREPARE",
        "NOTIFY", "LISTEN", "VACUUM", "ANALYZE", "REFRESH", "NOWAIT",
    }
)  # fmt: skip
# Functions known not to write; a call of any other (a user's function may write, and
# nextval, setval, pg_advisory_lock... do) keeps a statement from being ANALYZEd.
_PURE_FUNCTIONS = frozenset(
    {
        "abs", "array_agg", "array_length", "avg", "bool_and", "bool_or", "cardinality", "ceil",
        "ceiling", "char_length", "coalesce", "concat", "concat_ws", "count", "date_part",
        "date_trunc", "dense_rank", "extract", "first_value", "floor", "greatest", "json_agg",
        "json_build_object", "jsonb_agg", "jsonb_build_object", "lag", "last_value", "lead",
        "least", "left", "length", "lower", "ltrim", "max", "md5", "min", "now", "nullif",
        "position", "rank", "replace", "right", "round", "row_number", "rtrim", "string_agg",
        "substr", "substring", "sum", "to_char", "trim", "unnest", "upper",
    }
)  # fmt: skip


def statement_kind(sql: str | bytes) -> StatementKind | None:
    """``"read"`` when ``sql`` is one plain query that cannot write, so that running it
    under EXPLAIN ANALYZE is safe; ``"write"`` for any other statement EXPLAIN takes;
    ``None`` for what it does not take (or several statements, or an EXPLAIN already).

    Conservative, from the statement's words (literals and comments excluded): any word of
    a write, a row lock, or a call of a function not known to be pure makes a ``"write"``.
    """
    pieces = _tokens(sql.decode("utf-8", "replace") if isinstance(sql, bytes) else sql)
    while pieces and pieces[-1] == ";":
        pieces.pop()
    start = 0
    while start < len(pieces) and pieces[start] == "(":
        start += 1
    if start == len(pieces) or ";" in pieces:
        return None
    if pieces[start].upper() not in _EXPLAINABLE:
        return None
    for index, piece in enumerate(pieces):
        word = piece.upper()
        if word in _WRITE_WORDS:
            return "write"
        called = index + 1 < len(pieces) and pieces[index + 1] == "("
        if called and piece not in _KEYWORDS and piece[:1].isalpha():
            qualified = index > 0 and pieces[index - 1] == "."
            if qualified or piece.lower() not in _PURE_FUNCTIONS:
                return "write"
        if piece.startswith('"') and called:  # a quoted function name: unknown
            return "write"
    return "read"


# -- reading a plan --------------------------------------------------------------------------


def _scrubbed(expression: Any) -> str | None:
    """An EXPLAIN expression with its literals (the parameter values) replaced by ``?``."""
    if not isinstance(expression, str) or not expression:
        return None
    text = normalize_sql(expression)
    return text if len(text) <= MAX_EXPRESSION else text[: MAX_EXPRESSION - 1] + "…"


def _relation(raw: dict[str, Any]) -> str | None:
    name = raw.get("Relation Name")
    if not isinstance(name, str):
        return None
    schema = raw.get("Schema")
    return f"{schema}.{name}" if isinstance(schema, str) else name


def _number(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    return float(value) if isinstance(value, int | float) else None


def _children(raw: dict[str, Any]) -> list[dict[str, Any]]:
    found = raw.get("Plans")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _walk(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield raw
    for child in _children(raw):
        yield from _walk(child)


def _shape(raw: dict[str, Any]) -> str:
    """A hash of the plan's node types, relations and indexes, in tree order."""
    digest = blake2b(digest_size=8)
    for node in _walk(raw):
        for key in ("Node Type", "Relation Name", "Index Name", "Join Type"):
            digest.update(str(node.get(key, "")).encode() + b"\x00")
        digest.update(b"\x01" if _children(node) else b"\x02")
    return digest.hexdigest()


class _Reader:
    """Builds the bounded tree, counting nodes kept and left out."""

    def __init__(self, max_nodes: int, table_rows: dict[str, int]) -> None:
        self.left = max_nodes
        self.kept = self.dropped = 0
        self.table_rows = table_rows

    def node(self, raw: dict[str, Any]) -> PlanNode:
        self.left -= 1
        self.kept += 1
        kids = _children(raw)
        children = []
        for child in kids:
            if self.left <= 0:
                self.dropped += sum(1 for _ in _walk(child))
                continue
            children.append(self.node(child))
        cost = _number(raw, "Total Cost") or 0.0
        loops = _number(raw, "Actual Loops")
        actual = _number(raw, "Actual Total Time")
        actual_ms = actual * loops if actual is not None and loops is not None else None
        relation = _relation(raw)
        condition = next((raw[k] for k in _CONDITIONS if k in raw), None)
        rows_removed = _number(raw, "Rows Removed by Filter")
        return PlanNode(
            node=str(raw.get("Node Type", "?")),
            cost=cost,
            self_cost=max(cost - sum(_number(k, "Total Cost") or 0.0 for k in kids), 0.0),
            rows=_number(raw, "Plan Rows") or 0.0,
            relation=relation,
            index=raw.get("Index Name") if isinstance(raw.get("Index Name"), str) else None,
            join=raw.get("Join Type") if isinstance(raw.get("Join Type"), str) else None,
            filter=_scrubbed(raw.get("Filter")),
            condition=_scrubbed(condition),
            table_rows=self.table_rows.get(relation) if relation is not None else None,
            actual_ms=actual_ms,
            actual_rows=_number(raw, "Actual Rows"),
            rows_removed=rows_removed,
            children=children,
        )


def _own(node: PlanNode) -> float:
    """What a node costs by itself: its own time when analyzed, else its own cost."""
    if node.actual_ms is None:
        return node.self_cost
    return max(node.actual_ms - sum(c.actual_ms or 0.0 for c in node.children), 0.0)


def _nodes(node: PlanNode) -> Iterator[PlanNode]:
    yield node
    for child in node.children:
        yield from _nodes(child)


def _marked(node: PlanNode, costliest: PlanNode) -> PlanNode:
    children = [_marked(c, costliest) for c in node.children]
    return msgspec.structs.replace(node, costliest=node is costliest, children=children)


def relations(document: Any) -> list[str]:
    """The relations an EXPLAIN document scans sequentially (``schema.name``)."""
    root = _root(document)
    if root is None:
        return []
    found = (_relation(n) for n in _walk(root) if n.get("Node Type") == "Seq Scan")
    return list(dict.fromkeys(r for r in found if r is not None))


def _root(document: Any) -> dict[str, Any] | None:
    """The top plan node of ``EXPLAIN (FORMAT JSON)`` output (a one-element list)."""
    top = document[0] if isinstance(document, list) and document else document
    plan = top.get("Plan") if isinstance(top, dict) else None
    return plan if isinstance(plan, dict) else None


def parse_plan(
    document: Any,
    *,
    fingerprint: Fingerprint,
    analyzed: bool,
    captured_at: float,
    duration_ms: float,
    max_nodes: int,
    table_rows: dict[str, int] | None = None,
    previous: QueryPlan | None = None,
) -> QueryPlan | None:
    """The :class:`QueryPlan` of EXPLAIN JSON ``document`` (``None`` if it has no plan);
    ``table_rows`` maps relations to their size, ``previous`` is the plan it replaces."""
    raw = _root(document)
    if raw is None:
        return None
    reader = _Reader(max(max_nodes, 1), table_rows or {})
    root = reader.node(raw)
    root = _marked(root, max(_nodes(root), key=_own))
    shape = _shape(raw)
    changed = previous is not None and previous.shape != shape
    return QueryPlan(
        fingerprint=fingerprint.text,
        fingerprint_id=fingerprint.id,
        shape=shape,
        analyzed=analyzed,
        captured_at=captured_at,
        duration_ms=duration_ms,
        total_cost=root.cost,
        nodes=reader.kept,
        truncated=reader.dropped,
        captures=(previous.captures if previous is not None else 0) + 1,
        shape_changes=(previous.shape_changes if previous is not None else 0) + changed,
        root=root,
    )


def merge_plans(plans: Iterable[QueryPlan], limit: int) -> list[QueryPlan]:
    """One plan per fingerprint id (the newest capture), the ``limit`` newest."""
    newest: dict[str, QueryPlan] = {}
    for plan in plans:
        found = newest.get(plan.fingerprint_id)
        if found is None or plan.captured_at > found.captured_at:
            newest[plan.fingerprint_id] = plan
    ordered = sorted(newest.values(), key=lambda p: p.captured_at, reverse=True)
    return ordered[:limit]


# -- what a plan says ------------------------------------------------------------------------

# Words of a scrubbed filter that are not columns.
_NOT_COLUMNS = frozenset({"?", "AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "ANY"})


def filter_columns(expression: str) -> list[str]:
    """The columns a (scrubbed) filter expression reads, in order, without repeats: its
    identifiers, less function names, types after ``::`` and keywords."""
    pieces = _tokens(expression)
    found: list[str] = []
    for index, piece in enumerate(pieces):
        if piece in _KEYWORDS or piece.upper() in _NOT_COLUMNS:
            continue
        if not (piece[:1].isalpha() or piece[:1] in '_"'):
            continue
        if index > 0 and pieces[index - 1] == "::":
            continue  # a type
        if index + 1 < len(pieces) and pieces[index + 1] in ("(", "."):
            continue  # a function, or the table of a qualified column
        found.append(piece)
    return list(dict.fromkeys(found))


def seq_scans(plans: Iterable[QueryPlan], min_rows: int) -> list[SeqScan]:
    """The filtered sequential scans of tables of at least ``min_rows`` rows, biggest
    first, one per relation and column list."""
    found: dict[tuple[str, tuple[str, ...]], SeqScan] = {}
    for plan in plans:
        for node in _nodes(plan.root):
            if node.node != "Seq Scan" or node.relation is None or node.filter is None:
                continue
            rows = node.table_rows
            if rows is None or rows < min_rows:
                continue
            columns = filter_columns(node.filter)
            if columns:
                scan = SeqScan(plan.fingerprint_id, node.relation, rows, columns)
                found.setdefault((node.relation, tuple(columns)), scan)
    return sorted(found.values(), key=lambda s: s.table_rows, reverse=True)
