"""perfkit.metrics (see docs/metrics.md)."""

__all__: list[str] = []
