"""Fuzz the admin API from its own openapi.json (schemathesis): no 5xx, every response
conforms to the document (status, content type, headers, JSON schema).

Valid (positive) and invalid (negative) cases for every operation, on both adapters,
after real traffic. Bounded (a few examples each) to keep the suite fast.
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
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from perfkit import Perfkit
from perfkit.admin import ROUTES
from tests.admin.conftest import AUTH, make_traffic

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
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
                case.call_and_validate(headers=AUTH, checks=CHECKS)

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
    # Every route but openapi.json itself, which schemathesis leaves out.
    assert fuzz(schema) == len(ROUTES) - 1
