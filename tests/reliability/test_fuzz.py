"""Schemathesis against the committed OpenAPI document, on a real server, both stores.

Every operation gets an equal share of ``FUZZ_CASES`` generated cases (1,000 per store in
``make test``; ``make fuzz`` runs many more), with a fixed seed: zero 5xx, and every
response must match its documented status, content type and schema.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import checks

from tests.live import REPORT, LiveServer

# What the contract promises of every response. Left out: positive_data_acceptance (a
# schema-valid body naming unknown departments is rightly a 422) and the negative-data and
# auth probes, which test the generator's guesses more than our contract.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
CASES = int(os.environ.get("FUZZ_CASES", "1000"))


def fuzz_operation(operation: Any, server: LiveServer, examples: int, auth: str) -> list[str]:
    failures: list[str] = []
    calls = 0

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        nonlocal calls
        calls += 1
        response = case.call(
            base_url=server.url, headers={"Authorization": f"Bearer {auth}"}, timeout=30
        )
        try:
            assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
            case.validate_response(response, checks=CHECKS)
        except AssertionError as exc:  # keep going: report every failing operation at once
            failures.append(f"{operation.label}: {str(exc)[:600]}")
        except Exception as exc:  # schemathesis' own check failures
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:600]}")

    run()
    REPORT.setdefault("fuzz cases", {}).setdefault(server.backend, 0)  # type: ignore[attr-defined]
    REPORT["fuzz cases"][server.backend] += calls  # type: ignore[attr-defined]
    return failures


def test_schemathesis_finds_no_5xx_and_no_schema_violation(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # Some operations have few distinct inputs and stop early: ask twice the even share.
    examples = max(5, math.ceil(2 * CASES / len(operations)))
    auth = live.keys["admin"]  # type: ignore[attr-defined]
    failures: list[str] = []
    for operation in operations:
        failures += fuzz_operation(operation, live, examples, auth)
    assert REPORT["fuzz cases"][live.backend] >= min(CASES, 1000)  # type: ignore[attr-defined]
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} distinct failures:\n" + "\n".join(unique[:30])
