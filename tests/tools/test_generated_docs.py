"""tools/gen_docs.py: the reference tables of docs/ are generated from the code and current."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.tools._load import ROOT, load_tool


def test_the_generated_docs_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "tools/gen_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"run python tools/gen_docs.py\n{done.stdout}{done.stderr}"


def test_a_stale_region_is_rewritten_and_the_rest_left_alone() -> None:
    tool = load_tool("gen_docs")
    writers = {"here": lambda: "| new |\n"}
    text = "before\n<!-- generated: here -->\n| old |\n<!-- end generated -->\nafter\n"
    seen: set[str] = set()
    assert tool.generated(text, writers, seen) == (
        "before\n<!-- generated: here -->\n| new |\n<!-- end generated -->\nafter\n"
    )
    assert seen == {"here"}
    with pytest.raises(SystemExit, match="unknown generated region 'there'"):
        tool.generated(text.replace("here", "there"), writers, set())


def test_every_stats_field_is_in_a_table_with_its_metric() -> None:
    tool = load_tool("gen_docs")
    from perfkit.cache import CacheStats
    from perfkit.jobs import QueueStats
    from perfkit.queries import PoolStats

    structs = tool.stats_structs()
    cache = tool.stats_table(CacheStats, structs[CacheStats])
    for field in CacheStats.__struct_fields__:
        assert f"| `{field}` |" in cache
    assert "| `hits` | `int` | counter | `perfkit_cache_hits_total` |" in cache
    pool = tool.stats_table(PoolStats, structs[PoolStats])
    assert len(pool.splitlines()) == 2 + len(PoolStats.__struct_fields__)
    opened = "`perfkit_db_pool_connections_opened_total`"
    assert f"| `connections` | `int` | counter | {opened} |" in pool
    queues = tool.stats_table(QueueStats, structs[QueueStats])
    assert "| `waiting` | `int` | gauge | `perfkit_jobs_waiting{queue}` |" in queues
