"""A Django site set up as docs/django.md says, run by test_database_source.py in a process
of its own (Django is configured once per process): the ``perfkit.contrib.django`` app,
``RouteMiddleware``, a kit on Django's database, ``admin_urls(kit)`` in the URLconf.

It serves a few requests that run SQL through Django's test Client, then prints one JSON
object: the admin's answers (``queries``, ``dashboard``, ``summary``, ``realtime``,
``metrics``) and what ``get_query_stats()`` counted. Configured by the environment:
``DATABASE_URL``, ``PKDB_POOL`` (``1``: Django's psycopg pool on), ``SLOW_QUERY_MS``,
``PKDB_EXPLAIN`` (``1``: slow statements are EXPLAINed; the site waits for a plan).
"""

from __future__ import annotations

import json
import os
import time

import django
import psycopg
from django.conf import settings

TOKEN = "django-dbsource-token-0123456789"

db = psycopg.conninfo.conninfo_to_dict(os.environ["DATABASE_URL"])
settings.configure(
    DEBUG=False,
    SECRET_KEY="perfkit-tests-only",  # a test site's, never deployed
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["perfkit.contrib.django"],
    MIDDLEWARE=["perfkit.contrib.django.middleware.RouteMiddleware"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db.pop("dbname", "postgres"),
            "USER": db.pop("user", ""),
            "PASSWORD": db.pop("password", ""),
            "HOST": db.pop("host", ""),
            "PORT": db.pop("port", ""),
            "OPTIONS": {**db, "pool": os.environ.get("PKDB_POOL") == "1"},
        }
    },
)
django.setup()

from django.db import connection  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import include, path  # noqa: E402

from perfkit import Perfkit, Settings  # noqa: E402
from perfkit.contrib.django.db import DjangoDatabase, get_query_stats  # noqa: E402
from perfkit.contrib.django.urls import admin_urls  # noqa: E402

kit = Perfkit(
    pool=DjangoDatabase(explain=os.environ.get("PKDB_EXPLAIN") == "1"),
    settings=Settings(perfkit_admin_token=TOKEN, slow_query_ms=float(os.environ["SLOW_QUERY_MS"])),
    performance_log=False,
)


def book(request: HttpRequest, book_id: int) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, pg_sleep(0.03)::text FROM books WHERE id = %s", [book_id])
        row = cursor.fetchone()
    return JsonResponse({"id": row[0] if row else None})


urlpatterns = [
    path("books/<int:book_id>", book),
    path("api/admin/performance/", include(admin_urls(kit))),
]


def main() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE books (id integer PRIMARY KEY)")
        cursor.execute("INSERT INTO books SELECT generate_series(1, 5)")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    for book_id in (1, 2, 3):
        assert client.get(f"/books/{book_id}").status_code == 200
    plans = get_query_stats().plans
    deadline = time.monotonic() + 20
    while plans is not None and plans.stats().explains + plans.stats().failures < 1:
        assert time.monotonic() < deadline, "no plan"
        time.sleep(0.02)
    answers: dict[str, object] = {"counted": get_query_stats().stats().count}
    for route in ("queries", "dashboard", "summary", "realtime"):
        response = client.get(f"/api/admin/performance/{route}")
        answers[route] = {"status": response.status_code, "body": response.json()}
    answers["metrics"] = client.get("/api/admin/performance/metrics").content.decode()
    reset = client.post("/api/admin/performance/metrics/reset", {}, "application/json")
    answers["reset"] = reset.json()
    answers["counted_after_reset"] = get_query_stats().stats().count
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
