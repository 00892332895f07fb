"""perfkit.contrib: integrations with the frameworks applications already use.

Each submodule imports its framework and is imported only by applications that use it:
:mod:`perfkit.contrib.sqlalchemy` (statement timing for SQLAlchemy engines) and
:mod:`perfkit.contrib.django` (a ``CACHES`` backend, database timing, the admin's URLs).
"""
