"""The periodic performance log: one structlog event every PERFORMANCE_LOG_INTERVAL.

Nothing starts on import: call :meth:`PerformanceLog.start` (and :meth:`~PerformanceLog.stop`
on shutdown). The same thread refreshes the sync sources and samples the trends every
``sample_interval`` seconds, so the per-minute cache hit rate and queue depth fill in
without a request having to ask for them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog

from perfkit._errors import ConfigError
from perfkit.metrics.monitor import PerformanceMonitor

__all__ = ["PerformanceLog"]


class PerformanceLog:
    """Logs ``performance`` events for ``monitor`` every ``interval`` seconds, in a thread.

    ``interval`` defaults to the monitor's ``settings.performance_log_interval`` (15 min).
    Response time and slow-request share are over the last interval; totals since start.
    """

    def __init__(
        self,
        monitor: PerformanceMonitor,
        *,
        interval: float | None = None,
        sample_interval: float = 60.0,
        logger: Any = None,
    ) -> None:
        self.monitor = monitor
        self.interval = (
            interval if interval is not None else monitor.settings.performance_log_interval
        )
        if self.interval <= 0 or sample_interval <= 0:
            raise ConfigError("interval and sample_interval must be positive")
        self.sample_interval = min(sample_interval, self.interval)
        self.logger = logger or structlog.get_logger("perfkit.performance")
        self._previous = (0, 0.0, 0)  # requests, seconds, slow at the last event
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def log_once(self) -> dict[str, Any]:
        """Refresh, sample the trends and emit one event now; returns its fields."""
        self.monitor.refresh()
        self.monitor.sample_trends()
        report = self.monitor.report()
        summary = report.requests
        seconds = (summary.avg_ms or 0.0) * summary.requests / 1000
        requests = summary.requests - self._previous[0]
        spent = seconds - self._previous[1]
        slow = summary.slow - self._previous[2]
        self._previous = (summary.requests, seconds, summary.slow)
        fields: dict[str, Any] = {
            "avg_response_ms": round(spent / requests * 1000, 3) if requests else None,
            "requests": requests,
            "total_requests": summary.requests,
            "slow_request_pct": round(slow / requests * 100, 2) if requests else None,
            "errors": summary.errors,
            "memory_rss_bytes": report.memory_rss,
            "memory_ratio": round(report.memory_ratio, 4) if report.memory_ratio else None,
            "cache_hit_rate": report.cache_hit_rate,
            "findings": [finding.metric for finding in report.findings],
        }
        self.logger.info("performance", **fields)
        return fields

    def start(self) -> None:
        """Start the logging thread (a daemon; no-op when already running)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="perfkit-perflog", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread and wait for it (no final event)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        next_log = time.monotonic() + self.interval
        while not self._stop.wait(min(self.sample_interval, max(next_log - time.monotonic(), 0))):
            try:
                if time.monotonic() >= next_log:
                    next_log += self.interval
                    self.log_once()
                else:
                    self.monitor.refresh()
                    self.monitor.sample_trends()
            except Exception as exc:
                self.logger.warning("performance.log_failed", error=repr(exc))
