"""Jobs and results through the in-process app: every transition, every forbidden one, limits and precedence."""

from __future__ import annotations

import json
import re

import pytest

from tests.sandbox.conftest import bearer, create_job, error_of, job_spec, login

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
JOB_FIELDS = {"id", "name", "status", "creator", "worker", "reward", "spec", "created_at", "updated_at", "claimed_at", "finished_at"}
RESULT_FIELDS = {"job_id", "outcome", "output", "result_uri", "sha256", "message", "reported_by", "reported_at"}


@pytest.fixture
def creator(signed_in):
    return signed_in()


@pytest.fixture
def worker(signed_in):
    return signed_in()


@pytest.fixture
def stranger(signed_in):
    return signed_in()


@pytest.fixture
def open_job(api, creator):
    return create_job(api, creator[1])


@pytest.fixture
def claimed_job(api, open_job, worker):
    response = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=worker[1])
    assert response.status_code == 200
    return response.json()


def post_result(api, job_id, headers, **body):
    body.setdefault("outcome", "Completed")
    return api.post(f"/v1/jobs/{job_id}/results", json=body, headers=headers)


# ---- create ----------------------------------------------------------------------------------


def test_create_returns_open_job(api, creator, clock):
    account, headers = creator
    response = api.post("/v1/jobs", json=job_spec(), headers=headers)
    assert response.status_code == 201
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert re.fullmatch(r"job_[A-Za-z0-9_-]{1,64}", job["id"])
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "Open"
    assert job["name"] == "render frames"
    assert job["creator"] == account.address
    assert job["worker"] is None
    assert job["reward"] == {"amount": "12.5", "currency": "LOOM"}
    assert job["created_at"] == "2026-01-01T00:00:00.000000Z"
    assert job["updated_at"] == job["created_at"]
    assert job["claimed_at"] is None
    assert job["finished_at"] is None


def test_create_echoes_spec_with_defaults(api, creator):
    job = create_job(api, creator[1])
    assert job["spec"] == {
        "name": "render frames",
        "image": "ubuntu:22.04",
        "command": ["echo", "hello"],
        "resources": {"cpu": 2, "memory": "4Gi"},
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "timeout": "1h",
    }


def test_create_keeps_numbers_exact(api, creator):
    body = (
        b'{"name": "exact", "image": "alpine", "resources": {"cpu": 0.30000000000000001, "memory": 1E+3},'
        b' "reward": {"amount": 0.100000000000000000}}'
    )
    response = api.post("/v1/jobs", content=body, headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert b'"cpu":0.30000000000000001' in response.content
    assert response.json()["reward"]["amount"] == "0.1"
    assert response.json()["spec"]["resources"]["memory"] == 1000


def test_create_times_strictly_increase(api, creator):
    first = create_job(api, creator[1])
    second = create_job(api, creator[1])
    assert second["created_at"] > first["created_at"]


def test_create_requires_token(api):
    response = api.post("/v1/jobs", json=job_spec())
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (job_spec(name=""), "name"),
        (job_spec(image="Ubuntu"), "image"),
        (job_spec(inputs=[{"uri": "s3://b/k", "path": "relative"}]), "inputs[0].path"),
        (job_spec(resources={"cpu": True, "memory": "1G"}), "resources.cpu"),
        (job_spec(reward={"amount": "0.0000000000000000001"}), "reward.amount"),
        (job_spec(timeout="8d"), "timeout"),
        (job_spec(description=None), "description"),
        (job_spec(colour="red"), "colour"),
        (job_spec(env={"lower": "x"}), "env.lower"),
    ],
)
def test_create_invalid_spec_names_field(api, creator, spec, field):
    response = api.post("/v1/jobs", json=spec, headers=creator[1])
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"]["field"] == field
    assert error["details"]["problems"][0]["field"] == field
    assert field in error["message"]


def test_create_lists_every_problem(api, creator):
    response = api.post("/v1/jobs", json={"name": "", "image": "UP", "extra": 1}, headers=creator[1])
    assert response.status_code == 422
    fields = [problem["field"] for problem in error_of(response)["details"]["problems"]]
    assert fields == ["name", "image", "extra", "resources", "reward"]


