"""Schemathesis fuzzes every operation of both OpenAPI documents against the real processes:
no request makes a 5xx, and every answer is one the document describes (status, content
type, body schema, required headers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ACME_READ_KEY, ACME_SERVER_KEY, OPERATOR_KEY, Pipeline

pytestmark = pytest.mark.e2e

KNOWN_SERVICE = "SP-ACME"
KNOWN_ACCOUNT = "XYZ"
# Four runs per operation (free and pinned, positive and negative): about 20 s per app.
EXAMPLES_PER_RUN = 25
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# /readyz answers 503 by design while a component is down, and the fuzzed app runs alone.
PROBES = {"GET /readyz"}


@dataclass(frozen=True)
class Pins:
    """Values that lead the fuzzer past the service check into the handlers' own logic."""

    path_parameters: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def strategy(self, operation: APIOperation, mode: GenerationMode) -> st.SearchStrategy[Case]:
        names = {parameter.name for parameter in operation.iter_parameters()}
        return operation.as_strategy(
            mode,
            path_parameters={k: v for k, v in self.path_parameters.items() if k in names},
            query={k: v for k, v in self.query.items() if k in names},
            headers={k: v for k, v in self.headers.items() if k in names},
        ).map(known_service_in_body)


def known_service_in_body(case: Case) -> Case:
    """Name the known service in a generated event, batch or pixel form."""
    documents = case.body.get("batch") if isinstance(case.body, dict) else None
    for document in [case.body, *(documents if isinstance(documents, list) else [])]:
        if isinstance(document, dict):
            for name in ("service_id", "sdr_s"):
                if name in document:
                    document[name] = KNOWN_SERVICE
    return case


def auth_headers(operation: APIOperation) -> dict[str, str]:
    """A valid key for the scheme the operation asks for, if any."""
    keys = {"serverKey": ACME_SERVER_KEY, "readKey": ACME_READ_KEY, "operatorKey": OPERATOR_KEY}
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            return {"Authorization": f"Bearer {keys[scheme]}"}
    return {}


def fuzz_operation(
    base_url: str, operation: APIOperation, strategy: st.SearchStrategy[Case]
) -> None:
    checks: list[Callable[..., Any]] = list(CONFORMANCE)
    if operation.label not in PROBES:
        checks.append(not_a_server_error)
    headers = auth_headers(operation)

    @settings(
        max_examples=EXAMPLES_PER_RUN,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=10)

    run()


def fuzz(base_url: str, pins: Pins) -> list[str]:
    """Fuzz every operation, free and pinned, positive and negative; report what failed."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for strategy in (operation.as_strategy(mode), pins.strategy(operation, mode)):
                try:
                    fuzz_operation(base_url, operation, strategy)
                except Unsatisfiable:
                    pass  # no parameter of the operation can be made invalid
                except (Exception, FailureGroup) as error:  # report them all, then fail
                    failures.append(f"{operation.label} ({mode.value}): {error}")
    return failures


async def test_collector_answers_every_request_as_its_document_says(pipeline: Pipeline) -> None:
    await pipeline.start_collector()
    pins = Pins(query={"sdr_s": KNOWN_SERVICE}, headers={"Origin": pipeline.collector_url})
    failures = await asyncio.to_thread(fuzz, pipeline.collector_url, pins)
    assert failures == [], "\n\n".join(failures)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_api_answers_every_request_as_its_document_says(pipeline: Pipeline) -> None:
    await pipeline.start_api()
    # An account to find, so the account routes answer 200 too, not only 404.
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{pipeline.api_url}/v1/services/{KNOWN_SERVICE}/accounts/{KNOWN_ACCOUNT}",
            json={"name": "Acme INC"},
            headers={"Authorization": f"Bearer {ACME_SERVER_KEY}"},
        ) as response,
    ):
        assert response.status == 200
    pins = Pins(
        path_parameters={"sid": KNOWN_SERVICE, "aid": KNOWN_ACCOUNT},
        query={"account": KNOWN_ACCOUNT},
    )
    failures = await asyncio.to_thread(fuzz, pipeline.api_url, pins)
    assert failures == [], "\n\n".join(failures)
