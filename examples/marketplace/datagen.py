"""The marketplace's data: deterministic (seeded), sized by a scale factor, loaded with COPY.

SF 1 is about 100 000 products and 1 000 000 orders (2.5 million order items, 2 million
product views); SF 0.1 is a tenth of that and loads in seconds. The same ``seed``, ``sf``
and ``anchor`` (the day the data ends, midnight UTC) always give the same rows. Popularity
is skewed (a few products get most views and sales), as in a real shop.

Run ``python -m marketplace.datagen --sf 0.1`` (with ``examples/`` on the path) or let
``perfkit demo`` / ``perfkit bench`` load it.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import msgspec
import psycopg

from marketplace import schema

__all__ = ["Progress", "Sizes", "load", "loaded_meta", "sizes_for"]

CHUNK_ROWS = 5000
HISTORY_DAYS = 365
VIEW_DAYS = 90

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Electronics", ("headphones", "speaker", "charger", "camera", "monitor", "keyboard")),
    ("Home & Kitchen", ("kettle", "pan", "knife", "blender", "mug", "toaster")),
    ("Lighting", ("lamp", "lantern", "bulb", "sconce", "pendant", "nightlight")),
    ("Furniture", ("chair", "table", "shelf", "desk", "stool", "bench")),
    ("Garden", ("planter", "hose", "shovel", "rake", "birdhouse", "sprinkler")),
    ("Sports", ("ball", "racket", "helmet", "mat", "bottle", "glove")),
    ("Toys", ("puzzle", "robot", "kite", "doll", "blocks", "train")),
    ("Books", ("novel", "cookbook", "atlas", "journal", "comic", "guide")),
    ("Clothing", ("jacket", "shirt", "scarf", "hat", "sweater", "dress")),
    ("Shoes", ("sneaker", "boot", "sandal", "loafer", "slipper", "clog")),
    ("Jewelry", ("ring", "necklace", "bracelet", "earring", "brooch", "pendant")),
    ("Beauty", ("soap", "serum", "brush", "mirror", "balm", "lotion")),
    ("Music", ("guitar", "ukulele", "drum", "harmonica", "metronome", "violin")),
    ("Art Supplies", ("easel", "canvas", "pencil", "paintbrush", "sketchbook", "palette")),
    ("Pets", ("collar", "leash", "bowl", "bed", "toy", "brush")),
    ("Office", ("stapler", "notebook", "pen", "organizer", "lamp", "folder")),
    ("Travel", ("backpack", "suitcase", "pillow", "wallet", "adapter", "pouch")),
    ("Outdoors", ("tent", "compass", "flashlight", "hammock", "stove", "knife")),
    ("Baby", ("blanket", "rattle", "bib", "stroller", "onesie", "mobile")),
    ("Crafts", ("yarn", "loom", "beads", "scissors", "thimble", "stencil")),
)
ADJECTIVES = (
    "handmade", "vintage", "modern", "rustic", "compact", "deluxe", "organic", "classic",
    "portable", "minimal", "bright", "cozy", "sturdy", "elegant", "wireless", "foldable",
    "recycled", "artisan", "premium", "everyday",
)  # fmt: skip
MATERIALS = (
    "oak", "walnut", "bamboo", "ceramic", "steel", "brass", "copper", "linen", "wool",
    "leather", "glass", "cotton", "marble", "cork", "silver", "felt",
)  # fmt: skip
COLOURS = ("red", "blue", "green", "black", "white", "amber", "teal", "grey", "ivory", "plum")
FIRST_NAMES = (
    "ada", "ben", "chloe", "dev", "elif", "farah", "gus", "hana", "ivan", "jun", "kofi",
    "lena", "mateo", "nora", "omar", "priya", "quinn", "rosa", "sami", "tariq", "uma",
    "vera", "wes", "xia", "yusuf", "zoe",
)  # fmt: skip
STATUSES = ("delivered",) * 14 + ("shipped",) * 3 + ("pending",) * 2 + ("cancelled",)
# Search words the bench draws from: nouns, adjectives and materials all appear in names.
SEARCH_WORDS = tuple(
    sorted({noun for _, nouns in CATEGORIES for noun in nouns} | set(ADJECTIVES) | set(MATERIALS))
)


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    """How many rows of each table a scale factor gives (order items are about 2.5/order)."""

    users: int
    sellers: int
    categories: int
    products: int
    orders: int
    views: int

    def total(self) -> int:
        """Rows to write, counting order items as 2.5 per order."""
        return (
            self.users
            + self.sellers
            + self.categories
            + self.products
            + self.orders
            + int(self.orders * 2.5)
            + self.views
        )


def sizes_for(sf: float) -> Sizes:
    """The table sizes of scale factor ``sf`` (> 0); tiny factors keep a usable minimum."""
    if not sf > 0:
        raise ValueError(f"scale factor must be > 0, got {sf}")
    return Sizes(
        users=max(50, round(100_000 * sf)),
        sellers=max(10, round(5_000 * sf)),
        categories=len(CATEGORIES),
        products=max(100, round(100_000 * sf)),
        orders=max(200, round(1_000_000 * sf)),
        views=max(500, round(2_000_000 * sf)),
    )


class Progress:
    """A progress bar on a terminal (one line per table otherwise)."""

    def __init__(self, total: int, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.label = ""
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, rows: int, label: str) -> None:
        """Count ``rows`` more rows written for ``label`` (a table name)."""
        self.done += rows
        if not self.enabled:
            return
        now = time.monotonic()
        if label != self.label:
            if not self.tty:
                print(f"loading {label} ...", file=self.stream, flush=True)
            self.label = label
        if self.tty and now - self._drawn > 0.1:
            self._drawn = now
            self._draw()

    def _draw(self) -> None:
        fraction = min(self.done / self.total, 1.0)
        filled = round(30 * fraction)
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(
            f"\r[{bar}] {fraction:4.0%} {self.label:<14} {self.done:>11,} rows "
            f"{time.monotonic() - self.started:5.1f}s"
        )
        self.stream.flush()

    def finish(self, message: str) -> None:
        """End the bar with ``message``."""
        if not self.enabled:
            return
        if self.tty:
            self.done = self.total
            self._draw()
            self.stream.write("\n")
        print(message, file=self.stream, flush=True)


def _cumulative_zipf(n: int, s: float = 1.1) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** s for rank in range(n)))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


class _Generator:
    """Yields each table's rows as COPY text lines, in dependency order."""

    def __init__(self, sizes: Sizes, seed: int, anchor: datetime) -> None:
        self.sizes = sizes
        self.rng = random.Random(seed)
        self.anchor = anchor
        self.prices: list[int] = [0]
        self.product_sellers: list[int] = [0]
        self.view_counts: list[int] = [0] * (sizes.products + 1)
        # Product ids by popularity: the most popular first.
        ranked = list(range(1, sizes.products + 1))
        self.rng.shuffle(ranked)
        self.ranked_products = ranked
        self.product_weights = _cumulative_zipf(sizes.products)

    def _moment(self, days: int) -> datetime:
        seconds = self.rng.random() * days * 86400
        return self.anchor - timedelta(seconds=seconds)

    def users(self) -> Iterator[str]:
        rng = self.rng
        for user_id in range(1, self.sizes.users + 1):
            first = rng.choice(FIRST_NAMES)
            yield (
                f"{user_id}\t{first}.{user_id}@example.com\t{first.title()} {user_id}\t"
                f"{_stamp(self._moment(2 * HISTORY_DAYS))}\n"
            )

    def sellers(self) -> Iterator[str]:
        rng = self.rng
        for seller_id in range(1, self.sizes.sellers + 1):
            owner = rng.randint(1, self.sizes.users)
            name = (
                f"{rng.choice(ADJECTIVES).title()} {rng.choice(MATERIALS).title()} Co {seller_id}"
            )
            rating = round(rng.uniform(3.0, 5.0), 2)
            yield f"{seller_id}\t{owner}\t{name}\t{rating}\t{_stamp(self._moment(HISTORY_DAYS))}\n"

    def categories(self) -> Iterator[str]:
        for category_id, (name, _) in enumerate(CATEGORIES, start=1):
            slug = name.lower().replace(" & ", "-").replace(" ", "-")
            yield f"{category_id}\t{name}\t{slug}\tt\n"

    def views(self) -> list[int]:
        """Draw the product of every view first: products carry their view counts."""
        drawn = self.rng.choices(
            self.ranked_products, cum_weights=self.product_weights, k=self.sizes.views
        )
        for product_id in drawn:
            self.view_counts[product_id] += 1
        return drawn

    def products(self) -> Iterator[str]:
        rng = self.rng
        for product_id in range(1, self.sizes.products + 1):
            category_id = rng.randint(1, len(CATEGORIES))
            noun = rng.choice(CATEGORIES[category_id - 1][1])
            adjective, material = rng.choice(ADJECTIVES), rng.choice(MATERIALS)
            name = f"{adjective.title()} {material} {noun}"
            description = (
                f"A {rng.choice(COLOURS)} {noun} in {material}, {rng.choice(ADJECTIVES)} and "
                f"{rng.choice(ADJECTIVES)}. Ships in {rng.randint(1, 5)} days."
            )
            price = min(max(round(math.exp(rng.gauss(7.8, 0.9))), 199), 250_000)
            seller_id = rng.randint(1, self.sizes.sellers)
            self.prices.append(price)
            self.product_sellers.append(seller_id)
            created = _stamp(self._moment(HISTORY_DAYS))
            yield (
                f"{product_id}\t{seller_id}\t{category_id}\t{name}\t{description}\t{price}\t"
                f"{rng.randint(0, 500)}\t{self.view_counts[product_id]}\t{created}\t{created}\n"
            )

    def orders_and_items(self, items: TextIO) -> Iterator[str]:
        """Order lines; the order item lines go to ``items`` as it runs (a file: at SF 1
        they are 2.5 million lines, too many to keep as strings)."""
        rng = self.rng
        per_order = [rng.choice((1, 1, 2, 2, 3, 3, 4, 4)) for _ in range(self.sizes.orders)]
        picked = iter(
            rng.choices(self.ranked_products, cum_weights=self.product_weights, k=sum(per_order))
        )
        for order_id, count in enumerate(per_order, start=1):
            created = _stamp(self._moment(HISTORY_DAYS))
            total = 0
            for product_id in itertools.islice(picked, count):
                quantity = rng.choice((1, 1, 1, 2, 3))
                price = self.prices[product_id]
                total += quantity * price
                items.write(
                    f"{order_id}\t{product_id}\t{self.product_sellers[product_id]}\t"
                    f"{quantity}\t{price}\t{created}\n"
                )
            user_id = rng.randint(1, self.sizes.users)
            yield f"{order_id}\t{user_id}\t{rng.choice(STATUSES)}\t{total}\t{created}\n"

    def view_lines(self, drawn: Sequence[int]) -> Iterator[str]:
        rng = self.rng
        for product_id in drawn:
            user = rng.randint(1, self.sizes.users) if rng.random() < 0.7 else None
            user_text = "\\N" if user is None else str(user)
            yield f"{product_id}\t{user_text}\t{_stamp(self._moment(VIEW_DAYS))}\n"


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: str,
    lines: Iterable[str],
    progress: Progress,
) -> int:
    written = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= CHUNK_ROWS:
                copy.write("".join(chunk))
                written += len(chunk)
                progress.advance(len(chunk), table)
                chunk = []
        if chunk:
            copy.write("".join(chunk))
            written += len(chunk)
            progress.advance(len(chunk), table)
    return written


