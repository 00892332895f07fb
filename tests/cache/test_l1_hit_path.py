"""The L1 hit path: no lock, safe next to concurrent writers and invalidations."""

from __future__ import annotations

import threading

from perfkit.cache import NearCache
from perfkit.cache._codec import MISSING


def _filled(count: int) -> NearCache:
    near = NearCache(max_entries=count * 2)
    near.clear(enabled=True)
    for i in range(count):
        near.put(f"ns:k{i}", None, i, [("t", b"g1")], 8, near.epoch)
    near.learn({"t": b"g1"}, near.epoch)
    return near


def test_a_hit_does_not_wait_for_the_lock() -> None:
    near = _filled(1)
    results: list[object] = []
    with near._lock:  # a writer holding the lock (a put, an invalidation push...)
        reader = threading.Thread(target=lambda: results.append(near.get("ns:k0", None)))
        reader.start()
        reader.join(5)
        assert not reader.is_alive()
    assert results == [0]


def test_hits_race_invalidations_without_errors_or_stale_values() -> None:
    near = _filled(200)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                for i in range(200):
                    value = near.get(f"ns:k{i}", None)
                    if value is not MISSING and value != i:
                        raise AssertionError(f"k{i} served {value!r}")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for round_ in range(50):
            # Invalidations that iterate or reorder the dict while readers move entries.
            near.evict_matching("ns:k1*")
            near.evict([f"ns:k{round_}"])
            for i in range(200):
                near.put(f"ns:k{i}", None, i, [("t", b"g1")], 8, near.epoch)
            # Once an eviction returns, no reader gets the evicted value any more.
            near.evict(["ns:k7"])
            assert near.get("ns:k7", None) is MISSING
            near.forget_tags(["t"])
            assert near.get("ns:k8", None) is MISSING
            near.learn({"t": b"g1"}, near.epoch)
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
    assert errors == []
    assert near.hits > 0


def test_an_expired_or_retagged_entry_is_dropped_on_read() -> None:
    near = _filled(2)
    near.learn({"t": b"g2"}, near.epoch)  # the tag moved on
    assert near.get("ns:k0", None) is MISSING
    assert len(near) == 1  # dropped, not only skipped
