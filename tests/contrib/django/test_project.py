"""The Django test project under tests/contrib/django/project, run by Django's own test
runner against the session's real PostgreSQL and Redis (in a subprocess: Django is
configured once per process, and the project has settings of its own)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

PROJECT = Path(__file__).parent / "project"


@pytest.mark.slow
def test_django_project(database_server_url: str, redis_url: str, namespace: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(database_server_url)
    env = {
        **os.environ,
        "PK_DB_NAME": f"pk_django_{uuid.uuid4().hex[:10]}",  # the runner makes test_<name>
        "PK_DB_HOST": str(params.get("host", "127.0.0.1")),
        "PK_DB_PORT": str(params.get("port", "5432")),
        "PK_DB_USER": str(params.get("user", "postgres")),
        "PK_DB_PASSWORD": str(params.get("password", "")),
        "PK_REDIS_URL": redis_url,
        "PK_NAMESPACE": namespace,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "shop", "--noinput", "-v", "2"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    failures = output.find("\n=====")
    assert result.returncode == 0, output[failures:] if failures >= 0 else output[-6000:]
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    assert ran is not None, output[-3000:]
    assert int(ran[1]) >= 72, output[-3000:]  # every test of the project ran
    assert "OK" in output
