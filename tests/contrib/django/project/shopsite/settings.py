"""A small Django project using perfkit, configured from the environment the test suite
sets: PK_DB_* (PostgreSQL), PK_REDIS_URL, PK_NAMESPACE."""

import os

SECRET_KEY = "perfkit-django-test-project"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "shopsite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["perfkit.contrib.django", "shop", "cachesuite"]
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PK_DB_NAME"],
        "USER": os.environ.get("PK_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("PK_DB_PASSWORD", ""),
        "HOST": os.environ.get("PK_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("PK_DB_PORT", "5432"),
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 4}},
    }
}

REDIS_URL = os.environ["PK_REDIS_URL"]
NAMESPACE = os.environ["PK_NAMESPACE"]


def custom_key_func(key, key_prefix, version):
    return "CUSTOM-" + "-".join([key_prefix, str(version), key])


def _cache(**extra):
    options = {"NAMESPACE": NAMESPACE, **extra.pop("OPTIONS", {})}
    return {
        "BACKEND": "perfkit.contrib.django.cache.PerfkitCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": options,
        **extra,
    }


CACHES = {
    # The backend's defaults: any picklable object, signed (Django's own semantics).
    "default": _cache(),
    "prefix": _cache(OPTIONS={"SERIALIZER": "pickle"}, KEY_PREFIX="cacheprefix"),
    "v2": _cache(OPTIONS={"SERIALIZER": "pickle"}, VERSION=2),
    "custom_key": _cache(OPTIONS={"SERIALIZER": "pickle"}, KEY_FUNCTION=custom_key_func),
    "custom_key2": _cache(
        OPTIONS={"SERIALIZER": "pickle"}, KEY_FUNCTION="shopsite.settings.custom_key_func"
    ),
    "short": _cache(OPTIONS={"SERIALIZER": "pickle"}, TIMEOUT=1),
    "forever": _cache(OPTIONS={"SERIALIZER": "pickle"}, TIMEOUT=None),
    # The opt-in: MessagePack values that come back unchanged, no pickle.
    "msgspec": _cache(KEY_PREFIX="mp", OPTIONS={"SERIALIZER": "msgspec"}),
    # With perfkit's in-process L1 near cache.
    "l1": _cache(KEY_PREFIX="l1", OPTIONS={"L1": True}),
    # Redis is down from the start: served from perfkit's memory fallback.
    "down": {
        "BACKEND": "perfkit.contrib.django.cache.PerfkitCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"NAMESPACE": NAMESPACE + "-down"},
    },
}
