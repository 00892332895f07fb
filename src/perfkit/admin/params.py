"""The kinds of query parameter an admin route takes, one class each.

A kind both reads a raw query value (``convert``: the value, or 400 naming the parameter
and what was wrong with it) and describes what it accepts (``schema``: the OpenAPI
schema; ``describe``: the docs' words). Dispatch (:mod:`perfkit.admin.core`), the OpenAPI
document (:mod:`perfkit.admin.openapi`), the route tests and the generated docs all ask
the kind, so a new kind of parameter is one class here (after starlette's
``convertors.py``).

Some values are the app's own (its queue names): the kinds get them as ``choices``, a
mapping of what they are (``"queues"``) to the values, the same names the body schemas
mark with :data:`~perfkit.admin.schemas.CHOICES`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from perfkit.admin.http import AdminError

__all__ = ["QUEUE", "Choices", "Integer", "Kind", "OneOf", "Text"]

Choices = Mapping[str, Sequence[str]]
"""The app's own values by what they are: ``{"queues": ("default", "email")}``."""


def _bad(name: str, what: str) -> AdminError:
    return AdminError(400, "bad_request", f"{name}: {what}")


class Kind(ABC):
    """What a query parameter accepts; ``default`` when the request leaves it out."""

    default: Any = None

    @abstractmethod
    def convert(self, name: str, raw: str, choices: Choices) -> Any:
        """The value of ``raw`` given for parameter ``name``, or 400 naming it."""

    @abstractmethod
    def schema(self, choices: Choices) -> dict[str, Any]:
        """The OpenAPI (JSON) schema of the values accepted."""

    @abstractmethod
    def describe(self) -> str:
        """What it accepts, in the docs' words (the routes table of docs/admin.md)."""


class Integer(Kind):
    """An integer in [``minimum``, ``maximum``], ``default`` when absent."""

    def __init__(self, minimum: int, maximum: int, *, default: int) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.default = default

    def convert(self, name: str, raw: str, choices: Choices) -> int:
        """``raw`` as an integer within the bounds."""
        try:
            value = int(raw)
        except ValueError:
            raise _bad(name, "expected an integer") from None
        if not self.minimum <= value <= self.maximum:
            raise _bad(name, f"must be between {self.minimum} and {self.maximum}")
        return value

    def schema(self, choices: Choices) -> dict[str, Any]:
        """``integer`` with the bounds and the default."""
        return {
            "type": "integer",
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
        }

    def describe(self) -> str:
        """``integer 1..100, default 20``."""
        return f"integer {self.minimum}..{self.maximum}, default {self.default}"


class OneOf(Kind):
    """One of the app's ``choices[values]`` (``noun`` names one in the error); absent:
    ``None``, which the handler reads as "all of them"."""

    def __init__(self, values: str, noun: str) -> None:
        self.values = values
        self.noun = noun

    def convert(self, name: str, raw: str, choices: Choices) -> str:
        """``raw`` when it is one of the app's values."""
        known = choices[self.values]
        if raw not in known:
            raise _bad(name, f"unknown {self.noun} {raw!r}; known: {list(known)}")
        return raw

    def schema(self, choices: Choices) -> dict[str, Any]:
        """``string`` with the app's values as its ``enum``."""
        return {"type": "string", "enum": list(choices[self.values])}

    def describe(self) -> str:
        """``one of the configured queues``."""
        return f"one of the configured {self.values}"


class Text(Kind):
    """A string of ``min_length``..``max_length`` characters in which ``pattern`` is found
    (``re.search``, as JSON Schema's ``pattern``); ``default`` when absent."""

    def __init__(
        self,
        *,
        min_length: int = 0,
        max_length: int,
        pattern: str | None = None,
        default: str | None = None,
    ) -> None:
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self._compiled = re.compile(pattern) if pattern is not None else None
        self.default = default

    def convert(self, name: str, raw: str, choices: Choices) -> str:
        """``raw`` when its length and characters are allowed."""
        if not self.min_length <= len(raw) <= self.max_length:
            raise _bad(name, f"must be {self._length()} characters long")
        if self._compiled is not None and self._compiled.search(raw) is None:
            raise _bad(name, f"must match {self.pattern}")
        return raw

    def schema(self, choices: Choices) -> dict[str, Any]:
        """``string`` with the length bounds, the pattern and the default."""
        schema: dict[str, Any] = {
            "type": "string",
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def _length(self) -> str:
        if self.min_length == self.max_length:
            return str(self.max_length)
        return f"{self.min_length}..{self.max_length}"

    def describe(self) -> str:
        """``string of 1..64 characters matching `^[a-z]+$```."""
        words = f"string of {self._length()} characters"
        if self.pattern is not None:
            words += f" matching `{self.pattern}`"
        if self.default is not None:
            words += f", default {self.default!r}"
        return words


QUEUE = OneOf("queues", "queue")
"""A configured queue name (``queue`` of ``jobs/failed``, and of the job bodies)."""
