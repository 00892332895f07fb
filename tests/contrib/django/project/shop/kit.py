"""The project's perfkit kit over the Django cache's own service and Django's database (its
admin is mounted in shopsite/urls.py)."""

from django.core.cache import caches

from perfkit import Perfkit
from perfkit.contrib.django.db import DjangoDatabase

ADMIN_TOKEN = "perfkit-test-admin-token-0123456789"

kit = Perfkit(cache=caches["default"].service, pool=DjangoDatabase(), token=ADMIN_TOKEN)