@pytest.mark.parametrize("content", [b"[]", b"null", b'"spec"', b"42"])
def test_create_non_object_is_422(api, creator, content):
    response = api.post("/v1/jobs", content=content, headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == ""


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"{'name': 'x'}", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b"\xef\xbb\xbf{}", b"\xc3\x28", b'{"a": "\\ud800"}', b"[1] [2]"],
)
def test_create_body_not_json_is_400(api, creator, content):
    response = api.post("/v1/jobs", content=content, headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


def test_create_body_nested_past_256_is_400(api, creator):
    deep = b'{"name": ' + b"[" * 257 + b"]" * 257 + b"}"
    response = api.post("/v1/jobs", content=deep, headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "256" in error_of(response)["message"]


def test_create_body_nested_256_is_parsed(api, creator):
    deep = b"[" * 256 + b"]" * 256
    response = api.post("/v1/jobs", content=deep, headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 422


def test_brackets_inside_strings_do_not_count(api, creator):
    spec = job_spec(description="[" * 300 + '"\\' + "{" * 300)
    response = api.post("/v1/jobs", json=spec, headers=creator[1])
    assert response.status_code == 201, response.text


def test_body_over_2_mib_is_413(api, creator):
    body = json.dumps(job_spec(description="x" * (2 * 1024 * 1024))).encode()
    response = api.post("/v1/jobs", content=body, headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_body_over_2_mib_without_length_is_413(api, creator):
    def chunks():
        for _ in range(3):
            yield b" " * (1024 * 1024)

    response = api.post("/v1/jobs", content=chunks(), headers={**creator[1], "Content-Type": "application/json"})
    assert response.status_code == 413


# ---- precedence ------------------------------------------------------------------------------


def test_bad_token_beats_oversized_body(api):
    body = b"x" * (3 * 1024 * 1024)
    response = api.post("/v1/jobs", content=body, headers=bearer("expired.or.bad"))
    assert response.status_code == 401


def test_oversized_body_beats_bad_json(api, creator):
    response = api.post("/v1/jobs", content=b"{" * (3 * 1024 * 1024), headers=creator[1])
    assert response.status_code == 413


def test_bad_json_beats_schema(api, creator):
    response = api.post("/v1/jobs", content=b'{"name": ""', headers=creator[1])
    assert response.status_code == 400


def test_bad_idempotency_key_beats_schema(api, creator):
    response = api.post("/v1/jobs", json={"name": ""}, headers={**creator[1], "Idempotency-Key": "has space"})
    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "Idempotency-Key"


def test_schema_beats_not_found(api, worker):
    response = post_result(api, "job_doesnotexist", worker[1], outcome="Done")
    assert response.status_code == 422


def test_output_size_beats_schema(api, worker):
    response = post_result(api, "job_doesnotexist", worker[1], outcome="Done", output="x" * 1_048_577)
    assert response.status_code == 413
    assert error_of(response)["details"]["field"] == "output"


def test_not_found_beats_forbidden(api, stranger):
    response = api.post("/v1/jobs/job_missing/cancel", headers=stranger[1])
    assert response.status_code == 404


def test_forbidden_beats_conflict(api, open_job, creator, stranger):
    assert api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=creator[1]).status_code == 200
    response = api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=stranger[1])
    assert response.status_code == 403
    response = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=creator[1])
    assert response.status_code == 403


# ---- get -------------------------------------------------------------------------------------


def test_get_job_with_etag(api, open_job, stranger):
    response = api.get(f"/v1/jobs/{open_job['id']}", headers=stranger[1])
    assert response.status_code == 200
    assert response.json() == open_job
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    unchanged = api.get(f"/v1/jobs/{open_job['id']}", headers={**stranger[1], "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    weak = api.get(f"/v1/jobs/{open_job['id']}", headers={**stranger[1], "If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304


def test_etag_changes_with_job(api, open_job, creator, stranger):
    etag = api.get(f"/v1/jobs/{open_job['id']}", headers=stranger[1]).headers["etag"]
    api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=creator[1])
    response = api.get(f"/v1/jobs/{open_job['id']}", headers={**stranger[1], "If-None-Match": etag})
    assert response.status_code == 200
    assert response.json()["status"] == "Cancelled"
    assert response.headers["etag"] != etag


def test_get_job_requires_token(api, open_job):
    assert api.get(f"/v1/jobs/{open_job['id']}").status_code == 401


@pytest.mark.parametrize("job_id", ["job_nope", "job_" + "a" * 64, "job_" + "a" * 65, "nope", "job_a.b", "JOB_x"])
def test_get_unknown_job_is_404(api, stranger, job_id):
    response = api.get(f"/v1/jobs/{job_id}", headers=stranger[1])
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# ---- claim -----------------------------------------------------------------------------------


def test_claim_makes_job_in_progress(api, open_job, worker, clock):
    clock.advance(5)
    response = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=worker[1])
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "InProgress"
    assert job["worker"] == worker[0].address
    assert job["claimed_at"] == "2026-01-01T00:00:05.000000Z"
    assert job["updated_at"] == job["claimed_at"]
    assert job["finished_at"] is None
    assert job["created_at"] == open_job["created_at"]


def test_claim_own_job_is_403(api, open_job, creator):
    response = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=creator[1])
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_claim_twice_is_409(api, claimed_job, worker, stranger):
    for headers in (worker[1], stranger[1]):
        response = api.post(f"/v1/jobs/{claimed_job['id']}/claim", headers=headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "job_not_open"


def test_claim_cancelled_job_is_409(api, open_job, creator, worker):
    api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=creator[1])
    response = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=worker[1])
    assert response.status_code == 409
    assert error_of(response)["code"] == "job_not_open"


