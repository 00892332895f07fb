"""The marketplace's background jobs: import this module in the web app and the workers
(``perfkit worker --import marketplace.jobs``).

- ``email.send`` with the ``order-confirmation`` template (perfkit's built-in processor),
  enqueued by every order;
- ``analytics.sales_aggregation``: recompute ``daily_sales`` for a period, then invalidate
  the ``analytics`` cache tag;
- ``analytics.report_generation``: a seller's sales report as a JSON file;
- ``analytics.image_thumbnails``: a product's image and its thumbnails as PNG files;
- ``data.export`` (built-in) with the export queries registered here.

Connections come from one ``TimedPool`` per worker process (DATABASE_URL) and cache
invalidations go through a ``RedisService`` on the app's namespace (REDIS_URL,
CACHE_NAMESPACE), so the worker's statements and cache traffic show in perfkit's stats.
"""

from __future__ import annotations

import colorsys
import io
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from perfkit import Settings
from perfkit.cache import RedisService
from perfkit.jobs import processor
from perfkit.jobs.builtins import register_email_template, register_export_query, set_export_pool
from perfkit.queries import TimedPool

__all__ = [
    "REPORT_KINDS",
    "ReportPayload",
    "SalesAggregationPayload",
    "ThumbnailPayload",
    "close_resources",
    "generate_report",
    "image_thumbnails",
    "output_directory",
    "sales_aggregation",
]

ORDER_CONFIRMATION = "order-confirmation"
register_email_template(
    ORDER_CONFIRMATION,
    "Thank you for your order $orderId: $items item(s), $total cents in total.",
)

register_export_query(
    "orders_of_user",
    "SELECT o.id, o.status, o.total_cents, o.created_at FROM orders o "
    "WHERE o.user_id = %(user_id)s ORDER BY o.created_at DESC",
)
register_export_query(
    "products_in_category",
    "SELECT id, name, price_cents, stock FROM products "
    "WHERE category_id = %(category_id)s ORDER BY id",
)

PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}
REPORT_KINDS = ("seller_sales",)

_resources_lock = threading.Lock()
_pool: TimedPool | None = None
_cache: RedisService | None = None


def _resources() -> tuple[TimedPool, RedisService]:
    """The worker's pool and cache, opened on first use (one of each per process)."""
    global _pool, _cache
    with _resources_lock:
        if _pool is None or _cache is None:
            settings = Settings.from_env()
            _pool = TimedPool.from_env(min_size=0, max_size=4, name="marketplace-worker")
            _pool.open()
            set_export_pool(_pool)  # data.export reads through the same pool
            _cache = RedisService(settings.redis_url, settings=settings)
        return _pool, _cache


def close_resources() -> None:
    """Close the process's pool and cache (tests; a worker keeps them until it exits)."""
    global _pool, _cache
    with _resources_lock:
        if _pool is not None:
            set_export_pool(None)
            _pool.close()
        if _cache is not None:
            _cache.close()
        _pool = _cache = None


def output_directory() -> Path:
    """Where reports and thumbnails go: JOB_EXPORT_DIR."""
    return Path(Settings.from_env().job_export_dir)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


class SalesAggregationPayload(msgspec.Struct, frozen=True, kw_only=True):
    """``analytics.sales_aggregation``: which period of ``daily_sales`` to recompute."""

    period: Literal["daily", "weekly", "monthly"] = "daily"