def default_anchor() -> datetime:
    """Midnight UTC at the end of today: the data's history ends there."""
    today = datetime.now(UTC).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def loaded_meta(conninfo: str) -> dict[str, str] | None:
    """The metadata of a complete load (``sf``, ``seed``, ``anchor``, ...) or ``None``."""
    with psycopg.connect(conninfo) as conn:
        return schema.loaded_meta(conn)


def load(
    conninfo: str,
    *,
    sf: float = 0.1,
    seed: int = 42,
    anchor: datetime | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> Sizes:
    """(Re)create the marketplace tables in the search path of ``conninfo`` and fill them.

    Rows go in with COPY in one transaction; indexes and foreign keys are built after the
    load, then the tables are analyzed. Returns the sizes loaded.
    """
    sizes = sizes_for(sf)
    anchor = anchor if anchor is not None else default_anchor()
    bar = Progress(sizes.total(), stream, enabled=progress)
    generator = _Generator(sizes, seed, anchor)
    started = time.monotonic()
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")
        schema.drop_tables(conn)
        schema.create_tables(conn)
        _copy(conn, "users", "id, email, name, created_at", generator.users(), bar)
        _copy(conn, "sellers", "id, user_id, name, rating, created_at", generator.sellers(), bar)
        _copy(conn, "categories", "id, name, slug, active", generator.categories(), bar)
        drawn_views = generator.views()
        _copy(
            conn,
            "products",
            "id, seller_id, category_id, name, description, price_cents, stock, views, "
            "created_at, updated_at",
            generator.products(),
            bar,
        )
        with tempfile.TemporaryFile("w+", encoding="utf-8") as items:
            orders = generator.orders_and_items(items)
            _copy(conn, "orders", "id, user_id, status, total_cents, created_at", orders, bar)
            items.seek(0)
            _copy(
                conn,
                "order_items",
                "order_id, product_id, seller_id, quantity, unit_price_cents, created_at",
                items,
                bar,
            )
        _copy(
            conn,
            "product_views",
            "product_id, user_id, viewed_at",
            generator.view_lines(drawn_views),
            bar,
        )
        if progress:
            print("\ncreating indexes ..." if bar.tty else "creating indexes ...", file=bar.stream)
        schema.create_indexes(conn)
        meta = {
            "sf": repr(sf),
            "seed": str(seed),
            "anchor": anchor.isoformat(),
            "loaded_at": datetime.now(UTC).isoformat(),
            "complete": "yes",
        }
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO marketplace_meta (key, value) VALUES (%s, %s)", list(meta.items())
            )
    bar.finish(
        f"loaded SF {sf:g} ({sizes.products:,} products, {sizes.orders:,} orders) "
        f"in {time.monotonic() - started:.1f}s"
    )
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m marketplace.datagen``: load the data into DATABASE_URL."""
    from perfkit import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sf", type=float, default=0.1, help="scale factor (default 0.1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--anchor", type=date.fromisoformat, help="last day of data (UTC)")
    parser.add_argument("--database-url", help="default: DATABASE_URL")
    args = parser.parse_args(argv)
    url = args.database_url or Settings.from_env().database_url
    if not url:
        parser.error("set DATABASE_URL or pass --database-url")
    anchor = None
    if args.anchor is not None:
        anchor = datetime.combine(args.anchor + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    load(url, sf=args.sf, seed=args.seed, anchor=anchor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