def test_claim_unknown_job_is_404(api, worker):
    assert api.post("/v1/jobs/job_missing/claim", headers=worker[1]).status_code == 404


def test_claim_requires_token(api, open_job):
    assert api.post(f"/v1/jobs/{open_job['id']}/claim").status_code == 401


def test_claim_body_is_ignored(api, open_job, worker):
    response = api.post(f"/v1/jobs/{open_job['id']}/claim", content=b"not json at all", headers=worker[1])
    assert response.status_code == 200


# ---- cancel ----------------------------------------------------------------------------------


def test_cancel_open_job(api, open_job, creator, clock):
    clock.advance(7)
    response = api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=creator[1])
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "Cancelled"
    assert job["finished_at"] == "2026-01-01T00:00:07.000000Z"
    assert job["worker"] is None


def test_cancel_in_progress_job(api, claimed_job, creator, worker):
    response = api.post(f"/v1/jobs/{claimed_job['id']}/cancel", headers=creator[1])
    assert response.status_code == 200
    assert response.json()["status"] == "Cancelled"
    assert response.json()["worker"] == worker[0].address
    report = post_result(api, claimed_job["id"], worker[1])
    assert report.status_code == 409
    assert error_of(report)["code"] == "job_not_in_progress"


def test_cancel_by_worker_or_stranger_is_403(api, claimed_job, worker, stranger):
    for headers in (worker[1], stranger[1]):
        response = api.post(f"/v1/jobs/{claimed_job['id']}/cancel", headers=headers)
        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"


@pytest.mark.parametrize("outcome", ["Completed", "Failed"])
def test_cancel_finished_job_is_409(api, claimed_job, creator, worker, outcome):
    assert post_result(api, claimed_job["id"], worker[1], outcome=outcome).status_code == 201
    response = api.post(f"/v1/jobs/{claimed_job['id']}/cancel", headers=creator[1])
    assert response.status_code == 409
    assert error_of(response)["code"] == "job_finished"


def test_cancel_twice_is_409(api, open_job, creator):
    api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=creator[1])
    response = api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=creator[1])
    assert response.status_code == 409
    assert error_of(response)["code"] == "job_finished"


