"""The perfkit reference server: a marketplace on PostgreSQL and Redis.

Users, sellers, categories, products, orders, order items and product views; the seed
guide's optimized queries as endpoints, cached with ``perfkit.cache.cached_query`` and tags,
run through a ``perfkit.queries.AsyncTimedPool``; background jobs (order confirmation email,
sales aggregation, report generation, image thumbnails, data export); cache warmers; and
perfkit's request and compression middleware. Run it with ``perfkit demo``; measure it with
``perfkit bench``.

Modules: :mod:`.schema` (tables, indexes), :mod:`.datagen` (the seeded data generator),
:mod:`.models` (response structs), :mod:`.queries` (the SQL, plain and cached),
:mod:`.app` (the Starlette app), :mod:`.jobs` (processors), :mod:`.warmers`.
"""
