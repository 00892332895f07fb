"""The typed surface of the cache, as ``mypy --strict`` sees it in user code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from perfkit.cache import RedisService, cached_query

USER_CODE = Path(__file__).parent / "typing" / "user_code.py"


@pytest.mark.slow
def test_mypy_strict_accepts_typed_user_code_and_rejects_its_mistakes(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path),
            str(USER_CODE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    reported = {
        int(match[1])
        for match in re.finditer(r"^[^:\n]+:(\d+): error:", result.stdout, re.MULTILINE)
    }
    expected = {
        number
        for number, line in enumerate(USER_CODE.read_text().splitlines(), start=1)
        if "# E:" in line
    }
    # Every line marked as a mistake is flagged, and nothing else is.
    assert expected, "the user code marks no mistakes"
    assert reported == expected, result.stdout


def test_a_methods_helpers_work_through_the_class(cache: RedisService) -> None:
    # What the typed surface promises for methods (user_code.py): bound calls, and the
    # helpers through the class with the instance first.
    calls: list[int] = []

    class Repository:
        @cached_query(ttl=60, cache=cache)
        def find(self, product_id: int) -> int:
            calls.append(product_id)
            return product_id * 10

    repo = Repository()
    assert repo.find(1) == 10
    assert repo.find(1) == 10
    Repository.find.invalidate(repo, 1)
    assert repo.find(1) == 10
    assert calls == [1, 1]
    assert Repository.find.cache_key(repo, 1) == Repository.find.cache_key(Repository(), 1)