# ---- results ---------------------------------------------------------------------------------


def test_report_completed(api, claimed_job, worker, creator, clock):
    clock.advance(60)
    output = {"frames": 120, "ratio": 0.125, "nested": [{"ok": True}, None]}
    response = post_result(api, claimed_job["id"], worker[1], output=output, result_uri="ipfs://bafy", sha256="ab" * 32, message="done")
    assert response.status_code == 201
    result = response.json()
    assert set(result) == RESULT_FIELDS
    assert result == {
        "job_id": claimed_job["id"],
        "outcome": "Completed",
        "output": output,
        "result_uri": "ipfs://bafy",
        "sha256": "ab" * 32,
        "message": "done",
        "reported_by": worker[0].address,
        "reported_at": "2026-01-01T00:01:00.000000Z",
    }
    assert response.headers["location"] == f"/v1/jobs/{claimed_job['id']}/results"
    job = api.get(f"/v1/jobs/{claimed_job['id']}", headers=creator[1]).json()
    assert job["status"] == "Completed"
    assert job["finished_at"] == "2026-01-01T00:01:00.000000Z"


def test_report_failed_with_defaults(api, claimed_job, worker, creator):
    response = post_result(api, claimed_job["id"], worker[1], outcome="Failed")
    assert response.status_code == 201
    result = response.json()
    assert result["outcome"] == "Failed"
    for name in ("output", "result_uri", "sha256", "message"):
        assert result[name] is None
    assert api.get(f"/v1/jobs/{claimed_job['id']}", headers=creator[1]).json()["status"] == "Failed"


def test_report_twice_is_409(api, claimed_job, worker):
    assert post_result(api, claimed_job["id"], worker[1]).status_code == 201
    response = post_result(api, claimed_job["id"], worker[1], outcome="Failed")
    assert response.status_code == 409
    assert error_of(response)["code"] == "job_not_in_progress"


def test_report_by_others_is_403(api, claimed_job, creator, stranger):
    for headers in (creator[1], stranger[1]):
        response = post_result(api, claimed_job["id"], headers)
        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"


def test_report_on_open_job_is_403(api, open_job, worker):
    response = post_result(api, open_job["id"], worker[1])
    assert response.status_code == 403


def test_report_unknown_job_is_404(api, worker):
    assert post_result(api, "job_missing", worker[1]).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "outcome"),
        ({"outcome": "Done"}, "outcome"),
        ({"outcome": "completed"}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"outcome": "Completed", "sha256": "AB" * 32}, "sha256"),
        ({"outcome": "Completed", "sha256": "ab" * 31}, "sha256"),
        ({"outcome": "Completed", "sha256": 5}, "sha256"),
        ({"outcome": "Completed", "result_uri": 5}, "result_uri"),
        ({"outcome": "Completed", "message": ["x"]}, "message"),
        ({"outcome": "Completed", "exit_code": 0}, "exit_code"),
    ],
)
def test_report_schema_errors(api, claimed_job, worker, body, field):
    response = api.post(f"/v1/jobs/{claimed_job['id']}/results", json=body, headers=worker[1])
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == field


def test_report_accepts_any_json_output(api, worker, creator):
    for output in ([1, "two", 3.5], "text", 42, True, {"deep": {"er": [[]]}}):
        job = create_job(api, creator[1])
        api.post(f"/v1/jobs/{job['id']}/claim", headers=worker[1])
        response = post_result(api, job["id"], worker[1], output=output)
        assert response.status_code == 201
        assert response.json()["output"] == output


def test_output_at_size_limit_is_accepted(api, claimed_job, worker):
    output = "x" * (1_048_576 - 2)  # two bytes for the quotes
    response = post_result(api, claimed_job["id"], worker[1], output=output)
    assert response.status_code == 201


def test_output_over_size_limit_is_413(api, claimed_job, worker):
    response = post_result(api, claimed_job["id"], worker[1], output="x" * (1_048_576 - 1))
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["details"]["field"] == "output"


