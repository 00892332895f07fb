"""perfkit's settings, read from the environment in this one place.

Every field is read from the upper-cased environment variable of the same name
(``cache_default_ttl`` from ``CACHE_DEFAULT_TTL``). Durations are seconds, except
the variables the seed guide defines in minutes (``CACHE_WARMUP_INTERVAL``,
``PERFORMANCE_LOG_INTERVAL``), which are converted to seconds on reading.

A part built from the environment (``RedisService.from_env()``, ``TimedPool.from_env()``,
``JobService.from_env()`` ...) reads and checks only the variables of its :data:`PARTS`
entry: a bad ``PERFKIT_ADMIN_TOKEN`` stops the admin API, not the cache.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from perfkit._errors import ConfigError

__all__ = [
    "PARTS",
    "Part",
    "Settings",
    "check_cache_namespace",
    "check_database_url",
    "check_redis_url",
    "redacted_url",
]

Seconds = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]

# Variables given in minutes in the environment (as in the seed guide), kept in seconds.
_MINUTE_VARIABLES = frozenset({"CACHE_WARMUP_INTERVAL", "PERFORMANCE_LOG_INTERVAL"})
# Fields whose value is never shown by repr().
_SECRET_FIELDS = frozenset({"perfkit_admin_token"})


# A password in a URL (``scheme://user:password@host``) or a libpq conninfo (``password=...``).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*(@)|(password=)\S+")


def redacted_url(url: str) -> str:
    """``url`` (or a libpq conninfo) with its password replaced by ``***``, for messages."""
    return _URL_PASSWORD.sub(lambda m: f"{m[1]}***{m[2]}" if m[1] else f"{m[3]}***", url)


_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def _redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL (None: nothing perfkit can tell before connecting)."""
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES:
        return f"the scheme must be one of {', '.join(s + '://' for s in _REDIS_SCHEMES)}"
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    hosts = parts.netloc.rpartition("@")[2]
    for host in hosts.split(",") if hosts else ():  # none: redis-py's localhost:6379
        if host.startswith("[") and host.endswith("]"):
            continue  # an IPv6 address without a port
        name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
        if not name or (colon and not port.isdigit()):
            return f"{host!r} is not host[:port]"
    if parts.scheme == "redis+sentinel":
        return None  # its path names the service: checked when the cache reads it
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"the database number {db!r} is not a number"
    return None


def check_redis_url(url: str, variable: str = "REDIS_URL") -> str:
    """``url`` if it is a Redis URL perfkit can use, else ``ConfigError`` naming
    ``variable`` (password hidden)."""
    problem = _redis_url_problem(url)
    if problem is not None:
        raise ConfigError(f"{variable}={redacted_url(url)!r} is not a Redis URL: {problem}")
    return url


def check_database_url(url: str, variable: str = "DATABASE_URL") -> str:
    """``url`` if libpq can read it (a ``postgresql://`` URL or ``key=value`` conninfo),
    else ``ConfigError`` naming ``variable`` (password hidden)."""
    # Imported here: reading settings should not load the driver unless a URL is given.
    from psycopg import ProgrammingError, conninfo

    problem: str | None = None
    try:
        params = conninfo.conninfo_to_dict(url)
    except ProgrammingError as exc:
        problem = redacted_url(str(exc).strip())
    else:
        ports = str(params.get("port", "")).split(",")
        if not all(port.isdigit() for port in ports if port):
            problem = "its port is not a number"
    if problem is not None:
        raise ConfigError(
            f"{variable}={redacted_url(url)!r} is not a PostgreSQL URL or conninfo: {problem}"
        )
    return url


# A namespace prefixes every key ("<namespace>:<key>") and is matched by SCAN patterns.
_NAMESPACE_FORBIDDEN = frozenset("*?[]\\: \t\r\n")


def check_cache_namespace(namespace: object, variable: str = "CACHE_NAMESPACE") -> str:
    """``namespace`` if it can prefix cache keys, else ``ConfigError`` naming ``variable``:
    a non-empty string without glob characters, backslash, ``:`` or whitespace."""
    if (
        not isinstance(namespace, str)
        or not namespace
        or any(c in _NAMESPACE_FORBIDDEN for c in namespace)
    ):
        raise ConfigError(
            f"{variable}={namespace!r} is not a cache namespace: it must be a non-empty "
            "string without glob characters, ':' or whitespace"
        )
    return namespace


def _shown(name: str, value: object) -> str:
    """``repr(value)`` with secrets and URL passwords replaced by ``***``."""
    if name in _SECRET_FIELDS and value is not None:
        return "***"
    if isinstance(value, str) and name.endswith("_url"):
        return repr(redacted_url(value))
    return repr(value)


Part = Literal["cache", "queries", "jobs", "metrics", "admin"]

