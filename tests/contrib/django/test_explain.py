"""Django's slow statements get their plan (docs/queries.md, "Plans of slow statements"):
the site of test_database_source.py with ``DjangoDatabase(explain=True)``, on real
PostgreSQL, with Django's pool on and off."""

from __future__ import annotations

import pytest

from tests.contrib.django.test_database_source import BOOK_SELECT, _run_site


@pytest.mark.parametrize("pool", [False, True], ids=["no-pool", "django-pool"])
def test_djangos_slow_statement_is_explained(
    database_url: str, pool: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PKDB_EXPLAIN", "1")
    answers = _run_site(database_url, pool=pool)
    plans = answers["queries"]["body"]["queries"]["plans"]
    assert [p["fingerprint"] for p in plans] == [BOOK_SELECT]
    (plan,) = plans
    assert not plan["analyzed"] and plan["root"]["relation"].endswith(".books")
    assert answers["dashboard"]["body"]["database"]["queries"]["plans"] == plans
