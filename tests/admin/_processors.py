"""Processors the admin tests enqueue (one succeeds, one always fails)."""

from __future__ import annotations

import msgspec

from perfkit.jobs import processor

# Job errors are untrusted text: the dashboard must show this as text, not markup.
FAILURE = "<img src=x onerror=alert(1)> report failed & stopped"


class Report(msgspec.Struct, kw_only=True):
    name: str


@processor("admintest.report", queue="reports")
def report(payload: Report) -> str:
    """Succeeds."""
    return payload.name


@processor("admintest.broken", queue="reports")
def broken(payload: Report) -> None:
    """Always fails with a message holding markup."""
    raise RuntimeError(FAILURE)
