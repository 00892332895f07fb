from __future__ import annotations

import msgspec
import pytest

from perfkit import ConfigError, Settings
from perfkit.cache import AsyncRedisService, RedisService
from perfkit.jobs import JobService
from perfkit.queries import TimedPool
from perfkit.settings import PARTS


def test_defaults_follow_the_seed_guide() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.cache_default_ttl == 300
    assert settings.cache_namespace == "perfkit"
    assert settings.cache_warmup_interval == 30 * 60
    assert settings.cache_warmup_delay == 10
    assert (settings.db_pool_max, settings.db_pool_min) == (20, 2)
    assert settings.job_retry_attempts == 3
    assert settings.job_retry_backoff == "exponential"
    assert settings.performance_log_interval == 15 * 60


def test_values_are_read_and_minutes_converted() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://example:6380/2",
            "CACHE_DEFAULT_TTL": " 60 ",
            "CACHE_WARMUP_INTERVAL": "2",
            "REDIS_SOCKET_TIMEOUT": "0.25",
            "JOB_RETRY_BACKOFF": "fixed",
            "CACHE_NAMESPACE": "shop",
        }
    )
    assert settings.redis_url == "redis://example:6380/2"
    assert settings.cache_default_ttl == 60
    assert settings.cache_warmup_interval == 120
    assert settings.redis_socket_timeout == 0.25
    assert settings.job_retry_backoff == "fixed"
    assert settings.cache_namespace == "shop"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CACHE_DEFAULT_TTL", "abc"),
        ("CACHE_DEFAULT_TTL", "-1"),
        ("CACHE_FALLBACK_MAX_ENTRIES", "0"),
        ("REDIS_SOCKET_TIMEOUT", "fast"),
        ("JOB_RETRY_BACKOFF", "linear"),
        ("CACHE_NAMESPACE", "shop*"),
        ("CACHE_NAMESPACE", "app:v2"),
        ("CACHE_NAMESPACE", "app\\v2"),
        ("DB_POOL_MAX", "1.5"),
    ],
)
def test_bad_value_names_variable_and_value(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: value})
    assert variable in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("namespace", ["app:v2", "a b", "", "shop*"])
def test_a_bad_cache_namespace_is_refused_when_settings_are_built(namespace: str) -> None:
    # Not later, on the cache's first use: configuration errors surface at start-up.
    with pytest.raises(ConfigError, match="CACHE_NAMESPACE"):
        Settings(cache_namespace=namespace)


def test_config_error_is_a_value_error() -> None:
    # The errors rule: a bad value is a ValueError, so callers' `except ValueError` keeps working.
    with pytest.raises(ValueError, match="CACHE_NAMESPACE"):
        Settings.from_env({"CACHE_NAMESPACE": "app:v2"})


def test_pool_min_above_max_is_refused() -> None:
    with pytest.raises(ConfigError, match="DB_POOL_MIN"):
        Settings.from_env({"DB_POOL_MIN": "30", "DB_POOL_MAX": "20"})


def test_job_export_dir_is_read() -> None:
    assert Settings.from_env({}).job_export_dir == "exports"
    assert Settings.from_env({"JOB_EXPORT_DIR": "/srv/exports"}).job_export_dir == "/srv/exports"


def test_admin_settings_are_read_and_the_token_is_never_shown() -> None:
    defaults = Settings.from_env({})
    assert defaults.perfkit_admin_token is None
    assert defaults.perfkit_admin_max_body == 64 * 1024
    assert defaults.perfkit_admin_health_open is False
    token = "s3cret-token-0123456789"
    settings = Settings.from_env(
        {
            "PERFKIT_ADMIN_TOKEN": token,
            "PERFKIT_ADMIN_MAX_BODY": "1024",
            "PERFKIT_ADMIN_HEALTH_OPEN": "true",
        }
    )
    assert settings.perfkit_admin_token == token
    assert settings.perfkit_admin_max_body == 1024
    assert settings.perfkit_admin_health_open is True
    assert token not in repr(settings)
    assert "perfkit_admin_token=***" in repr(settings)
    assert "perfkit_admin_max_body=1024" in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERFKIT_ADMIN_TOKEN", "too-short"),
        ("PERFKIT_ADMIN_MAX_BODY", "0"),
        ("PERFKIT_ADMIN_HEALTH_OPEN", "maybe"),
    ],
)
def test_bad_admin_setting_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_a_bad_admin_token_is_not_echoed() -> None:
    with pytest.raises(ConfigError, match="PERFKIT_ADMIN_TOKEN") as raised:
        Settings.from_env({"PERFKIT_ADMIN_TOKEN": "almost-a-secret"})
    assert "almost-a-secret" not in str(raised.value)


