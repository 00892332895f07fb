"""The typed surface of the cache, as ``mypy --strict`` sees it in user code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
