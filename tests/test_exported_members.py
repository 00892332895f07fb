"""Each package's ``__all__`` lists exactly the public names it exports, sorted."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "perfkit",
    "perfkit.cache",
    "perfkit.queries",
    "perfkit.jobs",
    "perfkit.jobs.builtins",
    "perfkit.metrics",
    "perfkit.http",
    "perfkit.admin",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attr != "annotations"
    }
    exported = set(module.__all__) - {"__version__"}
    # Names a module provides on first use (its __getattr__), not at import.
    lazy = {attr for attr in exported - public if attr not in vars(module)}
    assert all(getattr(module, attr) is not None for attr in lazy)
    assert exported - lazy == public
    assert list(module.__all__) == sorted(module.__all__)


def test_importing_the_cache_does_not_import_every_part() -> None:
    import subprocess
    import sys

    code = (
        "import sys, perfkit.cache\n"
        "print(sorted(m for m in ('rq', 'perfkit.admin', 'perfkit.jobs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
