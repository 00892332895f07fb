"""perfkit.cache (see docs/cache.md)."""

__all__: list[str] = []