def test_output_size_counts_utf8_bytes(api, claimed_job, worker):
    response = post_result(api, claimed_job["id"], worker[1], output="é" * 524_288)
    assert response.status_code == 413


def test_output_nesting_limit(api, claimed_job, worker):
    too_deep = json.loads("[" * 65 + "]" * 65)
    response = post_result(api, claimed_job["id"], worker[1], output=too_deep)
    assert response.status_code == 422
    assert error_of(response)["details"]["field"] == "output"
    deep_enough = json.loads("[" * 64 + "]" * 64)
    assert post_result(api, claimed_job["id"], worker[1], output=deep_enough).status_code == 201


def test_get_result_by_creator_and_worker(api, claimed_job, worker, creator):
    report = post_result(api, claimed_job["id"], worker[1], output={"n": 1})
    for headers in (creator[1], worker[1]):
        response = api.get(f"/v1/jobs/{claimed_job['id']}/results", headers=headers)
        assert response.status_code == 200
        assert response.json() == report.json()


def test_get_result_order_of_errors(api, claimed_job, worker, creator, stranger):
    missing = api.get("/v1/jobs/job_missing/results", headers=stranger[1])
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"

    foreign = api.get(f"/v1/jobs/{claimed_job['id']}/results", headers=stranger[1])
    assert foreign.status_code == 403

    pending = api.get(f"/v1/jobs/{claimed_job['id']}/results", headers=creator[1])
    assert pending.status_code == 404
    assert "no result yet" in error_of(pending)["message"]


def test_get_result_of_open_job(api, open_job, creator, stranger):
    assert api.get(f"/v1/jobs/{open_job['id']}/results", headers=creator[1]).status_code == 404
    assert api.get(f"/v1/jobs/{open_job['id']}/results", headers=stranger[1]).status_code == 403


# ---- idempotency -----------------------------------------------------------------------------


