"""schemathesis against the published OpenAPI schema, with a valid admin token: requests generated from every
operation's schema (valid ones, and invalid ones), and none may get a 5xx."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(service) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    with service.client(None) as c:
        raw = c.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    auth = {"Authorization": f"Bearer {service.tokens['admin']}"}
    calls, failures, unsatisfiable = [], [], []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in raw["paths"].values())
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=12, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def call(case) -> None:  # noqa: ANN001
                r = case.call(base_url=service.url, headers=auth, timeout=60)
                calls.append((op.label, r.status_code))
                if r.status_code >= 500:
                    failures.append(f"{op.label} ({mode.value}): {r.status_code} {r.text[:300]}")

            try:
                call()
            except Unsatisfiable:
                # no invalid request exists for an operation without parameters or body (GET /v1/runs)
                assert mode == GenerationMode.NEGATIVE, op.label
                unsatisfiable.append(op.label)
    assert not failures, "\n".join(failures[:20])
    assert len(calls) > 5 * len(operations)  # requests were really sent
    answered = {label for label, status in calls if 200 <= status < 300}
    assert len(answered) > len(operations) / 2, answered  # with the token: most operations answered some request
    assert not [c for c in calls if c[1] == 401], "the token was refused"
    assert len(unsatisfiable) < len(operations) / 2, unsatisfiable
    with service.client("viewer") as c:
        assert c.get("/ready").json()["status"] == "ready"