# The settings each part reads (a field may serve several: the job service connects to
# REDIS_URL too). Every field of Settings is in at least one (tests/test_settings.py).
_REDIS_CONNECTION = ("redis_url", "redis_connect_timeout")
PARTS: dict[Part, frozenset[str]] = {
    "cache": frozenset(
        {
            *_REDIS_CONNECTION,
            "cache_default_ttl",
            "cache_namespace",
            "cache_warmup_interval",
            "cache_warmup_delay",
            "cache_fallback_max_entries",
            "cache_fallback_ttl",
            "cache_lock_ttl",
            "cache_lock_wait",
            "redis_socket_timeout",
            "redis_retry_max_delay",
        }
    ),
    "queries": frozenset(
        {
            "database_url",
            "db_pool_max",
            "db_pool_min",
            "db_pool_idle_timeout",
            "db_pool_timeout",
            "db_pool_max_waiting",
            "db_statement_timeout",
            "slow_query_ms",
            "db_explain",
            "db_explain_analyze",
            "db_explain_per_minute",
            "db_explain_interval",
            "db_explain_timeout",
            "n_plus_one_threshold",
        }
    ),
    "jobs": frozenset(
        {
            *_REDIS_CONNECTION,
            "job_retry_attempts",
            "job_retry_backoff",
            "job_retry_base_delay",
            "job_retry_jitter",
            "failed_job_ttl",
            "job_export_dir",
        }
    ),
    "metrics": frozenset({"slow_request_ms", "performance_log_interval"}),
    "admin": frozenset(
        {"perfkit_admin_token", "perfkit_admin_max_body", "perfkit_admin_health_open"}
    ),
}


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """All of perfkit's configuration. Build it with :meth:`from_env` or by keyword."""

    # Cache (perfkit.cache)
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_default_ttl: NonNegativeInt = 5 * 60
    cache_namespace: str = "perfkit"  # checked by check_cache_namespace
    cache_warmup_interval: Seconds = 30 * 60
    cache_warmup_delay: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    cache_fallback_max_entries: PositiveInt = 10_000
    cache_fallback_ttl: Seconds = 60.0
    cache_lock_ttl: Seconds = 10.0
    cache_lock_wait: Seconds = 5.0
    redis_socket_timeout: Seconds = 0.5
    redis_connect_timeout: Seconds = 0.5
    redis_retry_max_delay: Seconds = 30.0

    # Queries (perfkit.queries)
    database_url: str | None = None
    db_pool_max: PositiveInt = 20
    db_pool_min: NonNegativeInt = 2
    db_pool_idle_timeout: Seconds = 30.0
    db_pool_timeout: Seconds = 30.0
    db_pool_max_waiting: NonNegativeInt = 0
    db_statement_timeout: Seconds | None = None
    slow_query_ms: Annotated[float, msgspec.Meta(ge=0)] = 100.0
    db_explain: bool = False
    db_explain_analyze: bool = False
    db_explain_per_minute: PositiveInt = 6
    db_explain_interval: Seconds = 3600.0
    db_explain_timeout: Seconds = 2.0
    n_plus_one_threshold: NonNegativeInt = 10  # 0: N+1 detection off; 1 is refused

    # Jobs (perfkit.jobs)
    job_retry_attempts: NonNegativeInt = 3
    job_retry_backoff: Literal["exponential", "fixed"] = "exponential"
    job_retry_base_delay: Seconds = 1.0
    job_retry_jitter: bool = False
    failed_job_ttl: PositiveInt = 7 * 24 * 3600
    job_export_dir: Annotated[str, msgspec.Meta(min_length=1)] = "exports"

    # Metrics (perfkit.metrics)
    slow_request_ms: Annotated[float, msgspec.Meta(ge=0)] = 1000.0
    performance_log_interval: Seconds = 15 * 60

    # Admin API (perfkit.admin)
    perfkit_admin_token: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    perfkit_admin_max_body: PositiveInt = 64 * 1024
    perfkit_admin_health_open: bool = False

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks: never print a secret.
        shown = (
            f"{name}={_shown(name, value)}" for name, value in msgspec.structs.asdict(self).items()
        )
        return f"Settings({', '.join(shown)})"

    def __post_init__(self) -> None:
        check_redis_url(self.redis_url)
        check_cache_namespace(self.cache_namespace)
        if self.database_url is not None:
            check_database_url(self.database_url)
        if self.db_pool_min > self.db_pool_max:
            raise ConfigError(
                f"DB_POOL_MIN={self.db_pool_min} is larger than DB_POOL_MAX={self.db_pool_max}"
            )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, part: Part | None = None
    ) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``), or with ``part``
        only that part's (:data:`PARTS`; the others keep their defaults).

        Raises :class:`ConfigError` naming the variable and its value when one is bad.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            if part is not None and field.name not in PARTS[part]:
                continue
            variable = field.name.upper()
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            try:
                value = msgspec.convert(raw.strip(), field.type, strict=False)
            except msgspec.ValidationError as exc:
                shown = "***" if field.name in _SECRET_FIELDS else repr(raw)
                raise ConfigError(f"{variable}={shown} is not valid: {exc}") from exc
            if variable in _MINUTE_VARIABLES:
                value = value * 60
            values[field.name] = value
        return cls(**values)
