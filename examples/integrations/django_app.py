"""perfkit in a Django project, in one file: the perfkit cache backend with tags and
stampede protection, Django's SQL timed into perfkit's query statistics, and the admin API
mounted in the URLconf at /api/admin/performance.

Run: DATABASE_URL=... REDIS_URL=... PERFKIT_ADMIN_TOKEN=... python django_app.py runserver
(or gunicorn -w 4 django_app:application; a real project puts the settings in settings.py,
the URLs in urls.py and ``application`` in wsgi.py: docs/django.md).
"""

from __future__ import annotations

import os
import sys

import django
import psycopg
from django.conf import settings

db = psycopg.conninfo.conninfo_to_dict(os.environ["DATABASE_URL"])
settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "change-me"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    WSGI_APPLICATION=f"{__name__}.application",  # runserver serves it too
    INSTALLED_APPS=["perfkit.contrib.django"],  # times every SQL statement Django runs
    MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db.pop("dbname", "postgres"),
            "USER": db.pop("user", ""),
            "PASSWORD": db.pop("password", ""),
            "HOST": db.pop("host", ""),
            "PORT": db.pop("port", ""),
            "OPTIONS": {**db, "pool": True},  # Django's psycopg pool: perfkit reports it
        }
    },
    CACHES={
        "default": {
            "BACKEND": "perfkit.contrib.django.cache.PerfkitCache",  # LOCATION: REDIS_URL
            "TIMEOUT": 300,
        }
    },
)
django.setup()

from django.core.cache import cache, caches  # noqa: E402 (needs the settings above)
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import Http404, HttpRequest, JsonResponse  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_http_methods  # noqa: E402

from perfkit import Perfkit  # noqa: E402
from perfkit.contrib.django.db import DjangoDatabase  # noqa: E402
from perfkit.contrib.django.urls import admin_urls  # noqa: E402

# Django's cache and Django's SQL (timed by the app above); token from PERFKIT_ADMIN_TOKEN.
kit = Perfkit(cache=caches["default"].service, pool=DjangoDatabase())

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id integer PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL
);
INSERT INTO products VALUES (1, 'lamp', 1900), (2, 'chair', 4200) ON CONFLICT (id) DO NOTHING;
"""


def load_product(product_id: int) -> dict[str, object] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, price_cents FROM products WHERE id = %s", [product_id])
        row = cursor.fetchone()
    return {"id": row[0], "name": row[1], "price_cents": row[2]} if row else None


def get_product(request: HttpRequest, product_id: int) -> JsonResponse:
    # Stampede-protected: concurrent misses in every process load it once.
    product = cache.get_or_load(
        f"product:{product_id}", lambda: load_product(product_id), tags=[f"product:{product_id}"]
    )
    if product is None:
        raise Http404
    return JsonResponse(product)


@csrf_exempt  # an API called with PUT, not a form
@require_http_methods(["PUT"])
def set_price(request: HttpRequest, product_id: int) -> JsonResponse:
    price_cents = int(request.GET["price_cents"])
    with connection.cursor() as cursor:  # autocommit: committed when it returns
        cursor.execute(
            "UPDATE products SET price_cents = %s WHERE id = %s", [price_cents, product_id]
        )
    cache.invalidate_tags([f"product:{product_id}"])  # before answering
    return JsonResponse({"id": product_id, "price_cents": price_cents})


urlpatterns = [
    path("products/<int:product_id>", get_product),
    path("products/<int:product_id>/price", set_price),
    path("api/admin/performance/", include(admin_urls(kit))),  # starts the kit here
]
# Request metrics and compression around the whole project.
application = kit.wsgi(get_wsgi_application())

with connection.cursor() as cursor:
    cursor.execute(SCHEMA)  # the table this example reads, with two products

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
