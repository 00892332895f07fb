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
    "perfkit.metrics",
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
    assert exported == public
    assert list(module.__all__) == sorted(module.__all__)
