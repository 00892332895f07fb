"""Print pip constraints that pin each core dependency to the lower bound pyproject declares.

CI installs ``-e '.[dev]'`` with these constraints, so the suite runs on the oldest releases a
user may have (the "lowest" set of .ci/run): a floor in pyproject.toml is a tested claim.

    python tools/lowest_constraints.py > lowest.txt
    pip install -c lowest.txt -e '.[dev]'

Only ``[project].dependencies`` are pinned (what a user's install resolves); the dev tools
(pytest, the frameworks the integrations are tested with) come as resolved.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name[extras]>=version, optionally followed by more specifiers (",<9") and a marker.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def lowest(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``name==floor`` for every core dependency; a dependency without a floor is an error."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"pyproject.toml: {requirement!r} declares no lower bound (>=)")
        pins.append(f"{match[1]}=={match[3]}")
    return pins


def main() -> None:
    sys.stdout.write("".join(pin + "\n" for pin in lowest()))


if __name__ == "__main__":
    main()
