"""The built-in processors, run by a real (in-process) worker against real servers."""

from __future__ import annotations

import csv
import json
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql
from rq.job import Job

from perfkit import JobError, _defaults
from perfkit.cache import default_warmer
from perfkit.jobs import JobService
from perfkit.jobs.builtins import (
    RedisNotificationSink,
    SMTPEmailSender,
    register_email_template,
    register_export_query,
    set_email_sender,
    set_export_directory,
    set_export_pool,
    set_notification_sink,
)
from perfkit.jobs.serializer import JobSerializer
from perfkit.queries import TimedPool
from tests.jobs.conftest import run_burst

QUEUES = ["email", "notifications", "analytics"]


def _result(conn: redis.Redis, job_id: str) -> object:
    job = Job.fetch(job_id, connection=conn, serializer=JobSerializer)
    assert job.get_status().value == "finished", job.get_status()
    return job.return_value()


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk
                self.server.messages.append(body)  # type: ignore[attr-defined]
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def restore_backends() -> Iterator[None]:
    yield
    _defaults.reset()  # the log sender and sink, no export directory or pool


def test_email_with_the_default_log_sender_reports_not_delivered(
    service: JobService, conn: redis.Redis
) -> None:
    register_email_template("welcome", "Hello $name")
    job_id = service.add_email_job("ada@example.com", "Welcome", "welcome", {"name": "Ada"})
    run_burst(conn, QUEUES)
    assert _result(conn, job_id) == {
        "delivered": False,
        "backend": "log",
        "detail": "logged only, not sent",
    }


def test_email_is_sent_over_smtp(
    service: JobService,
    conn: redis.Redis,
    smtp_server: socketserver.ThreadingTCPServer,
    restore_backends: None,
) -> None:
    register_email_template("order-confirmation", "Order $order_id is confirmed.")
    port = smtp_server.server_address[1]
    sender = SMTPEmailSender("127.0.0.1", port, sender="shop@example.com", password="s3cret")
    assert "s3cret" not in repr(sender)
    set_email_sender(sender)
    job_id = service.add_email_job(
        "ada@example.com", "Order Confirmation", "order-confirmation", {"order_id": "123"}
    )
    run_burst(conn, QUEUES)
    assert _result(conn, job_id) == {
        "delivered": True,
        "backend": "smtp",
        "detail": f"127.0.0.1:{port}",
    }
    (raw,) = smtp_server.messages  # type: ignore[attr-defined]
    message = message_from_bytes(raw)
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Order Confirmation"
    assert message.get_payload().strip() == "Order 123 is confirmed."


def test_email_with_unknown_template_or_missing_field_fails_clearly(
    service: JobService, conn: redis.Redis
) -> None:
    register_email_template("needs-name", "Hi $name")
    missing = service.add_email_job("a@example.com", "x", "needs-name", {}, retries=0)
    unknown = service.add_email_job("a@example.com", "x", "no-such-template", {}, retries=0)
    run_burst(conn, QUEUES)
    errors = {job.id: job.error for job in service.failed_jobs("email").jobs}
    assert "needs data field 'name'" in errors[missing]
    assert "no email template named 'no-such-template'" in errors[unknown]


def test_notification_is_delivered_to_redis(
    service: JobService, conn: redis.Redis, restore_backends: None
) -> None:
    url = conn.connection_pool.connection_kwargs
    set_notification_sink(
        RedisNotificationSink(f"redis://{url['host']}:{url['port']}/0", prefix="notes", keep=2)
    )
    ids = [
        service.add_notification_job("user123", "order_shipped", {"tracking": f"T{n}"})
        for n in range(3)
    ]
    run_burst(conn, QUEUES)
    assert _result(conn, ids[0])["delivered"] is True  # type: ignore[index]
    inbox = [json.loads(item) for item in conn.lrange("notes:user123", 0, -1)]
    assert [item["data"]["tracking"] for item in inbox] == ["T2", "T1"]  # newest, capped
    assert inbox[0]["type"] == "order_shipped"


@pytest.fixture
def orders(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric)")
        db.execute(
            "INSERT INTO orders SELECT n, 'customer ' || n, n * 1.5 FROM generate_series(1, 2500) n"
        )
    return database_url


def test_data_export_writes_csv_and_json_lines(
    service: JobService,
    conn: redis.Redis,
    orders: str,
    tmp_path: Path,
    restore_backends: None,
) -> None:
    pool = TimedPool(orders, min_size=0, max_size=2, open=True)
    set_export_pool(pool)
    set_export_directory(tmp_path)
    register_export_query(
        "big_orders", "SELECT id, customer, total FROM orders WHERE total >= %(min)s ORDER BY id"
    )
    register_export_query(
        "orders_table",
        sql.SQL("SELECT {} FROM {} ORDER BY id").format(
            sql.Identifier("id"), sql.Identifier("orders")
        ),
    )
    as_csv = service.enqueue("data.export", {"query": "big_orders", "params": {"min": 3000}})
    as_jsonl = service.enqueue(
        "data.export", {"query": "orders_table", "format": "jsonl", "filename": "all.jsonl"}
    )
    run_burst(conn, QUEUES)
    report = _result(conn, as_csv)
    assert report == {
        "path": str(tmp_path / f"big_orders-{as_csv}.csv"),
        "rows": 501,
        "format": "csv",
    }
    with open(tmp_path / f"big_orders-{as_csv}.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "customer", "total"]
    assert rows[1] == ["2000", "customer 2000", "3000.0"]
    assert len(rows) == 502
    assert _result(conn, as_jsonl)["rows"] == 2500  # type: ignore[index]
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"id": 1}
    assert len(lines) == 2500
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".export-")] == []
    # The statements went through the pool, so they show in its query stats.
    assert pool.stats().pool.requests == 2
    pool.close()


def test_data_export_refuses_paths_and_unregistered_queries(
    service: JobService, conn: redis.Redis
) -> None:
    with pytest.raises(JobError, match="filename"):
        service.enqueue("data.export", {"query": "x", "filename": "../etc/passwd"})
    job_id = service.enqueue("data.export", {"query": "DROP TABLE orders"}, retries=0)
    run_burst(conn, QUEUES)
    (failed,) = service.failed_jobs("analytics").jobs
    assert failed.id == job_id
    assert "no export query named 'DROP TABLE orders'" in failed.error


def test_cache_warming_runs_the_cache_warmers(service: JobService, conn: redis.Redis) -> None:
    warmer = default_warmer()
    calls: list[str] = []

    def warm_products() -> int:
        calls.append("products")
        return 7

    def warm_broken() -> int:
        raise RuntimeError("catalog unavailable")

    warmer.register("jobs-test-products", warm_products)
    warmer.register("jobs-test-broken", warm_broken)
    try:
        ok = service.enqueue("cache.warm", {"names": ["jobs-test-products"]})
        bad = service.enqueue("cache.warm", {"names": ["jobs-test-broken"]}, retries=0)
        run_burst(conn, QUEUES)
    finally:
        warmer._warmers.pop("jobs-test-products", None)
        warmer._warmers.pop("jobs-test-broken", None)
    (result,) = _result(conn, ok)  # type: ignore[misc]
    assert (result["name"], result["ok"], result["keys_written"]) == ("jobs-test-products", True, 7)
    assert calls == ["products"]
    (failed,) = service.failed_jobs("analytics").jobs
    assert failed.id == bad
    assert "jobs-test-broken: RuntimeError" in failed.error or "catalog unavailable" in failed.error
