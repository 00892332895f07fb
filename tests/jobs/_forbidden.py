"""Functions no test worker allows (not ``--import``-ed, not ``--allow``-ed): a forged job
or callback naming one must never import this module nor call them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Importing this module at all is a door opened: it leaves a mark where the test asks.
_MARK = os.environ.get("PERFKIT_TEST_FORBIDDEN_MARK")
if _MARK:
    Path(_MARK).with_suffix(".imported").touch()


def touch(*args: Any, **kwargs: Any) -> None:
    """Leave the called mark (any signature: a job, a callback of any kind)."""
    if _MARK:
        Path(_MARK).with_suffix(".called").touch()
