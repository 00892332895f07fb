"""perfkit.contrib: integrations with the frameworks applications already use.

Each submodule imports its framework (install it first) and is imported only by
applications that use it: :mod:`perfkit.contrib.sqlalchemy` (statement timing for
SQLAlchemy engines) and :mod:`perfkit.contrib.django` (a ``CACHES`` backend, database
timing, the route middleware, the admin's URLs).
"""
