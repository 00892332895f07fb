"""Values without a service: a ``serializer=`` is checked where it is given, and pydantic and
attrs are imported only when a value needs them.

Hand-written: no twin is involved. The services' value tests are generated from
``test_values_async.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from perfkit.cache import cached_query


def test_a_serializer_without_dumps_and_loads_is_refused() -> None:
    with pytest.raises(TypeError, match="serializer must have dumps") as refused:
        cached_query(serializer="json")  # type: ignore[arg-type]
    assert "got str" in str(refused.value)


def test_pydantic_and_attrs_are_not_imported_unless_used() -> None:
    code = (
        "import sys, msgspec\n"
        "from perfkit.cache import _codec\n"
        "class S(msgspec.Struct):\n"
        "    a: int\n"
        "assert _codec.decoder_for(S).decode(_codec.encode(S(1), key='k')) == S(1)\n"
        "print(sorted(m for m in ('pydantic', 'attrs') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
