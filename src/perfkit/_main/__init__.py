"""``perfkit demo`` and ``perfkit bench``: the reference marketplace on this machine.

Both run the example app of ``examples/marketplace`` (a source checkout) on the servers
of DATABASE_URL / REDIS_URL, or on embedded PostgreSQL and Valkey started for the run
(the ``embedded`` extra) and stopped at its end. The parsers are built here; everything
heavy is imported only when a command runs.
"""

from perfkit._main.commands import add_bench, add_demo

__all__ = ["add_bench", "add_demo"]
