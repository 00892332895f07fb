"""perfkit._defaults: every process-wide default in one place, with one reset."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from perfkit import _defaults
from perfkit.cache import RedisService, get_default_cache, set_default_cache
from perfkit.jobs.allowlist import allowed_jobs
from perfkit.jobs.builtins import (
    LogEmailSender,
    LogNotificationSink,
    export,
    mail,
    notify,
    register_email_template,
    set_email_sender,
    set_export_directory,
    set_notification_sink,
)
from perfkit.jobs.periodic import schedule

SRC = Path(__file__).resolve().parents[1] / "src" / "perfkit"

# Module-level mutable names that are not process-wide defaults (caches of derived data,
# locks, hooks with their own reset), by module; anything else must be a slot.
NOT_DEFAULTS = {
    "contrib/django/_shared.py": {"_shared"},  # one set of services per Django CACHES entry
    "contrib/django/db.py": {"_stats"},  # Django's connections' stats, per process
    "otel.py": {"_tracer", "_explicit_provider", "_job_meters"},  # reset by uninstrument()
    "metrics/collectors.py": {"_kinds"},  # a cache of each Struct's field kinds
    "http/routes.py": {"_collapsed", "_mounted"},  # caches of route templates
    "jobs/processor.py": {"_REGISTRY", "_BY_PATH"},  # definitions (see _defaults)
    "admin/core.py": {"_BY_PATH"},  # the route table by path, built at import
    "cache/_aio.py": {"_NO_PAIRS"},  # a shared empty list, never mutated
    "cache/_sync.py": {"_NO_PAIRS"},
    "_defaults.py": {"_slots"},  # the department itself
}


def _module_level_mutables(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        target, value = None, None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        if target is None or not target.startswith("_") or value is None:
            continue
        empty = isinstance(value, ast.Dict | ast.List | ast.Set) and not getattr(
            value, "keys", getattr(value, "elts", None)
        )
        none = isinstance(value, ast.Constant) and value.value is None
        if empty or none:
            names.add(target)
    return names


def test_every_module_level_default_is_a_slot_of_the_defaults_module() -> None:
    strays = {}
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        found = _module_level_mutables(path) - NOT_DEFAULTS.get(relative, set())
        if found:
            strays[relative] = found
    assert strays == {}


def test_reset_puts_the_defaults_back_and_keeps_declarations(
    redis_url: str, tmp_path: Path
) -> None:
    cache = RedisService(redis_url, namespace="defaults-reset")
    try:
        set_default_cache(cache)
        set_email_sender(mail.SMTPEmailSender("127.0.0.1", 1, sender="perfkit@example.com"))
        set_notification_sink(notify.RedisNotificationSink(cache._client))
        set_export_directory(tmp_path)
        register_email_template("defaults-reset", "Hello $name")
        declared = (allowed_jobs(), schedule())

        _defaults.reset()

        fresh = get_default_cache()
        assert fresh is not cache  # a new one, from the environment
        fresh.close()
        assert isinstance(mail._sender.value, LogEmailSender)
        assert isinstance(notify._sink.value, LogNotificationSink)
        assert export._directory.value is None
        # Declarations made at import stay: a module is not imported twice.
        assert "defaults-reset" in mail._templates.value
        assert (allowed_jobs(), schedule()) == declared
    finally:
        cache.close()
        _defaults.reset()


def test_reset_with_declarations_forgets_them_too() -> None:
    # In a process of its own: forgetting declarations would break the tests that follow.
    code = (
        "from perfkit import _defaults\n"
        "from perfkit.jobs import allow_jobs\nfrom perfkit.jobs.allowlist import allowed_jobs\n"
        "allow_jobs('myapp.tasks')\n"
        "_defaults.reset()\n"
        "assert allowed_jobs() == {'myapp.tasks'}, allowed_jobs()\n"
        "_defaults.reset(declarations=True)\n"
        "assert allowed_jobs() == frozenset(), allowed_jobs()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_default_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        _defaults.slot("jobs.email_sender", LogEmailSender)
