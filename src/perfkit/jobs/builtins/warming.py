"""The built-in ``cache.warm`` processor: runs the cache warmers of :mod:`perfkit.cache`."""

from __future__ import annotations

import msgspec

from perfkit._errors import JobError, PermanentJobError
from perfkit.cache.warmer import WarmResult, default_warmer
from perfkit.jobs.processor import processor

__all__ = ["CacheWarmPayload", "warm_cache"]


class CacheWarmPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload of ``cache.warm``: the warmers to run (all registered ones when None)."""

    names: list[str] | None = None


@processor("cache.warm", queue="analytics")
def warm_cache(payload: CacheWarmPayload) -> list[WarmResult]:
    """Run the process-wide cache warmers (``perfkit.cache.default_warmer()``).

    Raises :class:`JobError` (so the job is retried) when any warmer failed, and
    :class:`PermanentJobError` (no retries) for an unknown name; the results are the
    job's return value otherwise.
    """
    try:
        results = default_warmer().warm(payload.names)
    except ValueError as exc:  # unknown warmer names
        raise PermanentJobError(f"cache.warm: {exc}") from exc
    failed = [result for result in results if not result.ok]
    if failed:
        detail = "; ".join(f"{result.name}: {result.error}" for result in failed)
        raise JobError(f"{len(failed)} of {len(results)} cache warmer(s) failed: {detail}")
    return results