@processor("analytics.sales_aggregation", queue="analytics")
def sales_aggregation(payload: SalesAggregationPayload) -> dict[str, int]:
    """Recompute ``daily_sales`` (per day and category) for the period, then invalidate
    the ``analytics`` tag so leaderboards and summaries are recomputed on next read."""
    pool, cache = _resources()
    days = PERIOD_DAYS[payload.period]
    with pool.connection() as conn:
        conn.execute(
            "DELETE FROM daily_sales WHERE day >= (now() AT TIME ZONE 'UTC')::date - %s",
            (days - 1,),
        )
        written = conn.execute(
            "INSERT INTO daily_sales (day, category_id, orders, units, revenue_cents) "
            "SELECT (oi.created_at AT TIME ZONE 'UTC')::date, p.category_id, "
            "count(DISTINCT oi.order_id), sum(oi.quantity), "
            "sum(oi.quantity * oi.unit_price_cents) "
            "FROM order_items oi JOIN products p ON p.id = oi.product_id "
            "WHERE oi.created_at >= (now() AT TIME ZONE 'UTC')::date - %s "
            "GROUP BY 1, 2",
            (days - 1,),
        ).rowcount
    cache.invalidate_tags(["analytics"])
    return {"days": days, "rows": written}


class ReportPayload(msgspec.Struct, frozen=True, kw_only=True):
    """``analytics.report_generation``: a seller's daily sales over ``days`` days."""

    seller_id: Annotated[int, msgspec.Meta(gt=0)]
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30
    kind: Literal["seller_sales"] = "seller_sales"


@processor("analytics.report_generation", queue="analytics")
def generate_report(payload: ReportPayload) -> dict[str, str | int]:
    """Write ``reports/seller-<id>-<days>d.json`` with per-day orders, units and revenue."""
    pool, _ = _resources()
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, "
            "count(DISTINCT order_id) AS orders, sum(quantity)::bigint AS units, "
            "sum(quantity * unit_price_cents)::bigint AS revenue_cents "
            "FROM order_items WHERE seller_id = %s "
            "AND created_at >= now() - make_interval(days => %s) GROUP BY 1 ORDER BY 1",
            (payload.seller_id, payload.days),
        ).fetchall()
    report = {
        "kind": payload.kind,
        "seller_id": payload.seller_id,
        "days": payload.days,
        "rows": [
            {"day": day.isoformat(), "orders": orders, "units": units, "revenue_cents": revenue}
            for day, orders, units, revenue in rows
        ],
        "revenue_cents": sum(int(row[3]) for row in rows),
    }
    path = output_directory() / "reports" / f"seller-{payload.seller_id}-{payload.days}d.json"
    _write_atomically(path, json.dumps(report, indent=2).encode())
    return {"path": str(path), "days_with_sales": len(rows)}


class ThumbnailPayload(msgspec.Struct, frozen=True, kw_only=True):
    """``analytics.image_thumbnails``: which product, which square sizes (pixels)."""

    product_id: Annotated[int, msgspec.Meta(gt=0)]
    sizes: tuple[Annotated[int, msgspec.Meta(ge=16, le=1024)], ...] = (64, 128, 256)


@processor("analytics.image_thumbnails", queue="analytics")
def image_thumbnails(payload: ThumbnailPayload) -> dict[str, list[str]]:
    """Render the product's 1024 px image (its name on a colour of its own) and write a
    PNG thumbnail per size under ``thumbnails/``. Needs Pillow (the ``examples`` extra)."""
    from PIL import Image, ImageDraw

    pool, _ = _resources()
    with pool.connection() as conn:
        found = conn.execute(
            "SELECT name FROM products WHERE id = %s", (payload.product_id,)
        ).fetchone()
    if found is None:
        raise LookupError(f"product {payload.product_id} does not exist")
    hue = (payload.product_id * 0.618033988749895) % 1.0
    red, green, blue = (round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.45, 0.9))
    image = Image.new("RGB", (1024, 1024), (red, green, blue))
    ImageDraw.Draw(image).text((64, 480), str(found[0]), fill=(20, 20, 20))
    written = []
    for size in sorted(set(payload.sizes)):
        thumbnail = image.copy()
        thumbnail.thumbnail((size, size))
        path = output_directory() / "thumbnails" / f"product-{payload.product_id}-{size}.png"
        png = io.BytesIO()
        thumbnail.save(png, format="PNG")
        _write_atomically(path, png.getvalue())
        written.append(str(path))
    return {"paths": written}
