"""schemathesis against the hub's own ``/openapi.json``, served by a real hub.

Every operation is fuzzed (valid and schema-violating inputs) with the admin token, with a
trade token limited to agent_1, and without a token; JWTs with random claims must be
refused (401) or accepted, never a 5xx. Every response must be declared (200 / 4XX /
5XX), carry the declared content type and match its schema, and no request may cause a
5xx. Trading endpoints (dry runs and lift-halt among them) really trade on this module's
own simulators.

The operations are listed from ``build_openapi()`` so each gets its own test id; the
schema each test fuzzes is the one the live hub serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from hub.api.openapi import build_openapi
from tests.fuzz._threaded import ThreadedHub, threaded_hub
from tests.hubkit import hub_config
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


LIMITED = "fuzz-limited-token-0123"  # trade, agent_1 only
JWT_SECRET = "fuzz-jwt-secret-0123456789abcdef0123"
TOKENS = "auth: {tokens: [{name: limited, role: trade, secret_env: T_LIMITED, agents: [agent_1]}]}"


@pytest.fixture(scope="module")
def hub() -> Iterator[ThreadedHub]:
    env = {"T_LIMITED": LIMITED, "HUB_JWT_SECRET": JWT_SECRET}
    with threaded_hub(hub_config(TOKENS), env) as running:
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


@pytest.mark.parametrize(("method", "path"), AUTHORISED, ids=[f"{m} {p}" for m, p in AUTHORISED])
def test_with_a_token_limited_to_agent_1_no_5xx_and_responses_match_schema(
    method: str, path: str, hub: ThreadedHub, api_schema: schemathesis.BaseSchema
) -> None:
    auth = {"Authorization": f"Bearer {LIMITED}"}

    @FUZZ
    @given(case=cases(api_schema, method, path))
    def fuzz(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(
            base_url=hub.url, headers=auth, timeout=units(100), excluded_checks=BUSINESS
        )
        assert response.status_code < 500, response.text

    fuzz()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_CLAIM = _JSON | st.sampled_from(["read", "trade", "admin", "agent_1", ["agent_1"], ["x y"]])


@FUZZ
@given(sub=_CLAIM, role=_CLAIM, agents=_CLAIM)
def test_jwts_with_any_claims_are_accepted_or_401_never_a_5xx(
    hub: ThreadedHub, sub: Any, role: Any, agents: Any
) -> None:
    claims = {"sub": sub, "role": role, "agents": agents, "exp": int(time.time()) + 600}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    r = httpx.get(f"{hub.url}/api/agents", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 401), r.text
    if r.status_code == 200:
        assert isinstance(sub, str) and sub and role in ("read", "trade", "admin")


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
