"""perfkit in a Django project (docs/django.md).

- ``"perfkit.contrib.django.cache.PerfkitCache"``: a ``CACHES`` backend on perfkit's cache.
- ``"perfkit.contrib.django"`` in ``INSTALLED_APPS``: Django's database statements timed
  into perfkit's query statistics (:mod:`perfkit.contrib.django.db`).
- ``"perfkit.contrib.django.middleware.RouteMiddleware"``: request metrics with Django's
  route templates (docs/metrics.md).
- :func:`perfkit.contrib.django.urls.admin_urls`: the admin API and dashboard in
  ``urls.py``.

Importing this package imports nothing from Django: its modules do, when used.
"""
