"""The project's perfkit kit over the Django cache's own service (its admin is mounted in
shopsite/urls.py)."""

from django.core.cache import caches

from perfkit import Perfkit

ADMIN_TOKEN = "perfkit-test-admin-token-0123456789"

kit = Perfkit(cache=caches["default"].service, token=ADMIN_TOKEN)
