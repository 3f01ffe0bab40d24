"""Fuzzing the public API with schemathesis, from the gateway's OpenAPI document, with valid
credentials: an app key, then a tenant key (which reaches the tenant's own endpoints).

Examples, generated inputs, then stateful runs that create resources and read them back
through the links schemathesis infers. Checked: no 5xx, and every answer matches the
document (errors included: StackBE's error body). Stripe, at the network edge, is the
platform's fake, so a connection attempt is answered rather than unreachable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import bearer, new_app, new_tenant

EXAMPLES = 20  # per operation and phase; bounded so the run takes seconds, not minutes
SEED = 20261125  # the same inputs every run, so a failure can be replayed


def _schemathesis(gateway_url: str, key: str, reports: Path) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    return subprocess.run(
        [
            str(st),
            "run",
            f"{gateway_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--phases",
            "examples,fuzzing,stateful",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            str(SEED),
            "--max-failures",
            "20",
            "--request-timeout",
            "10",
            "--report-dir",
            str(reports),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=reports,  # its example database and reports stay out of the checkout
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("credential", ["app key", "tenant key"])
async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    http: httpx.AsyncClient, gateway_url: str, credential: str, tmp_path: Path
) -> None:
    tenant_key = (await new_tenant(http))["apiKey"]
    _, app_key = await new_app(http, tenant_key)
    key = app_key if credential == "app key" else tenant_key
    assert (await http.get("/v1/tenants/me", headers=bearer(tenant_key))).status_code == 200
    run = _schemathesis(gateway_url, key, tmp_path)
    summary = run.stdout[run.stdout.rfind("SUMMARY") :]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    print(summary)  # shown with -s: operations, phases, cases generated
    assert "passed" in summary and "generated" in summary, summary
