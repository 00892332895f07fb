"""Generate the sync cache service from the async one (like psycopg's tools/async_to_sync.py).

python tools/async_to_sync.py          # write src/perfkit/cache/_sync.py
python tools/async_to_sync.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src/perfkit/cache/_aio.py"
TARGET = ROOT / "src/perfkit/cache/_sync.py"

HEADER = (
    "# Generated from _aio.py by tools/async_to_sync.py: do not edit, edit _aio.py and rerun.\n"
)

# Applied in order, as regular expressions.
REPLACEMENTS = [
    (
        r'^"""AsyncRedisService: the cache on redis.asyncio.*?"""',
        '"""RedisService: the cache on redis-py (sync)."""',
    ),
    (r"\bimport redis\.asyncio as driver\b", "import redis as driver"),
    (r"^import asyncio\n", ""),
    (r"\bAsyncRedisService\b", "RedisService"),
    (r"\bAsyncFlights\b", "Flights"),
    # Automatic pipelining is async only: threads each send their own MGET.
    (r"^from perfkit\.cache\._batch import AsyncBatcher\n", ""),
    (r"^        self\._batcher = AsyncBatcher\(.*?\)\n", ""),
    (
        r"return self\._batcher\.mget\(keys\)",
        'return self._client.execute_command("MGET", *keys)  # type: ignore[no-any-return]',
    ),
    (r"\bacall_loader\b", "call_loader"),
    (r"\baspawn\b", "spawn"),
    (r"\bastop\b", "stop"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    # An overload for coroutine-function arguments has no sync counterpart.
    (r"^    @overload\n    async def \w+\(  # async only\b.*?\) -> \w+: \.\.\.\n\n", ""),
    (r"\basync def __aenter__\b", "def __enter__"),
    (r"\basync def __aexit__\b", "def __exit__"),
    (r"\.aclose\(\)", ".close()"),
    (r"\basync (def|for|with)\b", r"\1"),
    (r"\bawait ", ""),
    # A function returning an awaitable (to save a coroutine frame) returns the value.
    (r"-> Awaitable\[([^\n]*)\]:$", r"-> \1:"),
    (r"\bAwaitable, ", ""),
]


def generate() -> str:
    text = SOURCE.read_text()
    for pattern, replacement in REPLACEMENTS:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE | re.DOTALL)
    # Formatted as `ruff format` would, so that the check is stable.
    formatted = subprocess.run(  # noqa: S603 (our own interpreter and file)
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(TARGET), "-"],
        input=HEADER + text,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> int:
    text = generate()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python tools/async_to_sync.py")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
