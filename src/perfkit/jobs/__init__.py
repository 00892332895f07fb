"""perfkit.jobs (see docs/jobs.md)."""

__all__: list[str] = []
