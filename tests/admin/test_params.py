"""Parameter kinds: each reads a raw query value (400 naming the parameter) and describes
the values it accepts; a route table with a new kind needs nothing else to be served and
documented."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from perfkit.admin.http import AdminError
from perfkit.admin.openapi import document
from perfkit.admin.params import QUEUE, Choices, Integer, Text
from perfkit.admin.schemas import ResetResult
from perfkit.admin.spec import Param, Route

CHOICES = {"queues": ("default", "email")}


def refused(convert: Callable[[str, str, Choices], object], raw: str) -> str:
    with pytest.raises(AdminError) as caught:
        convert("p", raw, CHOICES)
    assert caught.value.status == 400
    return caught.value.detail


def test_integer_reads_within_its_bounds() -> None:
    kind = Integer(1, 100, default=20)
    assert kind.convert("p", "100", CHOICES) == 100
    assert refused(kind.convert, "101") == "p: must be between 1 and 100"
    assert refused(kind.convert, "x") == "p: expected an integer"
    assert kind.schema(CHOICES) == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}


def test_one_of_reads_the_apps_own_values() -> None:
    assert QUEUE.convert("p", "email", CHOICES) == "email"
    assert refused(QUEUE.convert, "x") == "p: unknown queue 'x'; known: ['default', 'email']"
    assert QUEUE.schema(CHOICES) == {"type": "string", "enum": ["default", "email"]}
    assert QUEUE.default is None


def test_text_reads_a_bounded_string() -> None:
    kind = Text(min_length=1, max_length=8, pattern=r"^[a-z:]+$")
    assert kind.convert("p", "user:", CHOICES) == "user:"
    assert refused(kind.convert, "") == "p: must be 1..8 characters long"
    assert refused(kind.convert, "a" * 9) == "p: must be 1..8 characters long"
    assert refused(kind.convert, "a b") == "p: must match ^[a-z:]+$"
    assert kind.schema(CHOICES) == {
        "type": "string",
        "minLength": 1,
        "maxLength": 8,
        "pattern": "^[a-z:]+$",
    }
    assert kind.describe() == "string of 1..8 characters matching `^[a-z:]+$`"
    exact = Text(min_length=16, max_length=16)
    assert refused(exact.convert, "abc") == "p: must be 16 characters long"
    assert exact.describe() == "string of 16 characters"


def test_a_new_kind_is_documented_from_the_route_table_alone() -> None:
    async def lookup(handlers: object, ask: object) -> ResetResult:
        return ResetResult(reset=[])

    param = Param("prefix", "Keys starting so.", Text(max_length=64, default="user:"))
    routes = (Route("GET", "/lookup", lookup, "A lookup.", ResetResult, params=(param,)),)
    operation = document(routes, queues=(), health_open=False)["paths"]["/lookup"]["get"]
    assert operation["parameters"] == [
        {
            "name": "prefix",
            "in": "query",
            "required": False,
            "description": "Keys starting so.",
            "schema": {"type": "string", "minLength": 0, "maxLength": 64, "default": "user:"},
        }
    ]
    assert "400" in operation["responses"]
