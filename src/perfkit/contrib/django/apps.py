"""The app config: ``INSTALLED_APPS = [..., "perfkit.contrib.django"]`` times Django's
database statements into perfkit's query statistics."""

from __future__ import annotations

from django.apps import AppConfig


class PerfkitConfig(AppConfig):  # type: ignore[misc]  # Django has no type information
    """Installs :class:`~perfkit.contrib.django.db.QueryTimer` on Django's connections."""

    name = "perfkit.contrib.django"
    label = "perfkit"
    verbose_name = "perfkit"

    def ready(self) -> None:
        from perfkit.contrib.django import db

        db.install()
