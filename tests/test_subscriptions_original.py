"""The original Eventor's subscription routes, and a receiver written against the original."""

from __future__ import annotations

import base64
import json

import pytest
from delivery.helpers import append, name, wait_status
from delivery.receiver import Receiver
from helpers import raw_request

from eventor.delivery.webhook import WebhookBuilder
from eventor.types import RecordedEvent, SubscriptionConfig

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def sub(client):
    n = name()
    yield n
    client.delete(f"/subscriptions/{n}")


def text(r, status_code: int) -> str:
    assert r.status_code == status_code, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return str(r.text)


def test_create_list_pause_resume_delete(client, stream, sub):
    r = client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": URL})
    assert text(r, 200) == "Created\n"
    listed = {s["name"]: s for s in client.get("/subscriptions").json()}[sub]
    assert set(listed) == {
        "name",
        "stream",
        "url",
        "position",
        "headers",
        "active",
        "pause_reason",
        "created",
        "updated",
    }
    assert (listed["stream"], listed["url"], listed["position"]) == (stream, URL, 0)
    assert (listed["headers"], listed["active"], listed["pause_reason"]) == ({}, True, "")
    assert text(client.post(f"/subscriptions/{sub}/pause"), 200) == "Paused\n"
    listed = {s["name"]: s for s in client.get("/subscriptions").json()}[sub]
    assert (listed["active"], listed["pause_reason"]) == (False, "API request")
    assert text(client.post(f"/subscriptions/{sub}/resume"), 200) == "Resumed\n"
    listed = {s["name"]: s for s in client.get("/subscriptions").json()}[sub]
    assert (listed["active"], listed["pause_reason"]) == (True, "")
    assert text(client.delete(f"/subscriptions/{sub}"), 200) == "Deleted\n"
    assert sub not in {s["name"] for s in client.get("/subscriptions").json()}
    assert text(client.delete(f"/subscriptions/{sub}"), 200) == "Deleted\n"  # idempotent


def test_name_rule_is_case_insensitive(client, stream):
    n = "Mixed_Case_" + name()[4:]
    assert text(client.post(f"/subscriptions/{n}", json={"stream": stream, "url": URL}), 200)
    client.delete(f"/subscriptions/{n}")
    for bad in ("has-dash", "has.dot", "sp%20ace"):
        r = client.post(f"/subscriptions/{bad}", json={"stream": stream, "url": URL})
        assert "invalid subscription name" in text(r, 400)


def test_long_names_that_match_the_rule_are_taken(client, stream):
    """original-api.md sets no length on ^[a-z0-9_]+$ (we stop at 1,000 characters)."""
    long = "long_" + "a" * 150
    assert text(client.post(f"/subscriptions/{long}", json={"stream": stream, "url": URL}), 200)
    assert long in {s["name"] for s in client.get("/subscriptions").json()}
    assert text(client.delete(f"/subscriptions/{long}"), 200)
    r = client.post(f"/subscriptions/{'a' * 1001}", json={"stream": stream, "url": URL})
    assert "invalid subscription name" in text(r, 400)


def test_a_position_past_any_stream_is_a_400(client, stream, sub):
    r = client.post(
        f"/subscriptions/{sub}", json={"stream": stream, "url": URL, "position": 10**20}
    )
    assert "position must be from 0 to" in text(r, 400)
    assert sub not in {s["name"] for s in client.get("/subscriptions").json()}


def test_create_errors_are_text(client, stream, sub):
    client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": URL})
    r = client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": URL})
    assert text(r, 400) == "Subscription with this name already exists"
    other = name()
    cases = [
        ({"url": URL}, "stream is required"),
        ({"stream": stream}, "url is required"),
        ({"stream": stream, "url": ""}, "url is required"),
        ({"stream": stream, "url": URL, "headers": ["a"]}, "Expected `object | null`"),
        ({"stream": stream, "url": URL, "headers": {"A": 1}}, "Expected `str`"),
        ({"stream": stream, "url": URL, "position": -1}, "position must be from 0 to"),
        ({"stream": stream, "url": "nope"}, "http:// or https://"),
    ]
    for body, says in cases:
        assert says in text(client.post(f"/subscriptions/{other}", json=body), 400)
    assert "not valid JSON" in text(client.post(f"/subscriptions/{other}", content=b"{"), 400)
    assert other not in {s["name"] for s in client.get("/subscriptions").json()}


