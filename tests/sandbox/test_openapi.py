"""The OpenAPI document: the committed copy is current, it covers every route, and real responses match it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from loom_cli.sandbox.openapi import build_openapi, render_openapi
from loom_cli.sandbox.routes import PREFIX, ROUTES
from tests.sandbox.conftest import create_job, job_spec, login

COMMITTED = Path(__file__).resolve().parents[2] / "loom_cli" / "sandbox" / "openapi.json"
DOCUMENT_URI = "urn:loom:openapi"


def test_committed_document_is_current():
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(), (
        "loom_cli/sandbox/openapi.json is stale; regenerate it with "
        "`python -m loom_cli.sandbox.openapi > loom_cli/sandbox/openapi.json`"
    )


def test_served_document_matches_committed(api):
    response = api.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_document_lists_exactly_the_routes():
    documented = {(method.upper(), path) for path, item in build_openapi()["paths"].items() for method in item}
    served = {(method, path) for method, path, _ in ROUTES}
    assert documented == served


def test_every_operation_documents_errors_and_request_id():
    for path, item in build_openapi()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(status.startswith("2") for status in responses), (method, path)
            assert any(status.startswith("4") for status in responses), (method, path)
            for status, response in responses.items():
                assert "X-Request-Id" in response["headers"], (method, path, status)
            assert operation["operationId"]


def test_component_schemas_are_valid_json_schema():
    for schema in build_openapi()["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_job_spec_schema_is_shared_with_cli():
    from loom_cli.spec.model import spec_json_schema

    expected = spec_json_schema()
    expected.pop("$schema")
    expected.pop("$id")
    assert build_openapi()["components"]["schemas"]["JobSpec"] == expected


# ---- responses conform to the document -------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry().with_resource(DOCUMENT_URI, Resource.from_contents(build_openapi(), default_specification=DRAFT202012))


def conforms(registry: Registry, schema_name: str, instance: object) -> None:
    validator = jsonschema.Draft202012Validator({"$ref": f"{DOCUMENT_URI}#/components/schemas/{schema_name}"}, registry=registry)
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(instance)]
    assert errors == [], errors


def test_responses_match_schemas(api, new_account, registry):
    creator, worker = new_account(), new_account()

    nonce = api.get("/v1/auth/nonce", params={"address": creator.address})
    conforms(registry, "Nonce", nonce.json())
    creator_headers = login(api, creator)
    worker_headers = login(api, worker)
    conforms(registry, "Me", api.get("/v1/auth/me", headers=creator_headers).json())

    job = create_job(api, creator_headers, resources={"cpu": 0.5, "memory": 1024, "gpu": {"count": 1, "model": "a100"}})
    conforms(registry, "Job", job)
    claimed = api.post(f"/v1/jobs/{job['id']}/claim", headers=worker_headers).json()
    conforms(registry, "Job", claimed)
    result = api.post(f"/v1/jobs/{job['id']}/results", json={"outcome": "Completed", "output": [1, {"a": None}]}, headers=worker_headers)
    conforms(registry, "Result", result.json())
    conforms(registry, "Result", api.get(f"/v1/jobs/{job['id']}/results", headers=creator_headers).json())

    cancelled = api.post(f"/v1/jobs/{create_job(api, creator_headers)['id']}/cancel", headers=creator_headers).json()
    conforms(registry, "Job", cancelled)
    conforms(registry, "JobPage", api.get("/v1/jobs", params={"limit": "1"}).json())


def test_error_bodies_match_schema(api, new_account, registry):
    headers = login(api, new_account())
    errors = [
        api.get("/v1/jobs", params={"limit": "0"}),
        api.get("/v1/auth/me"),
        api.post("/v1/jobs", json=job_spec(name=""), headers=headers),
        api.get("/v1/jobs/job_missing", headers=headers),
        api.delete("/v1/jobs"),
        api.get("/v1/nowhere"),
        api.get("/v1/auth/nonce"),
    ]
    for response in errors:
        assert response.status_code >= 400
        conforms(registry, "Error", response.json())
