"""Write the docs' stats field tables from the annotated stats Structs.

Each field of a stats Struct declares its kind and HELP text where it is defined
(``Annotated[int, CounterField("...")]``, :mod:`perfkit._stat_kinds`), and the Prometheus
exporter reads that declaration; this tool reads the same one, so that a new field reaches
the docs without a hand-written row. A table stands in a page between two comments naming
the Struct and the prefix its metrics are exported under::

    <!-- stats-table: perfkit.queries.PoolStats perfkit_db_pool_ -->
    ...
    <!-- /stats-table -->

    python tools/stats_tables.py          # rewrite every table
    python tools/stats_tables.py --check  # exit 1, naming the pages, if a table is stale

Fields without a kind (not exported, such as a pool's ``name``) are left to the page's prose.
"""

from __future__ import annotations

import importlib
import re
import sys
import typing
from pathlib import Path

import msgspec

from perfkit.metrics.collectors import declared_kinds, exported_name

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))

_TABLE = re.compile(
    r"(<!-- stats-table: (?P<struct>[\w.]+) (?P<prefix>\w+) -->\n)(?P<body>.*?)"
    r"(<!-- /stats-table -->)",
    re.DOTALL,
)


def _struct(path: str) -> type[msgspec.Struct]:
    module, _, name = path.rpartition(".")
    found: type[msgspec.Struct] = getattr(importlib.import_module(module), name)
    return found


def table(struct: type[msgspec.Struct], prefix: str) -> str:
    """The Markdown table of ``struct``'s declared fields: name, type, kind, metric, HELP."""
    hints = typing.get_type_hints(struct, include_extras=True)
    lines = ["| field | type | kind | exported as | meaning |", "| --- | --- | --- | --- | --- |"]
    for field, kind in declared_kinds(struct).items():
        python_type = typing.get_args(hints[field])[0].__name__
        metric = exported_name(prefix, field, kind)
        lines.append(f"| `{field}` | {python_type} | {kind.kind} | `{metric}` | {kind.help} |")
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """``text`` with every stats table rewritten from its Struct."""
    return _TABLE.sub(
        lambda m: m[1] + table(_struct(m["struct"]), m["prefix"]) + m[5],
        text,
    )


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    stale = []
    for page in PAGES:
        text = page.read_text()
        rendered = render(text)
        if rendered != text:
            stale.append(page.relative_to(ROOT))
            if not check:
                page.write_text(rendered)
    if check and stale:
        names = ", ".join(map(str, stale))
        print(f"stale stats tables in {names}: run python tools/stats_tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
