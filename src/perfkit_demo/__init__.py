"""``perfkit demo`` and ``perfkit bench``: the reference marketplace on this machine.

A package of its own beside the library, shipped by the same distribution: it uses
perfkit, and perfkit never imports it (an import-linter contract checks that); the two
commands join ``perfkit``'s command line through the ``perfkit.commands`` entry points.

Both run the example app of ``examples/marketplace`` (a source checkout) on the servers
of DATABASE_URL / REDIS_URL, or on embedded PostgreSQL and Valkey started for the run
(the ``embedded`` extra) and stopped at its end. The parsers are built here; everything
heavy is imported only when a command runs.
"""

from perfkit_demo.commands import add_bench, add_demo

__all__ = ["add_bench", "add_demo"]
