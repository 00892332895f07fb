"""perfkit.queries (see docs/queries.md)."""

__all__: list[str] = []
