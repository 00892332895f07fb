"""A schedule for the periodic tests' worker subprocesses (``--import``)."""

from perfkit.jobs import periodic
from tests.jobs import _processors  # noqa: F401  (registers test.tick)

periodic("test.tick", every=2, payload={"key": "ticks"}, name="test-ticks")
