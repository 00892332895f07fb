from __future__ import annotations

import zlib

import msgspec
import pytest
import redis

from perfkit import JobError, PayloadError
from perfkit.jobs import JobService, processor
from perfkit.jobs.processor import get_processor, processors
from perfkit.jobs.serializer import JobSerializer
from tests.jobs._processors import Flaky, Mark, flaky, plain_add, record


def test_processor_is_registered_by_name_and_callable_directly() -> None:
    entry = get_processor("test.record")
    assert entry.payload_type is Mark
    assert entry.queue == "testq"
    assert entry.path == "tests.jobs._processors.record"
    assert get_processor(record) is entry
    assert "email.send" in processors()  # the built-ins register on import


def test_processor_validates_mappings_it_is_called_with() -> None:
    entry = get_processor("test.record")
    assert entry.validate({"key": "k", "tag": "t"}) == Mark(key="k", tag="t")
    with pytest.raises(PayloadError, match=r"\$\.count"):
        entry.validate({"key": "k", "tag": "t", "count": "many"})


def test_a_processor_needs_a_struct_payload_parameter() -> None:
    with pytest.raises(JobError, match=r"msgspec\.Struct"):

        @processor("test.untyped", queue="testq")
        def untyped(payload: dict) -> None:  # type: ignore[type-arg]
            pass


def test_a_nested_function_cannot_be_a_processor() -> None:
    with pytest.raises(JobError, match="module-level"):

        @processor("test.nested", queue="testq")
        def nested(payload: Mark) -> None:
            pass


def test_a_name_cannot_be_taken_by_another_function() -> None:
    with pytest.raises(JobError, match="already registered"):
        processor("test.record", queue="testq")(flaky.__wrapped__)  # type: ignore[attr-defined]


def _rq_keys(conn: redis.Redis) -> list[bytes]:
    return list(conn.scan_iter(match="rq:*"))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"key": "k"}, "tag"),  # missing
        ({"key": "k", "tag": 3}, "$.tag"),  # wrong type
        ({"key": "k", "tag": "t", "count": "x"}, "$.count"),
    ],
)
def test_bad_payload_is_refused_naming_the_field_and_nothing_is_enqueued(
    service: JobService, conn: redis.Redis, payload: dict[str, object], field: str
) -> None:
    with pytest.raises(PayloadError) as info:
        service.enqueue("test.record", payload)
    assert field in str(info.value)
    assert "test.record" in str(info.value)
    assert _rq_keys(conn) == []


def test_bad_builtin_payload_is_refused(service: JobService, conn: redis.Redis) -> None:
    with pytest.raises(PayloadError, match=r"\$\.to"):
        service.add_email_job("not-an-address", "Hi", "welcome", {})
    with pytest.raises(PayloadError, match="user_id"):
        service.add_notification_job("", "order_shipped")
    assert _rq_keys(conn) == []


def test_unknown_processor_is_refused_and_nothing_is_enqueued(
    service: JobService, conn: redis.Redis
) -> None:
    with pytest.raises(PayloadError, match=r"no processor named 'test\.nope'"):
        service.enqueue("test.nope", {})
    # A name no test or example registers (the marketplace example registers
    # analytics.sales_aggregation in this same test process).
    with pytest.raises(PayloadError, match=r"analytics\.never_registered"):
        service.add_analytics_job("never_registered", {"period": "daily"})
    assert _rq_keys(conn) == []


def test_unencodable_plain_payload_is_refused(service: JobService, conn: redis.Redis) -> None:
    with pytest.raises(PayloadError, match="not encodable"):
        service.enqueue(plain_add, object(), queue="testq")
    with pytest.raises(JobError, match="queue= is required"):
        service.enqueue(plain_add, [1, 2])
    with pytest.raises(JobError, match="module-level"):
        service.enqueue(lambda: None, queue="testq")
    assert _rq_keys(conn) == []


def test_job_data_is_json_not_pickle(service: JobService, conn: redis.Redis) -> None:
    job_id = service.enqueue("test.record", Mark(key="k", tag="t"))
    data = conn.hget(f"rq:job:{job_id}", "data")
    assert data is not None
    # RQ zlib-compresses the serialized call; inside it is plain JSON.
    assert msgspec.json.decode(zlib.decompress(data)) == [
        "tests.jobs._processors.record",
        None,
        [{"key": "k", "tag": "t", "count": 0}],
        {},
    ]
    assert JobSerializer.loads(JobSerializer.dumps({"a": [1]})) == {"a": [1]}


def test_a_struct_of_another_type_is_refused(service: JobService, conn: redis.Redis) -> None:
    with pytest.raises(PayloadError, match="must be a Mark"):
        service.enqueue("test.record", Flaky(key="k"))
    assert _rq_keys(conn) == []
