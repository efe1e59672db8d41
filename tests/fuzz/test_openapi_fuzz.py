"""schemathesis against the hub's own ``/openapi.json``, served by a real hub.

Every operation is fuzzed (valid and schema-violating inputs) with the admin token and
without a token. Every response must be declared (200 / 4XX / 5XX), carry the declared
content type and match its schema, and no request may cause a 5xx. Trading endpoints
really trade on this module's own simulators.

The operations are listed from ``build_openapi()`` so each gets its own test id; the
schema each test fuzzes is the one the live hub serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from hub.api.openapi import build_openapi
from tests.fuzz._threaded import ThreadedHub, threaded_hub
from tests.timing import units

OPERATIONS = [(m.upper(), p) for p, item in build_openapi()["paths"].items() for m in item]
# An authorised event stream never ends: fuzzed without a token only.
AUTHORISED = [op for op in OPERATIONS if op != ("GET", "/api/stream")]

# Schema-valid is not business-valid: an unknown agent in a signal, a trade the risk engine
# refuses, are rightly 400/422 (docs/protocol.md), so "valid data must be accepted" is off.
BUSINESS: list[schemathesis.CheckFunction] = [positive_data_acceptance]

FUZZ = settings(
    max_examples=25,
    deadline=None,  # time is bounded by max_examples; no timed assertions
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def hub() -> Iterator[ThreadedHub]:
    with threaded_hub() as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(hub: ThreadedHub) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{hub.url}/openapi.json", timeout=units(50))
    # Tokens are the tests' business (with one, without one); unknown query parameters
    # are ignored by design, as by most HTTP APIs, so they are not "negative" data.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    return schema


def cases(api_schema: schemathesis.BaseSchema, method: str, path: str) -> st.SearchStrategy:
    operation = api_schema[path][method]
    return st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )


def test_served_schema_lists_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    served = set()
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        served.add((result.ok().method.upper(), result.ok().path))
    assert served == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), AUTHORISED, ids=[f"{m} {p}" for m, p in AUTHORISED])
def test_with_admin_token_no_5xx_and_responses_match_schema(
    method: str, path: str, hub: ThreadedHub, api_schema: schemathesis.BaseSchema
) -> None:
    auth = {"Authorization": f"Bearer {hub.token}"}

    @FUZZ
    @given(case=cases(api_schema, method, path))
    def fuzz(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(
            base_url=hub.url, headers=auth, timeout=units(100), excluded_checks=BUSINESS
        )
        assert response.status_code < 500, response.text

    fuzz()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_without_token_no_5xx_and_responses_match_schema(
    method: str, path: str, hub: ThreadedHub, api_schema: schemathesis.BaseSchema
) -> None:
    secured = bool(api_schema[path][method].definition.raw.get("security"))

    @FUZZ
    @given(case=cases(api_schema, method, path))
    def fuzz(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(
            base_url=hub.url, timeout=units(100), excluded_checks=[*BUSINESS, ignored_auth]
        )
        assert response.status_code < 500, response.text
        if secured:
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"

    fuzz()