def test_members_match_as_go_matched_them(client, stream, sub):
    """A Go client without json tags sends `Stream`, `Url`: the original's encoding/json took
    member names case-insensitively, a later member over an earlier one, and null as absent."""
    append(client, stream, 3)
    body = (
        b'{"Stream": "%s", "URL": "%s", "Headers": {"X-A": "1"}, "Position": null, "position": 2}'
    )
    r = client.post(f"/subscriptions/{sub}", content=body % (stream.encode(), URL.encode()))
    assert text(r, 200) == "Created\n"
    listed = {s["name"]: s for s in client.get("/subscriptions").json()}[sub]
    assert (listed["stream"], listed["url"]) == (stream, URL)
    assert (listed["headers"], listed["position"]) == ({"X-A": "1"}, 2)
    other = name()
    r = client.post(f"/subscriptions/{other}", json={"stream": stream, "url": URL, "headers": None})
    assert text(r, 200) == "Created\n"
    client.delete(f"/subscriptions/{other}")
    # a name given twice: its last value, and it counts from where it last appears
    body = b'{"stream": "%s", "url": "http://a/", "URL": "http://b/", "url": "%s"}'
    r = client.post(f"/subscriptions/{other}", content=body % (stream.encode(), URL.encode()))
    assert text(r, 200) == "Created\n"
    assert {s["name"]: s for s in client.get("/subscriptions").json()}[other]["url"] == URL
    client.delete(f"/subscriptions/{other}")


def test_unknown_names_on_pause_and_resume_are_400(client):
    for action in ("pause", "resume"):
        r = client.post(f"/subscriptions/{name()}/{action}")
        assert text(r, 400) == "Subscription doesn't exist\n"


