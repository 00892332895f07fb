"""MetricsRegistry: values, labels, the cardinality cap, duplicates, exposition."""

from __future__ import annotations

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perfkit import ConfigError, MetricsError
from perfkit.metrics import MetricsRegistry
from perfkit.metrics.registry import OVERFLOW


def families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Parsed exposition: family name -> {(sample name, sorted labels): value}."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_counter_gauge_histogram_values_survive_exposition() -> None:
    registry = MetricsRegistry()
    requests = registry.counter("app_requests_total", "Requests.", ("route",))
    requests.labels("/a").inc()
    requests.labels(route="/a").inc(2)
    requests.labels("/b").inc()
    depth = registry.gauge("app_depth", "Depth.")
    depth.set(7)
    depth.dec(2)
    latency = registry.histogram("app_latency_seconds", "Latency.", buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value)

    parsed = families(registry.exposition())

    assert parsed["app_requests"][("app_requests_total", (("route", "/a"),))] == 3
    assert parsed["app_requests"][("app_requests_total", (("route", "/b"),))] == 1
    assert parsed["app_depth"][("app_depth", ())] == 5
    hist = parsed["app_latency_seconds"]
    assert hist[("app_latency_seconds_bucket", (("le", "0.1"),))] == 2  # le is inclusive
    assert hist[("app_latency_seconds_bucket", (("le", "1.0"),))] == 3
    assert hist[("app_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert hist[("app_latency_seconds_count", ())] == 4
    assert hist[("app_latency_seconds_sum", ())] == pytest.approx(3.65)


def test_label_values_and_help_are_escaped() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("odd_total", 'Help with \\ and\nnewline "quotes".', ("path",))
    counter.labels('/a"b\\c\nd').inc()
    parsed = families(registry.exposition())
    assert parsed["odd"][("odd_total", (("path", '/a"b\\c\nd'),))] == 1


def test_duplicate_registration_returns_the_same_metric() -> None:
    registry = MetricsRegistry()
    first = registry.counter("hits_total", "Hits.", ("route",))
    again = registry.counter("hits_total", "Hits, said differently.", ("route",))
    assert again is first


def test_duplicate_with_another_type_or_labels_raises_a_clear_error() -> None:
    registry = MetricsRegistry()
    registry.counter("hits_total", "Hits.", ("route",))
    with pytest.raises(MetricsError, match="already registered as a counter, not a gauge"):
        registry.gauge("hits_total", "Hits.")
    with pytest.raises(MetricsError, match="already registered with labels"):
        registry.counter("hits_total", "Hits.", ("path",))
    registry.histogram("size_bytes", "Size.", buckets=(1, 2))
    with pytest.raises(MetricsError, match="buckets"):
        registry.histogram("size_bytes", "Size.", buckets=(1, 3))


def test_label_sets_beyond_the_cap_share_one_overflow_child() -> None:
    registry = MetricsRegistry(max_label_sets=3)
    counter = registry.counter("by_path_total", "By path.", ("path", "method"))
    for i in range(10):
        counter.labels(f"/items/{i}", "GET").inc()
    snapshot = counter.snapshot()
    labels = {sample.labels: sample.value for sample in snapshot.samples}
    assert len(labels) == 4  # three real label sets plus the overflow one
    assert labels[(OVERFLOW, OVERFLOW)] == 7
    # An existing label set still gets its own child after the cap is reached.
    counter.labels("/items/0", "GET").inc()
    assert counter.labels("/items/0", "GET").value == 2


def test_wrong_labels_and_names_are_rejected() -> None:
    registry = MetricsRegistry()
    counter = registry.counter("c_total", "C.", ("a", "b"))
    with pytest.raises(MetricsError, match="takes labels"):
        counter.labels("x")
    with pytest.raises(MetricsError, match="missing label"):
        counter.labels(a="x")
    with pytest.raises(MetricsError, match="unknown labels"):
        counter.labels(a="x", b="y", c="z")
    with pytest.raises(MetricsError, match="use labels"):
        counter.inc()
    with pytest.raises(MetricsError, match="only goes up"):
        counter.labels("x", "y").inc(-1)
    with pytest.raises(ConfigError, match="invalid metric name"):
        registry.counter("bad name", "x")
    with pytest.raises(ConfigError, match="invalid label name"):
        registry.counter("ok_total", "x", ("le",))
    with pytest.raises(ConfigError, match="increasing"):
        registry.histogram("h", "x", buckets=(2, 1))


def test_recording_from_many_threads_loses_nothing() -> None:
    registry = MetricsRegistry()
    histogram = registry.histogram("t_seconds", "T.", ("worker",)).labels("w")
    counter = registry.counter("t_total", "T.").labels()
    threads = [
        threading.Thread(
            target=lambda: [(histogram.observe(0.2), counter.inc()) for _ in range(20_000)]
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert histogram.count == 80_000
    assert histogram.sum == pytest.approx(16_000)
    assert counter.value == 80_000


def test_a_failing_collector_is_left_out_of_the_exposition() -> None:
    registry = MetricsRegistry()
    registry.counter("kept_total", "Kept.").inc()

    def broken() -> list:  # type: ignore[type-arg]
        raise ConnectionError("cache is down")

    registry.register_collector(broken)
    parsed = families(registry.exposition())
    assert parsed["kept"][("kept_total", ())] == 1
