"""Fuzz the admin API from its own openapi.json (schemathesis): the document IS the
validation. No 5xx; every response conforms to the document (status, content type,
headers, JSON schema); every request the document allows is accepted (no 400), every
request it forbids is refused (400 ...; 413 for a body over the limit counts as a miss).

Valid (positive) and invalid (negative) cases for every operation, on an ASGI and a WSGI
host, after real traffic (Redis, PostgreSQL, RQ). Bounded and derandomized: a few examples
each, the same ones every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from perfkit import Perfkit
from perfkit.admin.routes import ROUTES
from tests.admin.conftest import AUTH, make_traffic

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
EXAMPLES = 6


def fuzz(schema: schemathesis.BaseSchema) -> int:
    """Run every operation's cases; returns how many operations were fuzzed."""
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS)

            run()
    return len(operations)


def _has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_the_api_conforms_to_its_openapi_document(
    make_kit: Callable[..., Perfkit], adapter: str
) -> None:
    kit = make_kit()
    make_traffic(kit)
    if adapter == "asgi":
        schema = schemathesis.openapi.from_asgi("/openapi.json", kit.asgi_admin(), headers=AUTH)
    else:
        schema = schemathesis.openapi.from_wsgi("/openapi.json", kit.wsgi_admin(), headers=AUTH)
    # The token as configuration, not a per-call override: negative cases then never
    # count "the token left out" as the invalid part of a request that carries it.
    schema.config.update(headers=AUTH)
    # Every route but openapi.json itself, which schemathesis leaves out.
    assert fuzz(schema) == len(ROUTES) - 1