def test_idempotent_create_returns_first_job(api, creator, clock):
    headers = {**creator[1], "Idempotency-Key": "create-1"}
    first = api.post("/v1/jobs", json=job_spec(), headers=headers)
    clock.advance(10)
    second = api.post("/v1/jobs", json=job_spec(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len(api.get("/v1/jobs").json()["data"]) == 1


def test_idempotency_compares_canonical_json(api, creator):
    headers = {**creator[1], "Idempotency-Key": "canonical", "Content-Type": "application/json"}
    spec = job_spec()
    first = api.post("/v1/jobs", content=json.dumps(spec).encode(), headers=headers)
    reordered = json.dumps(dict(reversed(list(spec.items()))), indent=4).encode()
    second = api.post("/v1/jobs", content=reordered, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"]


def test_reused_key_with_other_body_is_409(api, creator):
    headers = {**creator[1], "Idempotency-Key": "create-2"}
    assert api.post("/v1/jobs", json=job_spec(), headers=headers).status_code == 201
    response = api.post("/v1/jobs", json=job_spec(name="another"), headers=headers)
    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_key_reused"


def test_reused_key_with_invalid_body_is_422(api, creator):
    headers = {**creator[1], "Idempotency-Key": "create-3"}
    assert api.post("/v1/jobs", json=job_spec(), headers=headers).status_code == 201
    assert api.post("/v1/jobs", json=job_spec(name=""), headers=headers).status_code == 422


def test_idempotency_key_scoped_to_address(api, creator, stranger):
    first = api.post("/v1/jobs", json=job_spec(), headers={**creator[1], "Idempotency-Key": "shared"})
    second = api.post("/v1/jobs", json=job_spec(), headers={**stranger[1], "Idempotency-Key": "shared"})
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["creator"] == stranger[0].address


def test_idempotency_key_scoped_to_path(api, creator, worker):
    first = create_job(api, creator[1])
    second = create_job(api, creator[1])
    key = {"Idempotency-Key": "claim-key"}
    assert api.post(f"/v1/jobs/{first['id']}/claim", headers={**worker[1], **key}).status_code == 200
    response = api.post(f"/v1/jobs/{second['id']}/claim", headers={**worker[1], **key})
    assert response.status_code == 200
    assert response.json()["id"] == second["id"]


def test_idempotent_claim_replays_after_state_change(api, open_job, worker, creator):
    headers = {**worker[1], "Idempotency-Key": "claim-once"}
    first = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=headers)
    assert post_result(api, open_job["id"], worker[1]).status_code == 201
    again = api.post(f"/v1/jobs/{open_job['id']}/claim", headers=headers)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.json()["status"] == "InProgress"


def test_failed_request_is_not_stored(api, open_job, creator, worker):
    headers = {**creator[1], "Idempotency-Key": "claim-own"}
    assert api.post(f"/v1/jobs/{open_job['id']}/claim", headers=headers).status_code == 403
    assert api.post(f"/v1/jobs/{open_job['id']}/claim", headers=headers).status_code == 403
    # The key stays free: the creator can use it for the cancel it meant.
    cancel = api.post(f"/v1/jobs/{open_job['id']}/cancel", headers=headers)
    assert cancel.status_code == 200


def test_idempotent_report_returns_first_result(api, claimed_job, worker):
    headers = {**worker[1], "Idempotency-Key": "report-1"}
    body = {"outcome": "Completed", "output": {"n": 1}}
    first = api.post(f"/v1/jobs/{claimed_job['id']}/results", json=body, headers=headers)
    second = api.post(f"/v1/jobs/{claimed_job['id']}/results", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    other = api.post(f"/v1/jobs/{claimed_job['id']}/results", json={"outcome": "Failed"}, headers=headers)
    assert other.status_code == 409
    assert error_of(other)["code"] == "idempotency_key_reused"


def test_idempotency_key_expires_after_a_day(make_client, new_account, clock):
    client = make_client(token_ttl=3 * 24 * 3600)
    headers = {**login(client, new_account()), "Idempotency-Key": "daily"}
    first = client.post("/v1/jobs", json=job_spec(), headers=headers)
    clock.advance(24 * 3600 - 1)
    assert client.post("/v1/jobs", json=job_spec(), headers=headers).json()["id"] == first.json()["id"]
    clock.advance(2)
    later = client.post("/v1/jobs", json=job_spec(name="other"), headers=headers)
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]


def test_empty_idempotency_key_counts_as_absent(api, creator):
    headers = {**creator[1], "Idempotency-Key": ""}
    first = api.post("/v1/jobs", json=job_spec(), headers=headers)
    second = api.post("/v1/jobs", json=job_spec(), headers=headers)
    assert first.json()["id"] != second.json()["id"]


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\there", "ünïcode"])
def test_invalid_idempotency_key_is_400(api, creator, key):
    response = api.post("/v1/jobs", json=job_spec(), headers={**creator[1], "Idempotency-Key": key.encode("utf-8")})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"]["field"] == "Idempotency-Key"


def test_longest_idempotency_key_is_accepted(api, creator):
    key = "!" + "~" * 253 + "a"
    response = api.post("/v1/jobs", json=job_spec(), headers={**creator[1], "Idempotency-Key": key})
    assert response.status_code == 201


def test_key_in_flight_is_409(api, creator):
    from loom_cli.sandbox.errors import ApiError
    from loom_cli.sandbox.idempotency import Reservation

    store = api.app.state.sandbox.idempotency
    reservation = store.begin(creator[0].address, "POST", "/v1/jobs", "in-flight", job_spec())
    assert isinstance(reservation, Reservation)
    with pytest.raises(ApiError) as raised:
        store.begin(creator[0].address, "POST", "/v1/jobs", "in-flight", job_spec())
    assert raised.value.status == 409
    assert raised.value.code == "idempotency_key_reused"
    response = api.post("/v1/jobs", json=job_spec(), headers={**creator[1], "Idempotency-Key": "in-flight"})
    assert response.status_code == 409
    assert "still being processed" in error_of(response)["message"]
    store.release(reservation)
    assert api.post("/v1/jobs", json=job_spec(), headers={**creator[1], "Idempotency-Key": "in-flight"}).status_code == 201

