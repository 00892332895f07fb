"""What the endpoints return: msgspec Structs (cached as MessagePack, served as JSON).

Money is integer cents. Aggregates never carry a product's current price, so a price
update only has to invalidate the entries that do (``product:<id>``, ``summary:<id>``,
and ``prices`` for price-filtered search results).
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

__all__ = [
    "CategoryCount",
    "CategoryRank",
    "DailyPoint",
    "IdPage",
    "MonthPoint",
    "OrderLine",
    "OrderPage",
    "OrderSummary",
    "ProductAnalytics",
    "ProductDetail",
    "ProductPage",
    "ProductRank",
    "ProductSummary",
    "SalesSummary",
    "SellerDashboard",
    "SellerRank",
]


class ProductSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A product in a listing or search result."""

    id: int
    name: str
    price_cents: int
    category_id: int
    seller_id: int


class IdPage(msgspec.Struct, frozen=True, kw_only=True):
    """The ordered product ids of one page of a listing or search (cached on their own;
    the page is built from each product's cached summary)."""

    ids: list[int]
    has_next: bool


class ProductPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of products."""

    items: list[ProductSummary]
    page: int
    per_page: int
    has_next: bool


class ProductDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One product with its category and seller names."""

    id: int
    name: str
    description: str
    price_cents: int
    stock: int
    views: int
    category_id: int
    category: str
    seller_id: int
    seller: str
    updated_at: datetime


class OrderLine(msgspec.Struct, frozen=True, kw_only=True):
    """An order item."""

    product_id: int
    quantity: int
    unit_price_cents: int


class OrderSummary(msgspec.Struct, frozen=True, kw_only=True):
    """An order in a user's history."""

    id: int
    status: str
    total_cents: int
    created_at: datetime
    items: list[OrderLine]


class OrderPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a user's orders, newest first."""

    user_id: int
    items: list[OrderSummary]
    page: int
    per_page: int
    has_next: bool


class DailyPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Sales of one day."""

    day: date
    orders: int
    units: int
    revenue_cents: int


class MonthPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Sales of one month (``month`` is its first day)."""

    month: date
    orders: int
    revenue_cents: int


class ProductRank(msgspec.Struct, frozen=True, kw_only=True):
    """A product ranked by revenue."""

    product_id: int
    name: str
    units: int
    revenue_cents: int


class SellerDashboard(msgspec.Struct, frozen=True, kw_only=True):
    """The seed's seller dashboard: totals, the last 30 days, top products, a daily series."""

    seller_id: int
    name: str
    products: int
    orders: int
    units: int
    revenue_cents: int
    revenue_30d_cents: int
    top_products: list[ProductRank]
    daily: list[DailyPoint]


class ProductAnalytics(msgspec.Struct, frozen=True, kw_only=True):
    """Views, sales and conversion of one product, with its last 30 days of sales."""

    product_id: int
    views_total: int
    views_30d: int
    orders: int
    units: int
    revenue_cents: int
    conversion_30d: float
    daily: list[DailyPoint]


class CategoryCount(msgspec.Struct, frozen=True, kw_only=True):
    """An active category with its number of products."""

    id: int
    name: str
    slug: str
    products: int


class CategoryRank(msgspec.Struct, frozen=True, kw_only=True):
    """A category ranked by revenue over the last 30 days."""

    category_id: int
    name: str
    orders: int
    units: int
    revenue_cents: int


class SellerRank(msgspec.Struct, frozen=True, kw_only=True):
    """A seller ranked by revenue over the last 30 days."""

    seller_id: int
    name: str
    rating: float
    orders: int
    revenue_cents: int


class SalesSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Today's sales, the last 7 days, and the last 12 months."""

    today: DailyPoint
    week: list[DailyPoint]
    months: list[MonthPoint]
