"""NearCache on its own: bounded by entries and bytes, refusing a value read across an
invalidation, forgetting a tag's entries.

Hand-written: no service involved. The services' L1 tests are generated from
``test_l1_async.py``."""

from __future__ import annotations

import pytest

from perfkit.cache import NearCache
from perfkit.cache._codec import MISSING


def test_near_cache_bounds_and_stale_epoch() -> None:
    near = NearCache(max_entries=3, max_bytes=100, ttl=60)
    near.enabled = True
    for i in range(5):
        near.put(f"k{i}", None, i, [], 10, near.epoch)
    assert len(near) == 3 and near.get("k0", None) is MISSING and near.get("k4", None) == 4
    near.put("big", None, "x", [], 101, near.epoch)
    assert near.get("big", None) is MISSING
    epoch = near.epoch
    near.evict(["unrelated"])  # an invalidation arrived while a value was being read
    near.put("late", None, "stale?", [], 10, epoch)
    assert near.get("late", None) is MISSING
    near.learn({"t": b"1"}, near.epoch)
    near.put("tagged", None, "v", [("t", b"1")], 10, near.epoch)
    assert near.get("tagged", None) == "v"
    near.forget_tags(["t"])
    assert near.get("tagged", None) is MISSING
    with pytest.raises(ValueError, match="max_entries"):
        NearCache(max_entries=0)