def test_original_deliveries_say_json_whatever_the_append_said(client, stream, sub, receiver):
    """curl -d sends application/x-www-form-urlencoded; the original delivered application/json."""
    r = client.post(
        f"/streams/{stream}",
        content=b'{"n": 1}',
        headers={"X-Event-Type": "Ping", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    r = client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": receiver.url})
    assert r.status_code == 200
    [request] = receiver.wait_count(1)
    assert request.headers["content-type"] == "application/json"
    assert request.body == b'{"n": 1}'


def test_a_receiver_written_for_the_original_works_unchanged(client, stream, sub, receiver):
    """It reads X-Event-Position/Uuid/Created, the raw JSON body and its own header."""
    for i in range(4):
        r = client.post(f"/streams/{stream}", json={"n": i}, headers={"X-Event-Type": "Ping"})
        assert r.status_code == 200
    r = client.post(
        f"/subscriptions/{sub}",
        json={
            "stream": stream,
            "url": receiver.url,
            "headers": {"Authorization": "Basic dTpw"},
            "position": 1,
        },
    )
    assert r.status_code == 200
    requests = receiver.wait_count(3)
    originals = client.get(f"/streams/{stream}/0/10").json()
    by_position = {e["position"]: e for e in originals}
    for request, position in zip(requests, (2, 3, 4), strict=True):
        headers = request.headers
        assert headers["content-type"] == "application/json"
        assert int(headers["x-event-position"]) == position
        assert headers["x-event-uuid"] == by_position[position]["uuid"]
        assert headers["x-event-created"] == by_position[position]["created"]
        assert headers["user-agent"].startswith("Eventor")
        assert headers["authorization"] == "Basic dTpw"
        assert request.body == base64.b64decode(by_position[position]["body"])
        assert json.loads(request.body) == {"n": position - 1}
    listed = {s["name"]: s for s in client.get("/subscriptions").json()}[sub]
    assert listed["headers"] == {"Authorization": "Basic dTpw"}
    wait_status(client, sub, lambda s: s["position"] == 4)
    assert {s["name"]: s for s in client.get("/subscriptions").json()}[sub]["position"] == 4


def test_an_original_subscription_s_own_headers_win_as_they_did(client, stream, sub, receiver):
    """The original set a subscription's headers after its own, so theirs went out; a v1
    subscription keeps Eventor's (see test_formats)."""
    client.post(f"/streams/{stream}", content=b"a=1", headers={"X-Event-Type": "Form"})
    own = {"user-agent": "Billing-Gateway/2", "Content-Type": "application/x-www-form-urlencoded"}
    r = client.post(
        f"/subscriptions/{sub}", json={"stream": stream, "url": receiver.url, "headers": own}
    )
    assert r.status_code == 200
    [request] = receiver.wait_count(1)
    assert request.headers["user-agent"] == "Billing-Gateway/2"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["x-event-position"] == "1"  # the others as always
    assert request.body == b"a=1"
    # Sent once each, not beside Eventor's own (the receiver above keeps one of each name).
    config = SubscriptionConfig(stream=stream, url=receiver.url, headers=own, original=True)
    event = client.get(f"/streams/{stream}/0/1").json()[0]
    recorded = RecordedEvent(
        event["uuid"], stream, 1, "Form", b"a=1", "application/json", False, None, event["created"]
    )
    _, headers = WebhookBuilder(sub, config).build([recorded], 1)
    names = [name.lower() for name in headers]
    assert names.count("user-agent") == names.count("content-type") == 1


def test_both_apis_see_the_same_subscriptions(client, stream, sub):
    client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": URL, "position": 3})
    v1 = client.get(f"/v1/subscriptions/{sub}").json()
    assert v1["position"] == 3
    assert v1["config"]["created_by"] == "original"
    assert v1["config"]["max_attempts"] == 5
    # the original schedule waits 4, 8, 16 and 32 s, and the status says so
    assert v1["config"]["backoff"] == {"initial": 4, "max": 32}
    client.post(f"/v1/subscriptions/{sub}/pause")
    listed = {s["name"]: s for s in client.get("/subscriptions").json()}[sub]
    assert listed["active"] is False
    # a v1 name outside the original rule is still reachable from the original routes
    v1_name = f"v1.{sub}-x"
    client.put(f"/v1/subscriptions/{v1_name}", json={"stream": stream, "url": URL})
    assert v1_name in {s["name"] for s in client.get("/subscriptions").json()}
    assert text(client.post(f"/subscriptions/{v1_name}/pause"), 200) == "Paused\n"
    assert text(client.delete(f"/subscriptions/{v1_name}"), 200) == "Deleted\n"
    assert client.get(f"/v1/subscriptions/{v1_name}").status_code == 404


def test_deleting_stops_deliveries(client, stream, sub, receiver):
    append(client, stream, 2)
    client.post(f"/subscriptions/{sub}", json={"stream": stream, "url": receiver.url})
    receiver.wait_count(2)
    client.delete(f"/subscriptions/{sub}")
    append(client, stream, 2)
    with Receiver() as control:
        control_name = name()
        client.post(f"/subscriptions/{control_name}", json={"stream": stream, "url": control.url})
        control.wait_count(4)
        client.delete(f"/subscriptions/{control_name}")
    assert len(receiver.received()) == 2


def test_original_slash_in_subscription_name(client, server, stream):
    """No subscription's name holds a slash: the original routes answer as for an unknown name."""
    path = "/subscriptions/a%2Fb"
    status, _, body = raw_request(server.url, "DELETE", path)
    assert (status, body) == (200, b"Deleted\n")  # deleting is idempotent
    for action in ("pause", "resume"):
        status, _, body = raw_request(server.url, "POST", f"{path}/{action}")
        assert (status, body) == (400, b"Subscription doesn't exist\n")
    body = json.dumps({"stream": stream, "url": URL}).encode()
    status, headers, _ = raw_request(
        server.url, "POST", path, body, {"Content-Type": "application/json"}
    )
    assert status == 400
    assert headers["content-type"].startswith("text/plain")
    assert "a/b" not in {s["name"] for s in client.get("/subscriptions").json()}
    status, headers, _ = raw_request(server.url, "DELETE", "/v1/subscriptions/a%2Fb")
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
