"""The seed's cache warming list, as named warmers of a ``CacheWarmer``.

- ``popular_products``: the 20 most viewed products (the list, each product's page and
  summary) and the first page of the product listing (its ids and summaries);
- ``categories``: every active category with its product count;
- ``analytics_summaries``: today's sales, the weekly trend, monthly aggregates;
- ``leaderboards``: top sellers, best-selling products, category rankings.

Each warmer *refreshes* its entries (recomputes and stores them even when cached), so
warming also renews entries that are about to expire; product summaries are only filled
where missing.
"""

from __future__ import annotations

from marketplace.queries import CachedQueries
from perfkit.cache import CacheWarmer

__all__ = ["WARMERS", "add_warmers"]

WARMERS = ("popular_products", "categories", "analytics_summaries", "leaderboards")
POPULAR = 20


def add_warmers(warmer: CacheWarmer, queries: CachedQueries) -> CacheWarmer:
    """Register the marketplace's warmers on ``warmer`` (reading through ``queries``)."""

    async def popular_products() -> int:
        popular = await queries.popular_ids.refresh(POPULAR)  # type: ignore[attr-defined]
        for product_id in popular:
            await queries.product.refresh(product_id)  # type: ignore[attr-defined]
        first = await queries.products_page_ids.refresh(1, 20, None)  # type: ignore[attr-defined]
        # Summaries are filled where missing (tag invalidation keeps them current).
        await queries.cached_summaries(popular)
        await queries.cached_summaries(first.ids)
        return len(popular) + 4

    async def categories() -> int:
        await queries.categories.refresh()  # type: ignore[attr-defined]
        return 1

    async def analytics_summaries() -> int:
        await queries.sales_summary.refresh()  # type: ignore[attr-defined]
        return 1

    async def leaderboards() -> int:
        await queries.top_sellers.refresh(10)  # type: ignore[attr-defined]
        await queries.best_sellers.refresh(10)  # type: ignore[attr-defined]
        await queries.category_leaderboard.refresh(10)  # type: ignore[attr-defined]
        return 3

    for name, func in zip(
        WARMERS, (popular_products, categories, analytics_summaries, leaderboards), strict=True
    ):
        warmer.register(name, func)
    return warmer
