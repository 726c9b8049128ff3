"""GET /jobs: filters, keyset paging, ETags, and the 400s for bad query values."""

from __future__ import annotations

import base64

import pytest

from tests.sandbox.conftest import create_job, error_of


def page_ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["data"]]


def walk(client, **params) -> list[str]:
    """Follow next_cursor from the first page to the last and return every id seen."""
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = client.get("/v1/jobs", params=query)
        seen.extend(page_ids(response))
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.fixture
def alice(signed_in):
    return signed_in()


@pytest.fixture
def bob(signed_in):
    return signed_in()


def test_empty_listing(api):
    response = api.get("/v1/jobs")
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


def test_listing_is_newest_first(api, alice):
    ids = [create_job(api, alice[1], name=f"job {n}")["id"] for n in range(5)]
    assert page_ids(api.get("/v1/jobs")) == list(reversed(ids))


def test_default_limit_is_20(api, alice):
    for n in range(21):
        create_job(api, alice[1], name=f"job {n}")
    response = api.get("/v1/jobs")
    assert len(page_ids(response)) == 20
    assert response.json()["next_cursor"] is not None


def test_paging_through_250_jobs(api, alice):
    created = [create_job(api, alice[1], name=f"job {n}")["id"] for n in range(250)]
    for limit in (1, 7, 20, 100):
        seen = walk(api, limit=str(limit))
        assert len(seen) == 250
        assert len(set(seen)) == 250
        assert seen == list(reversed(created))


def test_paging_while_jobs_are_added(api, alice, bob):
    created = [create_job(api, alice[1], name=f"old {n}")["id"] for n in range(60)]
    seen: list[str] = []
    cursor = None
    added: list[str] = []
    while True:
        params = {"limit": "7"}
        if cursor:
            params["cursor"] = cursor
        response = api.get("/v1/jobs", params=params)
        seen.extend(page_ids(response))
        # Each page, someone posts two new jobs and cancels one old one.
        added += [create_job(api, bob[1], name="new")["id"] for _ in range(2)]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    assert not set(added) & set(seen)


def test_cursor_stays_valid_when_its_job_changes(api, alice, bob):
    ids = [create_job(api, alice[1], name=f"job {n}")["id"] for n in range(6)]
    first = api.get("/v1/jobs", params={"limit": "3"})
    boundary = first.json()["data"][-1]["id"]
    api.post(f"/v1/jobs/{boundary}/cancel", headers=alice[1])
    second = api.get("/v1/jobs", params={"limit": "3", "cursor": first.json()["next_cursor"]})
    assert page_ids(second) == list(reversed(ids))[3:]


def test_filter_by_status(api, alice, bob):
    open_job = create_job(api, alice[1])
    claimed = create_job(api, alice[1])
    cancelled = create_job(api, alice[1])
    api.post(f"/v1/jobs/{claimed['id']}/claim", headers=bob[1])
    api.post(f"/v1/jobs/{cancelled['id']}/cancel", headers=alice[1])
    assert page_ids(api.get("/v1/jobs", params={"status": "Open"})) == [open_job["id"]]
    assert page_ids(api.get("/v1/jobs", params={"status": "InProgress"})) == [claimed["id"]]
    assert page_ids(api.get("/v1/jobs", params={"status": "Cancelled"})) == [cancelled["id"]]
    assert page_ids(api.get("/v1/jobs", params={"status": "Completed"})) == []


@pytest.mark.parametrize("form", ["lower", "upper", "checksum"])
def test_filter_by_creator_and_worker_any_case(api, alice, bob, form):
    mine = create_job(api, alice[1])
    create_job(api, bob[1])
    api.post(f"/v1/jobs/{mine['id']}/claim", headers=bob[1])

    def shown(address):
        digits = address[2:]
        return {"lower": "0x" + digits.lower(), "upper": "0x" + digits.upper(), "checksum": address}[form]

    assert page_ids(api.get("/v1/jobs", params={"creator": shown(alice[0].address)})) == [mine["id"]]
    assert page_ids(api.get("/v1/jobs", params={"worker": shown(bob[0].address)})) == [mine["id"]]
    both = api.get("/v1/jobs", params={"creator": shown(alice[0].address), "worker": shown(bob[0].address), "status": "InProgress"})
    assert page_ids(both) == [mine["id"]]


