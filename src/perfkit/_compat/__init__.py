"""One door per dependency: every use of a dependency's private or version-dependent API.

Each module here wraps one dependency (``redis``, ``rq``, ``psycopg_pool``, ``sqlalchemy``):
a version gate (a module flag the tests switch off), the fast or private way where the
installed release is known, and the public way otherwise.
Nothing else in perfkit touches those internals (docs/architecture.md lists them).
"""
