"""tools/async_to_sync.py: the one AST transform that generates every sync twin."""

from __future__ import annotations

import subprocess
import sys

from tests.tools._load import ROOT, load_tool

SOURCE = '''"""AsyncThing: the async source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import overload

import redis.asyncio as driver


class AsyncThing:
    """An AsyncThing wraps a driver.Redis."""

    async def __aenter__(self) -> AsyncThing:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        # Close the AsyncThing's client.
        await asyncio.sleep(0)

    @overload
    async def load(self, loader: Callable[[], Awaitable[int]]) -> int: ...  # async only

    @overload
    async def load(self, loader: Callable[[], int]) -> int: ...

    async def load(self, loader: Callable[[], object]) -> int:
        async with self as thing:
            async for row in thing.rows():
                return await self.one(row)
        with open(__file__):
            async with self:
                pass
        return 0

    def one(self, row: int) -> Awaitable[int]:
        self.batched = True  # async only
        if True:  # async only: the sync twin counts directly
            return self.count(row)
        else:
            return row + 1

    async def count(self, row: int) -> int:
        return row + int(time.time() > 0)

    async def rows(self) -> AsyncIterator[int]:
        yield 1
'''


def test_every_async_construct_becomes_its_sync_counterpart() -> None:
    text = load_tool("async_to_sync").to_sync(
        SOURCE,
        source_name="_thing_async.py",
        target="src/perfkit/_thing.py",
        docstring="Thing: the sync twin.",
        renames={"AsyncThing": "Thing"},
    )
    assert text.startswith(
        "# Generated from _thing_async.py by tools/async_to_sync.py: do not edit.\n"
    )
    assert '"""Thing: the sync twin."""' in text
    for gone in ("async ", "await ", "asyncio", "Awaitable", "AsyncIterator", "aclose", "__a"):
        assert gone not in text, gone
    assert "import redis as driver" in text
    assert "def __enter__(self) -> Thing:" in text
    assert "def __exit__(self, *exc: object) -> None:\n        self.close()" in text
    assert "time.sleep(0)" in text
    assert "with self as thing:\n            for row in thing.rows():" in text
    assert "return self.one(row)" in text
    assert "with open(__file__), self:\n            pass" in text
    assert "def one(self, row: int) -> int:\n        return row + 1\n" in text
    assert "batched" not in text
    assert "def rows(self) -> Iterator[int]:" in text
    # Comments and docstrings follow the renames; the async-only overload is dropped.
    assert "# Close the Thing's client." in text
    assert '"""An Thing wraps a driver.Redis."""' in text
    assert text.count("@overload") == 1
    # The result is valid, formatted Python.
    compile(text, "_thing.py", "exec")


def test_every_generated_twin_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/async_to_sync.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


TEST_SOURCE = '''"""AsyncRedisService's tests."""

from __future__ import annotations

import asyncio

import pytest

from tests.cache.conftest import aeventually


@pytest.mark.asyncio
@pytest.mark.parametrize("n", [1, 2])
async def test_sleeps(acache: object, n: int) -> None:
    async def ready() -> bool:
        return True

    await asyncio.sleep(n)
    await aeventually(ready)


@pytest.mark.anyio(backend="asyncio")
async def test_only_async(acache: object) -> None:  # async only
    await asyncio.sleep(0)
'''


def test_a_test_module_becomes_its_sync_twin() -> None:
    tool = load_tool("async_to_sync")
    text = tool.to_sync(
        TEST_SOURCE,
        source_name="test_thing_async.py",
        target="tests/test_thing.py",
        docstring=None,
        renames=tool.TEST_RENAMES,
    )
    # The test module keeps its own docstring; the async markers and the async-only test go.
    assert '"""RedisService\'s tests."""' in text
    assert "asyncio" not in text and "anyio" not in text and "only_async" not in text
    assert '@pytest.mark.parametrize("n", [1, 2])\ndef test_sleeps(cache: object, n: int)' in text
    # asyncio.sleep is time.sleep, and `time` is imported for it; the helpers are renamed.
    assert "import time\n" in text and "time.sleep(n)" in text
    assert "from tests.cache.conftest import eventually\n" in text
    assert "eventually(ready)" in text
    compile(text, "test_thing.py", "exec")