def test_filter_by_ids(api, alice):
    ids = [create_job(api, alice[1])["id"] for _ in range(4)]
    response = api.get("/v1/jobs", params={"ids": f"{ids[0]},{ids[2]},job_unknown,{ids[0]}"})
    assert page_ids(response) == [ids[2], ids[0]]


def test_ids_with_paging(api, alice):
    ids = [create_job(api, alice[1])["id"] for _ in range(5)]
    seen = walk(api, ids=",".join(ids), limit="2")
    assert seen == list(reversed(ids))


def test_hundred_ids_accepted(api):
    ids = ",".join(f"job_{n}" for n in range(100))
    assert api.get("/v1/jobs", params={"ids": ids}).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "1e2"}, "limit"),
        ({"status": "open"}, "status"),
        ({"status": "Done"}, "status"),
        ({"status": ""}, "status"),
        ({"ids": ",".join(f"job_{n}" for n in range(101))}, "ids"),
        ({"ids": "job_1,,job_2"}, "ids"),
        ({"ids": "job_1,abc"}, "ids"),
        ({"ids": ""}, "ids"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"123:not_a_job").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"-5:job_x").decode().rstrip("=")}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"123:job_x:0123456789abcdef").decode().rstrip("=")}, "cursor"),
    ],
)
def test_bad_query_values_are_400(api, params, field):
    response = api.get("/v1/jobs", params=params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"]["field"] == field


@pytest.mark.parametrize("name", ["creator", "worker"])
@pytest.mark.parametrize("value", ["0x123", "alice", "0x52908400098527886E0F7030069857D2E4169Ee7", ""])
def test_bad_address_filter_is_400(api, name, value):
    response = api.get("/v1/jobs", params={name: value})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_address"
    assert error["details"]["field"] == name


def test_limit_bounds_accepted(api, alice):
    for _ in range(3):
        create_job(api, alice[1])
    assert len(page_ids(api.get("/v1/jobs", params={"limit": "1"}))) == 1
    assert len(page_ids(api.get("/v1/jobs", params={"limit": "100"}))) == 3
    assert len(page_ids(api.get("/v1/jobs", params={"limit": "007"}))) == 3


def test_repeated_parameter_is_400(api):
    response = api.get("/v1/jobs?status=Open&status=Failed")
    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "status"


def test_unknown_parameters_are_ignored(api, alice):
    create_job(api, alice[1])
    response = api.get("/v1/jobs", params={"sort": "oldest", "page": "2", "mine": "true"})
    assert len(page_ids(response)) == 1


def test_tampered_cursor_is_400(api, alice):
    for _ in range(3):
        create_job(api, alice[1])
    cursor = api.get("/v1/jobs", params={"limit": "1"}).json()["next_cursor"]
    assert api.get("/v1/jobs", params={"cursor": cursor + "A"}).status_code == 400
    assert api.get("/v1/jobs", params={"cursor": cursor[:-2]}).status_code == 400
    assert api.get("/v1/jobs", params={"cursor": cursor[:-4]}).status_code == 400


def test_cursor_from_another_sandbox_is_400(api, make_client, alice):
    for _ in range(3):
        create_job(api, alice[1])
    cursor = api.get("/v1/jobs", params={"limit": "1"}).json()["next_cursor"]
    other = make_client()
    assert other.get("/v1/jobs", params={"cursor": cursor}).status_code == 400


def test_list_etag_and_304(api, alice, bob):
    job = create_job(api, alice[1])
    first = api.get("/v1/jobs")
    etag = first.headers["etag"]
    same = api.get("/v1/jobs", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    assert same.headers["x-request-id"]

    api.post(f"/v1/jobs/{job['id']}/claim", headers=bob[1])
    changed = api.get("/v1/jobs", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_list_etag_depends_on_query(api, alice):
    create_job(api, alice[1])
    everything = api.get("/v1/jobs").headers["etag"]
    none_open = api.get("/v1/jobs", params={"status": "Failed"}).headers["etag"]
    assert everything != none_open


def test_if_none_match_star(api):
    assert api.get("/v1/jobs", headers={"If-None-Match": "*"}).status_code == 304