def test_repr_hides_url_passwords() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://:s3cret@cache:6379/0",
            "DATABASE_URL": "host=db user=app password=hunter2 dbname=shop",
        }
    )
    shown = repr(settings)
    assert "s3cret" not in shown and "hunter2" not in shown
    assert "redis://:***@cache:6379/0" in shown and "password=***" in shown
    assert settings.redis_url == "redis://:s3cret@cache:6379/0"  # the value itself is intact


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://user:pw@cache.example.com:6380/2",
        "unix:///var/run/redis.sock?db=1",
        "redis+sentinel://:pw@a:26379,b:26379/mymaster/0",
        "redis+cluster://127.0.0.1:7000",
        "redis://[::1]:6379/0",
        "redis://[::1]/0",
        "redis://",
    ],
)
def test_good_redis_urls_are_accepted(url: str) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    "url",
    ["nonsense", "localhost:6379", "http://h/0", "redis://h:abc/0", "redis://h/db", "unix://"],
)
def test_a_bad_redis_url_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^REDIS_URL='.*' is not a Redis URL: "):
        Settings.from_env({"REDIS_URL": url})
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings(redis_url=url)  # built by keyword: checked too


@pytest.mark.parametrize(
    "url", ["postgresql://u:pw@h:5432/db", "host=h port=5432,5433 dbname=x", "postgres://"]
)
def test_good_database_urls_are_accepted(url: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("url", ["nonsense", "postgresql://u:secret@h:port/db", "host=h port=x"])
def test_a_bad_database_url_names_the_variable_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL='.*' is not a PostgreSQL URL") as info:
        Settings.from_env({"DATABASE_URL": url})
    assert "secret" not in str(info.value)


def test_every_setting_belongs_to_a_part() -> None:
    fields = {field.name for field in msgspec.structs.fields(Settings)}
    assert set().union(*PARTS.values()) == fields


# One bad variable of each part but the one built.
BAD = {
    "cache": ("CACHE_DEFAULT_TTL", "-1"),
    "queries": ("DB_POOL_MAX", "many"),
    "jobs": ("JOB_RETRY_BACKOFF", "sometimes"),
    "metrics": ("SLOW_REQUEST_MS", "slow"),
    "admin": ("PERFKIT_ADMIN_TOKEN", "too-short"),
}


def _others_bad(monkeypatch: pytest.MonkeyPatch, part: str) -> None:
    for other, (variable, value) in BAD.items():
        if other != part:
            monkeypatch.setenv(variable, value)


def test_the_cache_reads_and_checks_only_its_own_settings(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    _others_bad(monkeypatch, "cache")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CACHE_NAMESPACE", "own-part")
    with pytest.raises(ConfigError):
        Settings.from_env()  # every part's (the kit's, the CLI's): the first bad one
    service = RedisService.from_env()
    try:
        assert service.namespace == "own-part"
        service.set("key", 1)
        assert service.get("key") == 1
    finally:
        service.delete("key")
        service.close()
    monkeypatch.setenv(*BAD["cache"])
    with pytest.raises(ConfigError, match="CACHE_DEFAULT_TTL='-1'"):
        RedisService.from_env()


async def test_the_async_cache_reads_only_its_own_settings(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    _others_bad(monkeypatch, "cache")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CACHE_NAMESPACE", "own-async-part")
    service = AsyncRedisService.from_env()
    try:
        await service.set("key", 1)
        assert await service.get("key") == 1
    finally:
        await service.delete("key")
        await service.close()


def test_the_pool_reads_and_checks_only_its_own_settings(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    _others_bad(monkeypatch, "queries")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_POOL_MAX", "3")
    with TimedPool.from_env() as pool:
        assert pool.pool.max_size == 3
        assert pool.fetch("SELECT 1") == [(1,)]
    monkeypatch.setenv(*BAD["queries"])
    with pytest.raises(ConfigError, match="DB_POOL_MAX='many'"):
        TimedPool.from_env()


def test_the_job_service_reads_and_checks_only_its_own_settings(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    _others_bad(monkeypatch, "jobs")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("JOB_RETRY_ATTEMPTS", "5")
    service = JobService.from_env()
    assert service.retry_attempts == 5
    monkeypatch.setenv(*BAD["jobs"])
    with pytest.raises(ConfigError, match="JOB_RETRY_BACKOFF='sometimes'"):
        JobService.from_env()
