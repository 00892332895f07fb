"""Generate every sync twin from its async source by one AST transform.

Modelled on psycopg's ``tools/async_to_sync.py``: the async module is the source of truth; its
tree (comments kept, through ``ast_comments``) is rewritten to the sync API and formatted by
``ruff format``, so that a generated file only changes when its source does.

    python tools/async_to_sync.py          # write every generated twin
    python tools/async_to_sync.py --check  # exit 1, naming the stale files, if one is out of date

What the transform does, for any module listed in ``TWINS``:

- ``async def`` / ``async for`` / ``async with`` (and ``async for`` in a comprehension) become
  ``def`` / ``for`` / ``with``;
  ``await x`` becomes ``x``; ``Awaitable[T]`` and ``Coroutine[Any, Any, T]`` become ``T``;
  ``asyncio.to_thread(f, *args)`` becomes ``f(*args)``.
- Names, attributes, imports and words in docstrings and comments are renamed by ``RENAMES``
  (``AsyncRedisService`` -> ``RedisService``, ``__aenter__`` -> ``__enter__``,
  ``asyncio.sleep`` -> ``time.sleep``, ``redis.asyncio`` -> ``redis`` ...).
- A statement whose first line (a definition's: its header) carries the comment
  ``# async only`` is dropped: an overload for a coroutine-function argument, the async
  service's pipelining. ``if True:  # async only`` is replaced by its ``else:`` branch, the
  sync code (dead in the async module; CPython compiles the test away).
- Imports that the sync code no longer uses are dropped.
- The module docstring is replaced by the twin's own, under a "generated, do not edit" header.
- A module a renamed name needs (``time`` for ``asyncio.sleep``) is imported if it is not.

Tests are twins too (psycopg converts ``tests/pool/*_async.py``): ``tests/**/test_*_async.py``
listed in ``TEST_TWINS`` is the source of the sync test module beside it. On top of the rules
above, ``TEST_RENAMES`` names the async fixtures and helpers' sync counterparts (``acache`` ->
``cache``), a ``pytest.mark.asyncio`` / ``pytest.mark.anyio`` decorator is dropped, and the test
module keeps its own docstring, renamed. A test that is about one twin only (threads,
``auto_pipeline``) is marked ``# async only`` or lives in a hand-written module.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ast_comments

ROOT = Path(__file__).resolve().parent.parent

# One vocabulary for the whole package: the async name on the left, the sync one on the right.
# Dotted names rename an attribute of a module (``asyncio.sleep``) or a module path.
RENAMES: dict[str, str] = {
    "AsyncRedisService": "RedisService",
    "AsyncFlights": "Flights",
    "AsyncWorkers": "Workers",
    "acall_loader": "call_loader",
    "aspawn": "spawn",
    "astop": "stop",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "aclose": "close",
    "asyncio.sleep": "time.sleep",
    "redis.asyncio": "redis",
    "StopAsyncIteration": "StopIteration",
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "AsyncGenerator": "Generator",
    "AsyncConnection": "Connection",
    "AsyncCursor": "Cursor",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncServerCursor": "ServerCursor",
    "AsyncClientCursor": "ClientCursor",
    "asynccontextmanager": "contextmanager",
    "AbstractAsyncContextManager": "AbstractContextManager",
    "AsyncTimedPool": "TimedPool",
    "_AsyncWatchedPool": "_WatchedPool",
    "_AsyncCheckout": "_Checkout",
    "AsyncTimedCursor": "TimedCursor",
    "AsyncTimedServerCursor": "TimedServerCursor",
    "AsyncCopy": "Copy",
    "AsyncWriter": "Writer",
    "anext": "next",
    "AsyncKeysetPagination": "KeysetPagination",
    "AsyncOffsetPagination": "OffsetPagination",
    "AsyncExplainer": "Explainer",
    "perfkit.queries._explain_async": "perfkit.queries._explain",
}

# The tests' own vocabulary, on top of RENAMES: fixtures and helpers of tests/**/conftest.py.
TEST_RENAMES: dict[str, str] = {
    "acache": "cache",
    "aeventually": "eventually",
    "areads": "reads",
    "apool": "pool",
    "async_wait_until": "wait_until",
}

# Markers that make pytest run a coroutine function: a sync test has none to run.
_ASYNC_MARKERS = {"pytest.mark.asyncio", "pytest.mark.anyio"}

# Marks a statement that has no sync counterpart (dropped), or an `if True:` whose `else:`
# holds the sync code.
_ASYNC_ONLY = re.compile(r"#\s*async only\b")
# Keywords in code quoted by docstrings (``async with pool:``, ``await pool.open()``).
_ASYNC_WORDS = re.compile(r"(?<=``)(?:async (?=with|for|def)|await )")


@dataclass(frozen=True)
class Twin:
    """One generated module: its async source, its sync target and the target's docstring
    (None: the source's, renamed)."""

    source: str
    target: str
    docstring: str | None = None
    renames: dict[str, str] = field(default_factory=dict)


TWINS = [
    Twin(
        source="src/perfkit/cache/_aio.py",
        target="src/perfkit/cache/_sync.py",
        docstring="RedisService: the cache on redis-py (sync).",
    ),
    Twin(
        source="src/perfkit/contrib/django/_ops_async.py",
        target="src/perfkit/contrib/django/_ops.py",
        docstring=(
            "BackendOps: Django's cache operations on a RedisService, for PerfkitCache's "
            "sync methods.\n"
        ),
        renames={"AsyncBackendOps": "BackendOps"},
    ),
    Twin(
        source="src/perfkit/queries/_pool_async.py",
        target="src/perfkit/queries/_pool.py",
        docstring=(
            "TimedPool: psycopg_pool's ConnectionPool whose every statement is timed.\n\n"
            "What needs no I/O lives in ``_pool_base.py``.\n"
        ),
    ),
    Twin(
        source="src/perfkit/queries/_cursor_async.py",
        target="src/perfkit/queries/_cursor.py",
        docstring=(
            "TimedCursor and TimedServerCursor: psycopg's cursors, every statement timed.\n\n"
            "How a statement is timed lives in ``_cursor_base.py``.\n"
        ),
    ),
    Twin(
        source="src/perfkit/jobs/_gate_async.py",
        target="src/perfkit/jobs/_gate.py",
        docstring=(
            "The limits' Redis calls for a worker on redis-py: take, extend and free a job's "
            "slots.\n\nThe scripts and what needs no I/O are in :mod:`perfkit.jobs.limits`.\n"
        ),
    ),
    Twin(
        source="src/perfkit/queries/_explain_async.py",
        target="src/perfkit/queries/_explain.py",
        docstring=(
            "Explainer: a pool's EXPLAINs in a thread, one at a time, on a connection of "
            "its own.\n\nWhich statements are explained lives in ``_explain_base.py``.\n"
        ),
    ),
    Twin(
        source="src/perfkit/queries/_pagination_async.py",
        target="src/perfkit/queries/_pagination.py",
        docstring=(
            "KeysetPagination and OffsetPagination: pages fetched on psycopg's Connection.\n\n"
            "The statements and pages are built in ``_pagination_base.py``.\n"
        ),
    ),
]


def _test_twin(source: str) -> Twin:
    """A test module ``tests/.../test_x_async.py``, the source of ``tests/.../test_x.py``."""
    return Twin(source=source, target=source.replace("_async.py", ".py"), renames=TEST_RENAMES)


TEST_TWINS = [
    _test_twin("tests/cache/test_service_async.py"),
    _test_twin("tests/cache/test_tags_async.py"),
    _test_twin("tests/cache/test_fallback_async.py"),
    _test_twin("tests/cache/test_hit_path_async.py"),
    _test_twin("tests/cache/test_values_async.py"),
    _test_twin("tests/cache/test_decorator_async.py"),
    _test_twin("tests/cache/test_l1_async.py"),
    _test_twin("tests/cache/test_hostile_async.py"),
    _test_twin("tests/cache/test_cluster_async.py"),
    _test_twin("tests/queries/test_pool_async.py"),
    _test_twin("tests/queries/test_pagination_async.py"),
    _test_twin("tests/queries/test_explain_async.py"),
    _test_twin("tests/queries/test_retry_async.py"),
    _test_twin("tests/queries/test_bounded_waits_async.py"),
]


class AsyncToSync(ast.NodeTransformer):
    """Rewrite an async module's tree into its sync twin's."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames
        self.words = re.compile(
            r"\b(" + "|".join(re.escape(k) for k in sorted(renames, key=len, reverse=True)) + r")\b"
        )
        self.modules: set[str] = set()  # modules that renamed dotted names refer to

    def rename_text(self, text: str) -> str:
        """Rename the async words in free text (docstrings, comments)."""
        text = self.words.sub(lambda m: self.renames[m.group(1)], text)
        return _ASYNC_WORDS.sub("", text)

    # Async constructs.

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self.visit_FunctionDef(ast.FunctionDef(**_fields(node)))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.renames.get(node.name, node.name)
        node.decorator_list = [
            d
            for d in node.decorator_list
            if _dotted(d.func if isinstance(d, ast.Call) else d) not in _ASYNC_MARKERS
        ]
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.renames.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        return self.visit(ast.For(**_fields(node)))

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        return self.visit(ast.With(**_fields(node)))

    def visit_With(self, node: ast.With) -> ast.AST:
        self.generic_visit(node)
        # `with a:` around `async with b:` (one statement cannot mix them) is `with a, b:`.
        inner = node.body[0] if len(node.body) == 1 else None
        if isinstance(inner, ast.With):
            node.items += inner.items
            node.body = inner.body
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node.is_async = 0  # [x async for x in y] -> [x for x in y]
        self.generic_visit(node)
        return node

    def visit_Await(self, node: ast.Await) -> ast.AST:
        return self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # asyncio.to_thread(f, *args) -> f(*args): the sync twin is on a thread already.
        if _dotted(node.func) == "asyncio.to_thread" and node.args:
            function, *args = node.args
            return self.visit(ast.Call(function, args, node.keywords))
        self.generic_visit(node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        # Awaitable[T] -> T; Coroutine[Any, Any, T] -> T.
        name = _dotted(node.value)
        if name in ("Awaitable", "typing.Awaitable", "collections.abc.Awaitable"):
            return self.visit(node.slice)
        if (
            name in ("Coroutine", "typing.Coroutine", "collections.abc.Coroutine")
            and isinstance(node.slice, ast.Tuple)
            and len(node.slice.elts) == 3
        ):
            return self.visit(node.slice.elts[2])
        self.generic_visit(node)
        return node

    # Names.

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.renames.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        dotted = _dotted(node)
        if dotted is not None and dotted in self.renames:
            new = self.renames[dotted]
            self.modules.add(new.split(".")[0])
            return ast.copy_location(_parse_expr(new), node)
        self.generic_visit(node)
        node.attr = self.renames.get(node.attr, node.attr)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.renames.get(node.arg, node.arg)
        self.generic_visit(node)
        return node

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        if node.arg is not None:
            node.arg = self.renames.get(node.arg, node.arg)
        self.generic_visit(node)
        return node

    def visit_alias(self, node: ast.alias) -> ast.AST:
        node.name = self.renames.get(node.name, node.name)
        if node.asname is not None:
            node.asname = self.renames.get(node.asname, node.asname)
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        if node.module is not None:
            node.module = self.renames.get(node.module, node.module)
        self.generic_visit(node)
        return node

    # Text.

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):
            node.value = self.rename_text(node.value)
        return node

    def visit_Comment(self, node: Any) -> Any:
        if node.value.startswith("# noqa: ASYNC"):  # flake8-async's rules: none in sync code
            return None
        node.value = self.rename_text(node.value)
        return node


def _fields(node: ast.AST) -> dict[str, Any]:
    return {name: getattr(node, name) for name in (*node._fields, *node._attributes)}


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _parse_expr(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def drop_async_only(tree: ast.Module, source: str) -> None:
    """Remove each statement marked ``# async only``; one that is ``if True:  # async only``
    is replaced by its ``else:`` branch (the sync code, dead in the async module)."""
    lines = source.splitlines()
    marked: dict[int, ast.stmt] = {}  # first line -> the marked statement
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not _is_comment(node):
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            header = lines[first - 1 : _header_end(node, lines)]
            if any(_ASYNC_ONLY.search(line) for line in header):
                marked[first] = node

    def sync(stmt: ast.stmt) -> list[ast.stmt]:
        if any(stmt is node for node in marked.values()):
            return stmt.orelse if isinstance(stmt, ast.If) else []
        if _is_comment(stmt) and any(
            node.lineno <= stmt.lineno <= (node.end_lineno or node.lineno)
            for node in marked.values()
        ):
            return []  # a comment ast_comments put beside a dropped statement
        return [stmt]

    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                setattr(node, name, [new for stmt in body for new in sync(stmt)])


def _is_comment(node: ast.AST) -> bool:
    return type(node).__name__ == "Comment"


def _header_end(node: ast.stmt, lines: list[str]) -> int:
    """The last line of a statement's header (``def ...:``, ``if ...:``), or of the whole
    statement if it has no body."""
    body = getattr(node, "body", None)
    if not (isinstance(body, list) and body):
        return node.end_lineno or node.lineno
    first = body[0]
    own_line = not lines[first.lineno - 1][: first.col_offset].strip()
    return first.lineno - 1 if own_line else first.lineno  # `def f(): ...` on one line


def drop_unused_imports(before: set[str], tree: ast.Module) -> None:
    """Remove the imported names the sync code no longer uses (they were used in the async)."""
    used = _used_names(tree)

    def wanted(alias: ast.alias) -> bool:
        bound = alias.asname or alias.name.split(".")[0]
        return bound in used or bound not in before

    body: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom) and not (
            isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"
        ):
            stmt.names = [alias for alias in stmt.names if wanted(alias)]
            if not stmt.names:
                continue
            # The same module imported twice after renaming (``redis`` and ``redis.asyncio``).
            if isinstance(stmt, ast.Import) and any(
                isinstance(prev, ast.Import) and ast.dump(prev) == ast.dump(stmt) for prev in body
            ):
                continue
        body.append(stmt)
    tree.body = body


def add_missing_imports(modules: set[str], tree: ast.Module) -> None:
    """Import each module a renamed name refers to (``time`` for ``time.sleep``) if it is not
    bound yet; ruff sorts the import in."""
    bound = {
        alias.asname or alias.name.split(".")[0]
        for stmt in tree.body
        if isinstance(stmt, ast.Import | ast.ImportFrom)
        for alias in stmt.names
    }
    used = _used_names(tree)
    missing = sorted(name for name in modules if name in used and name not in bound)
    if missing:
        tree.body.insert(_first_import(tree), ast.Import([ast.alias(n) for n in missing]))


def _first_import(tree: ast.Module) -> int:
    """Where an import may go: after the docstring and ``from __future__`` imports."""
    for index, stmt in enumerate(tree.body):
        docstring = index == 0 and isinstance(stmt, ast.Expr)
        future = isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"
        if not (docstring or future or _is_comment(stmt)):
            return index
    return len(tree.body)


def _used_names(tree: ast.AST) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
    return used


def generate(twin: Twin) -> str:
    """The sync module's text, formatted, for one twin."""
    return to_sync(
        (ROOT / twin.source).read_text(),
        source_name=Path(twin.source).name,
        target=twin.target,
        docstring=twin.docstring,
        renames=twin.renames,
    )


def to_sync(
    source: str,
    *,
    source_name: str,
    target: str,
    docstring: str | None,
    renames: dict[str, str],
) -> str:
    """The sync twin of the async module text ``source``, formatted for ``target``."""
    tree = ast_comments.parse(source)
    before = _used_names(tree)
    drop_async_only(tree, source)
    transform = AsyncToSync({**RENAMES, **renames})
    tree = transform.visit(tree)
    drop_unused_imports(before, tree)
    add_missing_imports(transform.modules, tree)
    if docstring is not None:
        first = tree.body[0] if tree.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            first.value.value = docstring
        else:
            tree.body.insert(0, ast.Expr(ast.Constant(docstring)))
    header = f"# Generated from {source_name} by tools/async_to_sync.py: do not edit.\n"
    text = header + ast_comments.unparse(tree) + "\n"
    # Imports sorted, the parentheses ast.unparse adds removed, then formatted as `ruff format`
    # would: the project's own ruff settings, so that the check is stable.
    text = _ruff(text, target, "check", "--fix-only", "--select", "I001,UP034", "--quiet")
    return _ruff(text, target, "format")


def _ruff(text: str, target: str, *command: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own interpreter and file)
        [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(ROOT / target), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for twin in [*TWINS, *TEST_TWINS]:
        text = generate(twin)
        target = ROOT / twin.target
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(twin.target)
        else:
            target.write_text(text)
    for name in stale:
        print(f"{name} is out of date: run python tools/async_to_sync.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
