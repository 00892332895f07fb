"""The seed's optimized queries, run through an ``AsyncTimedPool``; and their cached twin.

:class:`Queries` runs every read against PostgreSQL. :class:`CachedQueries` is the same
class with each read wrapped in ``@cached_query``, by the policy in :data:`CACHE_POLICY`
(TTL and tags). Writes return the tags they made stale; the app invalidates them after the
transaction commits and before it answers, so no read after the answer sees the old value.

Listings, search results and the popular list are cached in two levels: the ordered
product ids of the page (tagged ``catalog``, or ``catalog`` and ``prices`` when a price
filter decides membership), and the :class:`ProductSummary` list of those ids (tagged
``summary:<id>`` for each product on it; loaded with one query by primary key). So a
price update makes only the pages showing that product reload their summaries, instead
of every page and search result; a stock update or an order none.

Tags:

- ``product:<id>``: entries showing that product's price, stock or sales (detail,
  analytics). Price/stock updates and orders invalidate it.
- ``summary:<id>``: lists of product summaries holding that product (name, price,
  category, seller; no stock). Price updates invalidate it.
- ``catalog``: which products listings, search results and the popular list hold, and in
  what order (ids only: new or removed products, category changes invalidate it; nothing
  in this app does yet). A price update does not touch it.
- ``prices``: price-filtered search results, whose membership depends on prices. Price
  updates invalidate it.
- ``seller:<id>``: that seller's dashboard. Orders invalidate it.
- ``user:<id>:orders``: a user's order history. Orders invalidate it.
- ``categories``: the category list with product counts.
- ``analytics``: leaderboards and sales summaries, recomputed at most every 5 minutes
  (the seed's TTL for analytics); the sales aggregation job invalidates it.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import msgspec
from psycopg import AsyncConnection, errors, sql
from psycopg.rows import dict_row

from marketplace.models import (
    CategoryCount,
    CategoryRank,
    DailyPoint,
    IdPage,
    MonthPoint,
    OrderLine,
    OrderPage,
    OrderSummary,
    ProductAnalytics,
    ProductDetail,
    ProductPage,
    ProductRank,
    ProductSummary,
    SalesSummary,
    SellerDashboard,
    SellerRank,
)
from perfkit.cache import AsyncRedisService, cached_query
from perfkit.queries import AsyncOffsetPagination, AsyncTimedPool

__all__ = [
    "CACHE_POLICY",
    "HEAVY_READS",
    "SUMMARY_KEY",
    "SUMMARY_POLICY",
    "CachedQueries",
    "Conflict",
    "NotFound",
    "OrderRequest",
    "ProductUpdate",
    "Queries",
    "Written",
    "track_sql",
]

MINUTE = 60

# name of the read -> (TTL in seconds, tag templates filled from its arguments)
CACHE_POLICY: dict[str, tuple[int, tuple[str, ...]]] = {
    "products_page_ids": (10 * MINUTE, ("catalog",)),
    "search_ids": (10 * MINUTE, ("catalog",)),
    "price_search_ids": (10 * MINUTE, ("catalog", "prices")),
    "popular_ids": (10 * MINUTE, ("catalog",)),
    "product": (15 * MINUTE, ("product:{product_id}",)),
    "product_analytics": (10 * MINUTE, ("product:{product_id}",)),
    "user_orders": (30 * MINUTE, ("user:{user_id}:orders",)),
    "seller_dashboard": (10 * MINUTE, ("seller:{seller_id}",)),
    "categories": (60 * MINUTE, ("categories",)),
    "category_leaderboard": (5 * MINUTE, ("analytics",)),
    "top_sellers": (5 * MINUTE, ("analytics",)),
    "best_sellers": (5 * MINUTE, ("analytics",)),
    "sales_summary": (5 * MINUTE, ("analytics",)),
}

# The reads that aggregate many rows (40-150 ms uncached at SF 0.1): the bench's heavy
# endpoints, whose TTL ``heavy_ttl`` may shorten.
HEAVY_READS = (
    "category_leaderboard",
    "top_sellers",
    "best_sellers",
    "sales_summary",
    "seller_dashboard",
    "product_analytics",
)

# The summaries of one list of ids (a page): (TTL, tag template for each product); the
# key is SUMMARY_KEY filled with a digest of the ids.
SUMMARY_POLICY = (10 * MINUTE, "summary:{product_id}")
SUMMARY_KEY = "summaries:{ids}"

_SUMMARY_COLUMNS = ("id", "name", "price_cents", "category_id", "seller_id")
_LISTING = AsyncOffsetPagination("products", _SUMMARY_COLUMNS, order_by=("id",))
_LISTING_IDS = AsyncOffsetPagination("products", ("id",), order_by=("id",))
_UTC_DAY = sql.SQL("(created_at AT TIME ZONE 'UTC')::date")


class NotFound(LookupError):
    """A product, user or seller that does not exist."""


class Conflict(ValueError):
    """A write that cannot be done as asked (not enough stock)."""


# The columns' bounds: ids are bigint, prices, stock and quantities integer. A value outside
# them is a 400 naming the field, not a database error.
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
# Below 0 fits the column's type and is a Conflict (its CHECK), as before.
Int4 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/orders``: who orders what (product id -> quantity)."""

    user_id: Id
    items: dict[Id, Int4]


class ProductUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/products/{id}``: a new price and/or stock."""

    price_cents: Int4 | None = None
    stock: Int4 | None = None


class Written(msgspec.Struct, frozen=True, kw_only=True):
    """What a write returns: its result and the cache tags it made stale."""

    result: Any
    stale_tags: list[str]
    email: str | None = None  # whom to notify (orders)


def _points(rows: Sequence[Mapping[str, Any]]) -> list[DailyPoint]:
    return [
        DailyPoint(
            day=row["day"],
            orders=int(row["orders"]),
            units=int(row["units"]),
            revenue_cents=int(row["revenue_cents"]),
        )
        for row in rows
    ]


# Set per request by the app (track_sql): whether the request ran a statement itself.
_RAN_SQL: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "marketplace_ran_sql", default=None
)


def track_sql() -> list[bool]:
    """From now on in this context, record whether a read takes a database connection:
    ``box[0]`` turns True when one does (the bench's "reads served without SQL")."""
    box = [False]
    _RAN_SQL.set(box)
    return box


def _mark_sql() -> None:
    box = _RAN_SQL.get()
    if box is not None:
        box[0] = True


def _search_query(
    columns: Sequence[str],
    q: str,
    category_id: int | None,
    min_price: int | None,
    max_price: int | None,
    page: int,
    per_page: int,
) -> tuple[sql.Composed, dict[str, Any]]:
    """Full-text search (tsvector + GIN) with filters, by rank: ``columns`` of one page
    (and one row more, to tell whether there is a next page)."""
    conditions = [sql.SQL("search @@ query")]
    params: dict[str, Any] = {"q": q, "limit": per_page + 1, "offset": (page - 1) * per_page}
    if category_id is not None:
        conditions.append(sql.SQL("category_id = %(category_id)s"))
        params["category_id"] = category_id
    if min_price is not None:
        conditions.append(sql.SQL("price_cents >= %(min_price)s"))
        params["min_price"] = min_price
    if max_price is not None:
        conditions.append(sql.SQL("price_cents <= %(max_price)s"))
        params["max_price"] = max_price
    query = sql.SQL(
        "SELECT {} FROM products, websearch_to_tsquery('english', %(q)s) AS query "
        "WHERE {} ORDER BY ts_rank(search, query) DESC, id "
        "LIMIT %(limit)s OFFSET %(offset)s"
    ).format(sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(" AND ").join(conditions))
    return query, params


class Queries:
    """Every read and write of the marketplace, straight to PostgreSQL."""

    def __init__(self, pool: AsyncTimedPool) -> None:
        self.pool = pool

    def _connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        _mark_sql()
        return self.pool.connection()

    async def _all(
        self, query: str | sql.SQL | sql.Composed, params: Any = None
    ) -> list[dict[str, Any]]:
        # One statement alone: a read is run again if its connection dies under it.
        _mark_sql()
        return await self.pool.fetch(query, params, row_factory=dict_row)

    # -- catalog --------------------------------------------------------------------

    async def products_page(
        self, page: int = 1, per_page: int = 20, category_id: int | None = None
    ) -> ProductPage:
        """Products by id, one page (``getProductsWithPagination``)."""
        where = {"category_id": category_id} if category_id is not None else None
        async with self._connection() as conn:
            found = await _LISTING.fetch(conn, page=page, per_page=per_page, where=where)
        return ProductPage(
            items=[ProductSummary(**row) for row in found.rows],
            page=found.page,
            per_page=found.per_page,
            has_next=found.has_next,
        )

    async def search(
        self,
        q: str,
        category_id: int | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> ProductPage:
        """Full-text search (tsvector + GIN) with category and price filters, by rank."""
        query, params = _search_query(
            _SUMMARY_COLUMNS, q, category_id, min_price, max_price, page, per_page
        )
        rows = await self._all(query, params)
        return ProductPage(
            items=[ProductSummary(**row) for row in rows[:per_page]],
            page=page,
            per_page=per_page,
            has_next=len(rows) > per_page,
        )

    async def products_page_ids(
        self, page: int = 1, per_page: int = 20, category_id: int | None = None
    ) -> IdPage:
        """The ids of :meth:`products_page`, in order."""
        where = {"category_id": category_id} if category_id is not None else None
        async with self._connection() as conn:
            found = await _LISTING_IDS.fetch(conn, page=page, per_page=per_page, where=where)
        return IdPage(ids=[row["id"] for row in found.rows], has_next=found.has_next)

    async def search_ids(
        self,
        q: str,
        category_id: int | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> IdPage:
        """The ids of :meth:`search` without a price filter, in order (by rank)."""
        # Queries' own method, not a cached twin's: one cache entry per search.
        return await Queries.price_search_ids(self, q, category_id, None, None, page, per_page)

    async def price_search_ids(
        self,
        q: str,
        category_id: int | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> IdPage:
        """The ids of :meth:`search` with a price filter (which products match depends on
        their prices: cached under its own policy)."""
        query, params = _search_query(("id",), q, category_id, min_price, max_price, page, per_page)
        rows = await self._all(query, params)
        return IdPage(ids=[row["id"] for row in rows[:per_page]], has_next=len(rows) > per_page)

    async def popular_ids(self, limit: int = 20) -> list[int]:
        """The ids of :meth:`popular_products`, in order."""
        rows = await self._all("SELECT id FROM products ORDER BY views DESC, id LIMIT %s", (limit,))
        return [row["id"] for row in rows]

    async def summaries(self, product_ids: Sequence[int]) -> dict[int, ProductSummary]:
        """The summaries of those products that exist, by id (one query)."""
        rows = await self._all(
            "SELECT id, name, price_cents, category_id, seller_id FROM products WHERE id = ANY(%s)",
            (list(product_ids),),
        )
        return {row["id"]: ProductSummary(**row) for row in rows}

    async def popular_products(self, limit: int = 20) -> list[ProductSummary]:
        """The most viewed products."""
        rows = await self._all(
            "SELECT id, name, price_cents, category_id, seller_id FROM products "
            "ORDER BY views DESC, id LIMIT %s",
            (limit,),
        )
        return [ProductSummary(**row) for row in rows]

    async def product(self, product_id: int) -> ProductDetail | None:
        """One product with its category and seller."""
        rows = await self._all(
            "SELECT p.id, p.name, p.description, p.price_cents, p.stock, p.views, "
            "p.category_id, c.name AS category, p.seller_id, s.name AS seller, p.updated_at "
            "FROM products p JOIN categories c ON c.id = p.category_id "
            "JOIN sellers s ON s.id = p.seller_id WHERE p.id = %s",
            (product_id,),
        )
        return ProductDetail(**rows[0]) if rows else None

    async def categories(self) -> list[CategoryCount]:
        """Active categories with their product counts."""
        rows = await self._all(
            "SELECT c.id, c.name, c.slug, count(p.id) AS products FROM categories c "
            "LEFT JOIN products p ON p.category_id = c.id WHERE c.active "
            "GROUP BY c.id ORDER BY c.name"
        )
        return [CategoryCount(**row) for row in rows]

    # -- users and sellers ------------------------------------------------------------

    async def user_orders(self, user_id: int, page: int = 1, per_page: int = 10) -> OrderPage:
        """A user's orders, newest first, with their items (two indexed queries)."""
        orders = await self._all(
            "SELECT id, status, total_cents, created_at FROM orders WHERE user_id = %s "
            "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
            (user_id, per_page + 1, (page - 1) * per_page),
        )
        shown = orders[:per_page]
        lines: dict[int, list[OrderLine]] = {row["id"]: [] for row in shown}
        if shown:
            items = await self._all(
                "SELECT order_id, product_id, quantity, unit_price_cents FROM order_items "
                "WHERE order_id = ANY(%s) ORDER BY order_id, product_id",
                (list(lines),),
            )
            for item in items:
                lines[item.pop("order_id")].append(OrderLine(**item))
        return OrderPage(
            user_id=user_id,
            items=[OrderSummary(**row, items=lines[row["id"]]) for row in shown],
            page=page,
            per_page=per_page,
            has_next=len(orders) > per_page,
        )

    async def seller_dashboard(self, seller_id: int) -> SellerDashboard | None:
        """Totals, the last 30 days, top products and 14 days of sales of one seller."""
        sellers = await self._all(
            "SELECT s.name, (SELECT count(*) FROM products WHERE seller_id = s.id) AS products "
            "FROM sellers s WHERE s.id = %s",
            (seller_id,),
        )
        if not sellers:
            return None
        totals = (
            await self._all(
                "SELECT count(DISTINCT order_id) AS orders, coalesce(sum(quantity), 0) AS units, "
                "coalesce(sum(quantity * unit_price_cents), 0)::bigint AS revenue_cents, "
                "coalesce(sum(quantity * unit_price_cents) FILTER "
                "(WHERE created_at >= now() - interval '30 days'), 0)::bigint AS revenue_30d_cents "
                "FROM order_items WHERE seller_id = %s",
                (seller_id,),
            )
        )[0]
        top = await self._all(
            "SELECT oi.product_id, p.name, sum(oi.quantity)::bigint AS units, "
            "sum(oi.quantity * oi.unit_price_cents)::bigint AS revenue_cents "
            "FROM order_items oi JOIN products p ON p.id = oi.product_id "
            "WHERE oi.seller_id = %s GROUP BY oi.product_id, p.name "
            "ORDER BY revenue_cents DESC, oi.product_id LIMIT 5",
            (seller_id,),
        )
        daily = await self._all(
            sql.SQL(
                "SELECT {day} AS day, count(DISTINCT order_id) AS orders, "
                "sum(quantity)::bigint AS units, "
                "sum(quantity * unit_price_cents)::bigint AS revenue_cents "
                "FROM order_items WHERE seller_id = %s "
                "AND created_at >= now() - interval '14 days' GROUP BY 1 ORDER BY 1"
            ).format(day=_UTC_DAY),
            (seller_id,),
        )
        return SellerDashboard(
            seller_id=seller_id,
            name=sellers[0]["name"],
            products=int(sellers[0]["products"]),
            orders=int(totals["orders"]),
            units=int(totals["units"]),
            revenue_cents=int(totals["revenue_cents"]),
            revenue_30d_cents=int(totals["revenue_30d_cents"]),
            top_products=[ProductRank(**row) for row in top],
            daily=_points(daily),
        )

    # -- analytics --------------------------------------------------------------------

    async def product_analytics(self, product_id: int) -> ProductAnalytics | None:
        """Views, sales and the 30-day conversion of one product, with daily sales."""
        views = await self._all(
            "SELECT p.views AS views_total, (SELECT count(*) FROM product_views v "
            "WHERE v.product_id = p.id AND v.viewed_at >= now() - interval '30 days') "
            "AS views_30d FROM products p WHERE p.id = %s",
            (product_id,),
        )
        if not views:
            return None
        sales = (
            await self._all(
                "SELECT count(DISTINCT order_id) AS orders, coalesce(sum(quantity), 0) AS units, "
                "coalesce(sum(quantity * unit_price_cents), 0)::bigint AS revenue_cents, "
                "count(DISTINCT order_id) FILTER "
                "(WHERE created_at >= now() - interval '30 days') AS orders_30d "
                "FROM order_items WHERE product_id = %s",
                (product_id,),
            )
        )[0]
        daily = await self._all(
            sql.SQL(
                "SELECT {day} AS day, count(DISTINCT order_id) AS orders, "
                "sum(quantity)::bigint AS units, "
                "sum(quantity * unit_price_cents)::bigint AS revenue_cents "
                "FROM order_items WHERE product_id = %s "
                "AND created_at >= now() - interval '30 days' GROUP BY 1 ORDER BY 1"
            ).format(day=_UTC_DAY),
            (product_id,),
        )
        views_30d = int(views[0]["views_30d"])
        return ProductAnalytics(
            product_id=product_id,
            views_total=int(views[0]["views_total"]),
            views_30d=views_30d,
            orders=int(sales["orders"]),
            units=int(sales["units"]),
            revenue_cents=int(sales["revenue_cents"]),
            conversion_30d=round(int(sales["orders_30d"]) / views_30d, 4) if views_30d else 0.0,
            daily=_points(daily),
        )

    async def category_leaderboard(self, limit: int = 10) -> list[CategoryRank]:
        """Categories by revenue over the last 30 days (``getCategoryLeaderboard``)."""
        rows = await self._all(
            "SELECT p.category_id, c.name, count(DISTINCT oi.order_id) AS orders, "
            "sum(oi.quantity)::bigint AS units, "
            "sum(oi.quantity * oi.unit_price_cents)::bigint AS revenue_cents "
            "FROM order_items oi JOIN products p ON p.id = oi.product_id "
            "JOIN categories c ON c.id = p.category_id "
            "WHERE oi.created_at >= now() - interval '30 days' "
            "GROUP BY p.category_id, c.name ORDER BY revenue_cents DESC, p.category_id LIMIT %s",
            (limit,),
        )
        return [CategoryRank(**row) for row in rows]

    async def top_sellers(self, limit: int = 10) -> list[SellerRank]:
        """Sellers by revenue over the last 30 days."""
        rows = await self._all(
            "SELECT oi.seller_id, s.name, round(s.rating::numeric, 2)::float8 AS rating, "
            "count(DISTINCT oi.order_id) AS orders, "
            "sum(oi.quantity * oi.unit_price_cents)::bigint AS revenue_cents "
            "FROM order_items oi JOIN sellers s ON s.id = oi.seller_id "
            "WHERE oi.created_at >= now() - interval '30 days' "
            "GROUP BY oi.seller_id, s.name, s.rating "
            "ORDER BY revenue_cents DESC, oi.seller_id LIMIT %s",
            (limit,),
        )
        return [SellerRank(**row) for row in rows]

    async def best_sellers(self, limit: int = 10) -> list[ProductRank]:
        """Products by revenue over the last 30 days."""
        rows = await self._all(
            "SELECT oi.product_id, p.name, sum(oi.quantity)::bigint AS units, "
            "sum(oi.quantity * oi.unit_price_cents)::bigint AS revenue_cents "
            "FROM order_items oi JOIN products p ON p.id = oi.product_id "
            "WHERE oi.created_at >= now() - interval '30 days' "
            "GROUP BY oi.product_id, p.name ORDER BY revenue_cents DESC, oi.product_id LIMIT %s",
            (limit,),
        )
        return [ProductRank(**row) for row in rows]

    async def sales_summary(self) -> SalesSummary:
        """Today's sales and the last 7 days (order items), the last 12 months (orders)."""
        days = await self._all(
            sql.SQL(
                "SELECT d::date AS day, count(DISTINCT oi.order_id) AS orders, "
                "coalesce(sum(oi.quantity), 0)::bigint AS units, "
                "coalesce(sum(oi.quantity * oi.unit_price_cents), 0)::bigint AS revenue_cents "
                "FROM generate_series((now() AT TIME ZONE 'UTC')::date - 6, "
                "(now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d "
                "LEFT JOIN order_items oi ON {day} = d::date "
                "AND oi.created_at >= now() - interval '8 days' "
                "GROUP BY 1 ORDER BY 1"
            ).format(day=sql.SQL("(oi.created_at AT TIME ZONE 'UTC')::date"))
        )
        months = await self._all(
            "SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, "
            "count(*) AS orders, sum(total_cents)::bigint AS revenue_cents FROM orders "
            "WHERE created_at >= date_trunc('month', now()) - interval '11 months' "
            "AND status <> 'cancelled' GROUP BY 1 ORDER BY 1"
        )
        week = _points(days)
        return SalesSummary(
            today=week[-1],
            week=week,
            months=[MonthPoint(**row) for row in months],
        )

    # -- writes -----------------------------------------------------------------------

    async def create_order(self, request: OrderRequest) -> Written:
        """Place an order: lock the products, check stock, write the order, take the stock."""
        if not request.items or any(q <= 0 for q in request.items.values()):
            raise Conflict("an order needs at least one item, each with a quantity > 0")
        wanted = sorted(request.items)
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT email FROM users WHERE id = %s", (request.user_id,))
            user = await cur.fetchone()
            if user is None:
                raise NotFound(f"user {request.user_id} does not exist")
            await cur.execute(
                "SELECT id, price_cents, seller_id, stock FROM products WHERE id = ANY(%s) "
                "ORDER BY id FOR UPDATE",
                (wanted,),
            )
            products = {row["id"]: row for row in await cur.fetchall()}
            missing = [pid for pid in wanted if pid not in products]
            if missing:
                raise NotFound(f"products {missing} do not exist")
            short = [pid for pid in wanted if products[pid]["stock"] < request.items[pid]]
            if short:
                raise Conflict(f"not enough stock for products {short}")
            total = sum(products[pid]["price_cents"] * request.items[pid] for pid in wanted)
            await cur.execute(
                "INSERT INTO orders (user_id, status, total_cents, created_at) "
                "VALUES (%s, 'pending', %s, now()) RETURNING id, status, total_cents, created_at",
                (request.user_id, total),
            )
            order = await cur.fetchone()
            if order is None:
                raise RuntimeError("INSERT ... RETURNING returned no row")
            lines = [
                OrderLine(
                    product_id=pid,
                    quantity=request.items[pid],
                    unit_price_cents=products[pid]["price_cents"],
                )
                for pid in wanted
            ]
            await cur.executemany(
                "INSERT INTO order_items (order_id, product_id, seller_id, quantity, "
                "unit_price_cents, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        order["id"],
                        line.product_id,
                        products[line.product_id]["seller_id"],
                        line.quantity,
                        line.unit_price_cents,
                        order["created_at"],
                    )
                    for line in lines
                ],
            )
            await cur.executemany(
                "UPDATE products SET stock = stock - %s, updated_at = now() WHERE id = %s",
                [(line.quantity, line.product_id) for line in lines],
            )
        sellers = sorted({products[pid]["seller_id"] for pid in wanted})
        return Written(
            result=OrderSummary(**order, items=lines),
            email=user["email"],
            stale_tags=[
                *(f"product:{pid}" for pid in wanted),
                *(f"seller:{sid}" for sid in sellers),
                f"user:{request.user_id}:orders",
            ],
        )

    async def update_product(self, product_id: int, update: ProductUpdate) -> Written:
        """Change a product's price and/or stock."""
        if update.price_cents is None and update.stock is None:
            raise Conflict("give price_cents and/or stock")
        try:
            rows = await self._all(
                "UPDATE products SET price_cents = coalesce(%s, price_cents), "
                "stock = coalesce(%s, stock), updated_at = now() WHERE id = %s RETURNING id",
                (update.price_cents, update.stock, product_id),
            )
        except errors.CheckViolation as exc:
            raise Conflict("price_cents and stock must be >= 0") from exc
        if not rows:
            raise NotFound(f"product {product_id} does not exist")
        tags = [f"product:{product_id}"]
        if update.price_cents is not None:
            # Listings' summaries show the price; price-filtered searches may change.
            tags += [f"summary:{product_id}", "prices"]
        return Written(result={"id": product_id}, stale_tags=tags)


class CachedQueries(Queries):
    """:class:`Queries` with every read cached in Redis by :data:`CACHE_POLICY`;
    listings, search results and the popular list in two levels (ids, then summaries)."""

    def __init__(
        self,
        pool: AsyncTimedPool,
        cache: AsyncRedisService,
        *,
        stale_ttl: float | None = None,
        heavy_ttl: float | None = None,
    ) -> None:
        """``stale_ttl``: every read's stale window (seconds after expiry in which the old
        value is served while one refresh runs; None: none). ``heavy_ttl``: the TTL of the
        :data:`HEAVY_READS` instead of the policy's (the bench shortens it so that entries
        expire while it measures)."""
        super().__init__(pool)
        self.cache = cache
        # Only when set: a perfkit without stale windows still runs the app.
        options: dict[str, Any] = {} if stale_ttl is None else {"stale_ttl": stale_ttl}
        for name, (ttl, tags) in CACHE_POLICY.items():
            read = getattr(super(), name)
            lifetime = heavy_ttl if heavy_ttl is not None and name in HEAVY_READS else ttl
            # The key names the class's method (marketplace.queries.Queries.<name>), so
            # every process and every app instance on this namespace shares entries.
            setattr(self, name, cached_query(lifetime, tags, cache=cache, **options)(read))

    async def products_page(
        self, page: int = 1, per_page: int = 20, category_id: int | None = None
    ) -> ProductPage:
        """:meth:`Queries.products_page` from the cached ids and summaries."""
        found = await self.products_page_ids(page, per_page, category_id)
        return await self._page(found, page, per_page)

    async def search(
        self,
        q: str,
        category_id: int | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> ProductPage:
        """:meth:`Queries.search` from the cached ids and summaries."""
        if min_price is None and max_price is None:
            found = await self.search_ids(q, category_id, page, per_page)
        else:
            found = await self.price_search_ids(
                q, category_id, min_price, max_price, page, per_page
            )
        return await self._page(found, page, per_page)

    async def popular_products(self, limit: int = 20) -> list[ProductSummary]:
        """:meth:`Queries.popular_products` from the cached ids and summaries."""
        return await self.cached_summaries(await self.popular_ids(limit))

    async def _page(self, found: IdPage, page: int, per_page: int) -> ProductPage:
        return ProductPage(
            items=await self.cached_summaries(found.ids),
            page=page,
            per_page=per_page,
            has_next=found.has_next,
        )

    async def cached_summaries(self, product_ids: Sequence[int]) -> list[ProductSummary]:
        """The summaries of ``product_ids``, in order (products that no longer exist are
        left out), cached as one entry per list of ids, tagged ``summary:<id>`` for each:
        a hit is one round trip (the entry and its tags' generations in one MGET), and a
        price update makes only the lists holding that product miss. ``get_or_set`` reads
        the generations before the query runs, so a list loaded before an update is never
        stored after that update's invalidation."""
        if not product_ids:
            return []
        ttl, tag = SUMMARY_POLICY
        digest = hashlib.blake2b(",".join(map(str, product_ids)).encode(), digest_size=12)
        value = await self.cache.get_or_set(
            SUMMARY_KEY.format(ids=digest.hexdigest()),
            lambda: self._summaries_in_order(product_ids),
            ttl,
            [tag.format(product_id=pid) for pid in dict.fromkeys(product_ids)],
        )
        return msgspec.convert(value, list[ProductSummary])

    async def _summaries_in_order(self, product_ids: Sequence[int]) -> list[ProductSummary]:
        found = await super().summaries(product_ids)
        return [found[pid] for pid in product_ids if pid in found]
