"""Property-based API test: schemathesis generates requests for every operation of
``/api/schema/`` (valid and invalid ones) and sends them over real HTTP to the live server,
authenticated with a token obtained through ``POST /api/v1/token/``. Each answer must be no
server error and must conform to the schema: a status it declares, in the declared content
type and body shape. The figures (operations, requests, failures) are printed.
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode, checks
from schemathesis.schemas import APIOperation

from apps.accounts.roles import Role
from apps.tenants.models import Company
from apps.tenants.services import company_create
from tests.factories import PASSWORD, UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_MODE = 30
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def strategies(operation: APIOperation) -> list[tuple[str, SearchStrategy, int]]:
    """The schema's own examples (a valid webhook among them), then generated requests,
    valid and invalid ones: (name, strategy, how many requests)."""
    examples = operation.get_strategies_from_examples()
    return [
        *([("examples", st.one_of(examples), 2 * len(examples))] if examples else []),
        *(
            (mode.value, operation.as_strategy(generation_mode=mode), EXAMPLES_PER_MODE)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ),
    ]


@pytest.fixture
def credentials(live_server) -> dict[str, str]:
    """A technician's token from the token endpoint (whatever stores tokens), and the API
    key of their company for the webhook; a few incidents and alerts to find."""
    company, api_key = company_create(
        company=Company(
            name="Acme Corp", slug="acme", rate_limit_per_minute=10000, rate_limit_burst=10000
        )
    )
    UserFactory(email="tech@acme.example", role=Role.TECHNICIAN, companies=[company])
    for _ in range(3):
        AlertFactory(company=company, incident=IncidentFactory(company=company))
    answer = requests.post(
        f"{live_server.url}/api/v1/token/",
        json={"username": "tech@acme.example", "password": PASSWORD},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Token {answer.json()['token']}", "X-API-Key": api_key}


def test_every_operation_conforms_to_the_schema(live_server, credentials, capsys):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", timeout=10)
    figures: Counter[str] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        figures["operations"] += 1
        for mode, strategy, examples in strategies(operation):

            @given(case=strategy)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def call(case: schemathesis.Case) -> None:
                headers = {**(case.headers or {}), **credentials}
                response = case.call(base_url=live_server.url, headers=headers, timeout=10)
                figures["requests"] += 1
                figures[f"status {response.status_code}"] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                call()
            except Unsatisfiable:
                # Nothing invalid to send: an integer path parameter is all it takes.
                figures["modes without cases"] += 1
            except (Exception, BaseExceptionGroup) as failure:
                figures["failures"] += 1
                failures.append(f"{operation.label} ({mode}): {failure}")
    with capsys.disabled():
        print("\nschemathesis:", dict(sorted(figures.items())))
    assert not failures, "\n\n".join(failures)
    assert figures["operations"] >= 6
