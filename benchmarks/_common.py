"""Shared by the benchmarks: find a Redis server the way the tests do; result rows."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from perfkit.embedded import EmbeddedRedis, redis_answers
from perfkit.settings import redacted_url

LOOPBACK_REDIS = "redis://127.0.0.1:6379/0"


def with_db(url: str, db: int) -> str:
    """``url`` with its Redis DB number replaced by ``db``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@contextmanager
def redis_server(url: str | None, db: int) -> Iterator[str]:
    """The URL (on DB ``db``) of a Redis server: ``url``, else ``PERFKIT_TEST_REDIS_URL`` /
    ``REDIS_URL``, else 127.0.0.1:6379, else an embedded Valkey started for the run."""
    candidates = [url] if url else []
    candidates += [os.environ.get(n) or "" for n in ("PERFKIT_TEST_REDIS_URL", "REDIS_URL")]
    for candidate in [c for c in candidates if c] + [LOOPBACK_REDIS]:
        if redis_answers(candidate):
            yield with_db(candidate, db)
            return
        if candidate == url:
            raise SystemExit(f"no Redis answers at {redacted_url(url)}")
    with EmbeddedRedis() as server:
        print(f"no Redis found: started an embedded Valkey at {server.url}")
        yield with_db(server.url, db)


@dataclass
class Row:
    """One printed benchmark line (and JSON record)."""

    name: str
    baseline: str
    perfkit: str
    ratio: float | None
    target: str
    verdict: str  # PASS, MISS, or "info" for context rows
    detail: dict[str, Any] = field(default_factory=dict)


def rotated_orders(names: list[str], rounds: int) -> list[list[str]]:
    """A rotated (and every other round reversed) order of the contenders for each round."""
    orders = []
    for r in range(rounds):
        shift = r % len(names)
        order = names[shift:] + names[:shift]
        orders.append(order[::-1] if r % 2 else order)
    return orders


Samples = dict[str, list[float]]


def interleave(
    calls: dict[str, Callable[[], Any]],
    rounds: int,
    batch: int,
    clock: Callable[[], float] = time.perf_counter,
) -> Samples:
    """Seconds per call of each contender, one sample per round (after one warm-up round),
    the contenders taking turns in rotated order so that all see the same machine.
    ``clock``: ``time.process_time`` measures CPU instead of elapsed time."""
    samples: Samples = {name: [] for name in calls}
    for index, order in enumerate(rotated_orders(list(calls), rounds + 1)):
        for name in order:
            call = calls[name]
            start = clock()
            for _ in range(batch):
                call()
            if index:
                samples[name].append((clock() - start) / batch)
    return samples


def dropping_tracer_provider() -> Any:
    """An OpenTelemetry SDK ``TracerProvider`` with a ``BatchSpanProcessor`` (what
    docs/otel.md sets up) whose exporter drops the spans: tracing's whole cost in this
    process, without a collector."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    return provider


# The keys RQ keeps per queue level (registries included); a perfkit worker also makes the
# queue's :high and :low levels.
_RQ_QUEUE_KEYS = ("queue", "wip", "started", "finished", "failed", "canceled", "scheduled",
                  "deferred")  # fmt: skip


def delete_rq_keys(conn: Any, job_ids: list[str], queue_names: list[str]) -> None:
    """Delete the jobs, results and queue keys a benchmark run created (only those)."""
    pipe = conn.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.unlink(f"rq:job:{job_id}", f"rq:results:{job_id}", f"rq:executions:{job_id}")
    for name in queue_names:
        for level in (name, f"{name}:high", f"{name}:low"):
            pipe.srem("rq:queues", f"rq:queue:{level}")
            for template in _RQ_QUEUE_KEYS:
                pipe.unlink(f"rq:{template}:{level}")
            pipe.unlink(f"rq:workers:{level}", f"rq:clean_registries:{level}")
    pipe.execute()
