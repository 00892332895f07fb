"""tools/stats_tables.py: the docs' stats field tables are written from the annotated Structs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from perfkit.queries import PoolStats

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stats_tables", ROOT / "tools/stats_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stats_tables"] = module
    spec.loader.exec_module(module)
    return module


def test_the_docs_tables_are_current() -> None:
    tool = _tool()
    stale = [page.name for page in tool.PAGES if tool.render(page.read_text()) != page.read_text()]
    assert stale == [], "run python tools/stats_tables.py"


def test_a_table_has_a_row_per_declared_field_with_its_metric() -> None:
    rows = _tool().table(PoolStats, "perfkit_db_pool_").splitlines()[2:]
    assert len(rows) == len(PoolStats.__struct_fields__) - 1  # all but the pool's name
    assert (
        "| `connections` | int | counter | `perfkit_db_pool_connections_opened_total` "
        "| Connections opened. |"
    ) in rows


def test_a_stale_table_is_rewritten() -> None:
    tool = _tool()
    page = "<!-- stats-table: perfkit.queries.PoolStats perfkit_db_pool_ -->\nold\n"
    page += "<!-- /stats-table -->\n"
    assert tool.render(page) == page.replace("old\n", tool.table(PoolStats, "perfkit_db_pool_"))
