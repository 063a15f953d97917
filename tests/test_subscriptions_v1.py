"""The v1 subscription routes over HTTP: validation, status, lifecycle, persistence."""

from __future__ import annotations

import json
import signal
import sqlite3

import httpx
import pytest
from delivery.helpers import FAST, append, name, status, subscribe, wait_status
from delivery.receiver import Receiver, Reply
from helpers import histogram
from standardwebhooks import Webhook

URL = "http://127.0.0.1:9/hook"  # nothing listens: fine for routes that deliver nothing


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def sub(client):
    n = name()
    yield n
    client.delete(f"/v1/subscriptions/{n}")


def problem(r: httpx.Response, status_code: int) -> str:
    assert r.status_code == status_code, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status_code
    detail: str = body["detail"]
    return detail


def test_put_creates_then_updates(client, stream, sub):
    r = client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL})
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == sub
    assert body["status"] == "active"
    assert (body["position"], body["head"], body["lag"], body["attempts"]) == (0, 0, 0, 0)
    assert body["last_error"] is None
    assert body["paused_reason"] is None
    assert body["config"] == {
        "stream": stream,
        "url": URL,
        "headers": {},
        "event_types": None,
        "batch_size": 1,
        "timeout": 10.0,
        "max_attempts": 5,
        "backoff": {"initial": 1.0, "max": 300.0},
        "on_exhausted": "pause",
        "secret_set": False,
        "created_by": "v1",
    }
    r = client.put(
        f"/v1/subscriptions/{sub}",
        json={"stream": stream, "url": URL + "2", "batch_size": 7, "start": "end"},
    )
    assert r.status_code == 200
    assert r.json()["config"]["url"] == URL + "2"
    assert r.json()["config"]["batch_size"] == 7
    assert r.json()["created"] == body["created"]
    names = [s["name"] for s in client.get("/v1/subscriptions").json()["subscriptions"]]
    assert sub in names


def test_the_list_filtered_by_stream(client, stream):
    other, later = f"{stream}-other", f"{stream}-later"  # `later` has no event yet
    names = [name() for _ in range(4)]
    try:
        for sub, to in zip(names, (stream, other, stream, later), strict=True):
            r = client.put(f"/v1/subscriptions/{sub}", json={"stream": to, "url": URL})
            assert r.status_code == 201, r.text

        def listed(query: str) -> list[str]:
            r = client.get(f"/v1/subscriptions{query}")
            assert r.status_code == 200, r.text
            return [s["name"] for s in r.json()["subscriptions"]]

        assert listed(f"?stream={stream}") == sorted([names[0], names[2]])
        assert listed(f"?stream={later}") == [names[3]]
        assert listed("?stream=nobody-subscribes-here") == []
        assert set(names) <= set(listed(""))
        assert set(names) <= set(listed("?stream="))  # empty is absent, as for every parameter
        for bad in ("a/b", "..", "x" * 1001):
            r = client.get("/v1/subscriptions", params={"stream": bad})
            assert "invalid stream name" in problem(r, 400)
    finally:
        for sub in names:
            client.delete(f"/v1/subscriptions/{sub}")


def test_options_given_as_null_take_their_defaults(client, stream, sub):
    """As left out: a client that sends every field of its model sends the unset ones null."""
    options = ("headers", "start", "event_types", "batch_size", "timeout", "max_attempts")
    nulls = dict.fromkeys((*options, "backoff", "on_exhausted", "secret"))
    r = client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL, **nulls})
    assert r.status_code == 201, r.text
    left_out = client.put(f"/v1/subscriptions/{sub}2", json={"stream": stream, "url": URL})
    assert r.json()["config"] == left_out.json()["config"]
    client.delete(f"/v1/subscriptions/{sub}2")
    # On an update too: null puts an option back to its default.
    changed = {"stream": stream, "url": URL, "batch_size": 9, "backoff": {"initial": 2, "max": 3}}
    assert client.put(f"/v1/subscriptions/{sub}", json=changed).json()["config"]["batch_size"] == 9
    r = client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL, **nulls})
    assert r.status_code == 200
    assert r.json()["config"] == left_out.json()["config"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"url": ""}, "url is required"),
        ({"url": "ftp://x/y"}, "http:// or https://"),
        ({"url": "http://"}, "with a host"),
        ({"stream": "bad name"}, "invalid stream name"),
        ({"stream": None}, "Expected `str`"),
        ({"batch_size": 0}, "batch_size must be between 1 and 1000"),
        ({"batch_size": 1001}, "batch_size must be between 1 and 1000"),
        ({"batch_size": "2"}, "Expected `int | null`, got `str`"),
        ({"timeout": 0}, "timeout must be more than 0"),
        ({"timeout": 301}, "at most 300"),
        ({"max_attempts": -1}, "max_attempts must be 0"),
        ({"max_attempts": 2**70}, "between 1 and 1,000,000"),  # no client's integer holds it
        ({"backoff": {"initial": 0}}, "backoff.initial must be more than 0"),
        ({"backoff": {"initial": 5, "max": 1}}, "backoff.max must be at least"),
        ({"backoff": {"start": 1}}, "unknown field `start`"),
        ({"on_exhausted": "drop"}, 'on_exhausted must be "pause" or "park"'),
        ({"secret": "hunter2"}, "whsec_"),
        ({"secret": "whsec_not base64!"}, "1 to 1024"),
        ({"secret": "whsec_"}, "1 to 1024"),
        ({"event_types": []}, "event_types is empty"),
        ({"event_types": [""]}, "1-200 characters"),
        ({"event_types": ["a\nb"]}, "without control characters"),  # could never match
        ({"url": "http://x/" + "a" * 2048}, "longer than 2048"),
        ({"headers": {"Bad Header": "x"}}, "not a valid HTTP header name"),
        ({"headers": {"Host": "evil"}}, "cannot be set"),
        ({"headers": {"X-A": "a\r\nB: c"}}, "control character"),
        ({"headers": {"X-B": "b", "X-A": 1}}, 'Expected `str`, got `int` - at `$.headers["X-A"]`'),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "are the same header"),
        ({"start": "middle"}, 'start must be "beginning", "end" or a position'),
        ({"start": -1}, "start must be"),
        ({"start": 10**20}, "start must be"),  # past SQLite's integers: a 400, not a 500
        ({"colour": "red"}, "unknown field `colour`"),
    ],
)
def test_every_option_is_validated(client, stream, sub, change, says):
    body = {"stream": stream, "url": URL, **change}
    detail = problem(client.put(f"/v1/subscriptions/{sub}", json=body), 400)
    assert says in detail
    assert client.get(f"/v1/subscriptions/{sub}").status_code == 404  # nothing was made


def test_bad_bodies_and_names(client, stream, sub):
    assert "not valid JSON" in problem(client.put(f"/v1/subscriptions/{sub}", content=b"{"), 400)
    # Valid JSON whose number no field can hold is said to be that, not broken JSON.
    huge = b'{"stream": "%s", "url": "%s", "timeout": 1e400}' % (stream.encode(), URL.encode())
    detail = problem(client.put(f"/v1/subscriptions/{sub}", content=huge), 400)
    assert detail == "invalid subscription: Number out of range - at `$.timeout`"
    long = b'{"position": ' + b"9" * 5000 + b"}"
    assert client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL}).is_success
    detail = problem(client.post(f"/v1/subscriptions/{sub}/reset", content=long), 400)
    assert detail == "invalid reset: Integer value out of range - at `$.position`"
    # Broken, with such a number before the break: broken JSON all the same.
    for broken in (b"[1e400,", b'{"position": 1e400', huge[:-1], long[:-1] + b","):
        detail = problem(client.post(f"/v1/subscriptions/{sub}/reset", content=broken), 400)
        assert detail.startswith("the body is not valid JSON"), (broken[:40], detail)
    assert "required field `url`" in problem(
        client.put(f"/v1/subscriptions/{sub}", json={"stream": stream}), 400
    )
    r = client.put(
        f"/v1/subscriptions/{sub}", content=b"stream=x", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    utf16 = {"content-type": "application/json; charset=utf-16"}
    body = json.dumps({"stream": stream, "url": URL})
    r = client.put(f"/v1/subscriptions/{sub}", content=body.encode("utf-16"), headers=utf16)
    assert "UTF-8" in problem(r, 415)
    detail = problem(client.put("/v1/subscriptions/a!b", json={"stream": stream, "url": URL}), 400)
    assert "invalid subscription name" in detail
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/pause"), ("GET", "/parked")):
        r = client.request(method, f"/v1/subscriptions/a!b{path}")
        assert "invalid subscription name" in problem(r, 400)


def test_a_status_config_can_be_sent_back_as_read(client, stream, sub, receiver):
    """Read-modify-write: the `config` of a status is a valid PUT body, read-only parts and all."""
    path = f"/v1/subscriptions/{sub}"
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = {"stream": stream, "url": receiver.url, "secret": secret, "batch_size": 3}
    assert client.put(path, json=body).status_code == 201
    config = client.get(path).json()["config"]
    assert config["secret_set"] is True
    assert config["created_by"] == "v1"
    r = client.put(path, json={**config, "timeout": 2.5})
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {**config, "timeout": 2.5}  # the secret was kept
    assert client.put(path, json={**config, "secret_set": "yes"}).status_code == 400
    append(client, stream, 1)
    [request] = receiver.wait_count(1)
    Webhook(secret).verify(request.body, request.headers)  # signed with the secret kept


def test_if_match_and_if_none_match_make_a_put_update_or_create_only(client, stream, sub):
    body = {"stream": stream, "url": URL}
    path = f"/v1/subscriptions/{sub}"
    assert "If-Match: *" in problem(client.put(path, json=body, headers={"If-Match": "*"}), 412)
    assert client.get(path).status_code == 404  # If-Match: * never creates
    assert client.put(path, json=body, headers={"If-None-Match": "*"}).status_code == 201
    moved = {**body, "url": URL + "/elsewhere"}
    problem(client.put(path, json=moved, headers={"If-None-Match": "*"}), 412)
    assert client.get(path).json()["url"] == URL  # If-None-Match: * never updates
    r = client.put(path, json=moved, headers={"If-Match": "*"})
    assert (r.status_code, r.json()["url"]) == (200, URL + "/elsewhere")
    # Subscriptions have no ETags: a tag never matches, and so never fails If-None-Match.
    problem(client.put(path, json=body, headers={"If-Match": '"v1", W/"v2"'}), 412)
    assert client.get(path).json()["url"] == URL + "/elsewhere"
    assert client.put(path, json=body, headers={"If-None-Match": 'W/"v1"'}).status_code == 200
    both = {"If-Match": "*", "If-None-Match": "*"}
    for headers in ({"If-Match": "v1"}, both):  # not a tag; both at once
        r = client.put(path, json=body, headers=headers)
        problem(r, 400)
        assert r.json()["type"] == "urn:eventor:problem:invalid-parameter"


def test_update_cannot_move_to_another_stream(client, stream, sub):
    client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL})
    r = client.put(f"/v1/subscriptions/{sub}", json={"stream": stream + "x", "url": URL})
    assert "stream cannot change" in problem(r, 400)
    assert status(client, sub)["config"]["stream"] == stream


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("GET", "/deliveries"),
        ("GET", "/parked"),
        ("POST", "/parked/replay"),
    ],
)
def test_unknown_subscription_is_a_404_problem(client, method, path):
    r = client.request(method, f"/v1/subscriptions/{name()}{path}")
    assert "does not exist" in problem(r, 404)


def test_reset_validation(client, stream, sub):
    assert "does not exist" in problem(
        client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 1}), 404
    )
    client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL})
    assert "Expected `int` >= 0" in problem(
        client.post(f"/v1/subscriptions/{sub}/reset", json={"position": -1}), 400
    )
    assert "required field `position`" in problem(
        client.post(f"/v1/subscriptions/{sub}/reset", json={}), 400
    )
    assert "<= 4611686018427387904" in problem(
        client.post(f"/v1/subscriptions/{sub}/reset", json={"position": 10**20}), 400
    )
    # the refused reset changed nothing: the subscription still answers and updates
    assert client.get(f"/v1/subscriptions/{sub}").json()["position"] == 0
    r = client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL})
    assert r.status_code == 200
    assert "limit" in problem(client.get(f"/v1/subscriptions/{sub}/deliveries?limit=0"), 400)


def test_delete_is_204_and_then_404(client, stream, sub):
    client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL})
    r = client.delete(f"/v1/subscriptions/{sub}")
    assert r.status_code == 204
    assert r.content == b""
    assert client.delete(f"/v1/subscriptions/{sub}").status_code == 404


def test_stream_info_lists_its_subscriptions(client, stream, sub):
    append(client, stream, 1)
    client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": URL})
    assert client.get(f"/v1/streams/{stream}").json()["subscriptions"] == [sub]


def test_status_lag_deliveries_and_metrics(client, stream, sub, receiver):
    append(client, stream, 4)
    receiver.script(Reply(500))
    subscribe(client, sub, stream, receiver.url, **FAST)
    s = wait_status(client, sub, lambda s: s["position"] == 4)
    assert (s["head"], s["lag"], s["status"]) == (4, 0, "active")
    assert s["last_delivered_at"] is not None
    log = client.get(f"/v1/subscriptions/{sub}/deliveries?limit=3").json()["deliveries"]
    assert [(d["position"], d["attempt"]) for d in log] == [(4, 1), (3, 1), (2, 1)]
    log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
    assert [(d["position"], d["attempt"], d["status_code"]) for d in log[-2:]] == [
        (1, 2, 200),
        (1, 1, 500),
    ]
    assert set(log[0]) == {
        "position",
        "event_id",
        "attempt",
        "status_code",
        "error",
        "response_excerpt",
        "duration_ms",
        "at",
    }  # the spec's shape: a batch's attempt adds its range (test_formats.py)
    metrics = client.get("/metrics").text
    for metric in (
        "eventor_delivered_events_total",
        "eventor_delivery_attempts_total",
        "eventor_delivery_failed_attempts_total",
        'eventor_subscriptions{status="active"}',
        "eventor_parked_events",
        "eventor_subscription_progress_saved 1.0",
    ):
        assert metric in metrics
    labels = f'{{stream="{stream}",subscription="{sub}"}}'
    assert f"eventor_subscription_position{labels} 4.0" in metrics
    assert f"eventor_subscription_lag{labels} 0.0" in metrics
    assert f"eventor_subscription_paused{labels} 0.0" in metrics
    assert f"eventor_subscription_failed_attempts{labels} 0.0" in metrics
    assert f"eventor_subscription_parked_events{labels} 0.0" in metrics


@pytest.mark.slow
def test_state_survives_a_restart(make_server, receiver):
    server = make_server()
    c = httpx.Client(base_url=server.url, timeout=10)
    failing = {3}
    receiver.decide(lambda r: Reply(500) if r.position in failing else None)
    append(c, "orders", 4)
    subscribe(c, "parker", "orders", receiver.url, max_attempts=2, on_exhausted="park", **FAST)
    subscribe(c, "pauser", "orders", receiver.url, max_attempts=1, event_types=["T"])
    wait_status(c, "parker", lambda s: s["position"] == 4)
    wait_status(c, "pauser", lambda s: s["status"] == "paused")
    append(c, "busy", 150)
    with Receiver() as fine:
        subscribe(c, "busy", "busy", fine.url)
        wait_status(c, "busy", lambda s: s["position"] == 150)
    busy_log = c.get("/v1/subscriptions/busy/deliveries?limit=1000").json()["deliveries"]
    assert [d["position"] for d in busy_log] == list(range(150, 50, -1))  # the last 100
    c.post("/subscriptions/original_one", json={"stream": "orders", "url": receiver.url})
    c.post("/subscriptions/original_one/pause")
    before = {s["name"]: s for s in c.get("/v1/subscriptions").json()["subscriptions"]}
    log_before = c.get("/v1/subscriptions/parker/deliveries").json()
    assert server.stop(signal.SIGTERM) == 0
    server.restart()
    after = {s["name"]: s for s in c.get("/v1/subscriptions").json()["subscriptions"]}
    assert after == before
    parked = 'eventor_subscription_parked_events{stream="orders",subscription="parker"} 1.0'
    assert parked in c.get("/metrics").text
    assert c.get("/v1/subscriptions/parker/deliveries").json() == log_before
    assert c.get("/v1/subscriptions/busy/deliveries?limit=1000").json()["deliveries"] == busy_log
    parked = c.get("/v1/subscriptions/parker/parked").json()["parked"]
    assert [p["position"] for p in parked] == [3]
    assert after["pauser"]["paused_reason"] == "HTTP 500 Internal Server Error"
    assert after["original_one"]["config"]["created_by"] == "original"
    c.close()


def test_a_catalog_from_before_next_attempt_at_still_opens(make_server, tmp_path):
    """Catalogs made before `next_attempt_at` get the column; their subscriptions carry on."""
    data = tmp_path / "data"
    server = make_server(data_dir=data)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/v1/streams/s/events", json={"type": "T"})
        body = {"stream": "s", "url": "http://127.0.0.1:9/", "start": "end"}
        assert client.put("/v1/subscriptions/old", json=body).status_code == 201
    assert server.stop(signal.SIGTERM) == 0
    with sqlite3.connect(data / "catalog.db") as conn:
        conn.execute("ALTER TABLE subscriptions DROP COLUMN next_attempt_at")
    conn.close()
    server.restart()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        s = status(client, "old")
        assert (s["position"], s["next_attempt_at"], s["status"]) == (1, None, "active")


def test_a_catalog_from_before_the_attempts_ranges_still_opens(make_server, tmp_path, receiver):
    """Attempt logs made before `last_position` and `events` get the columns; their entries
    say their one event."""
    data = tmp_path / "data"
    server = make_server(data_dir=data)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        append(client, "s", 2)
        subscribe(client, "old", "s", receiver.url)
        wait_status(client, "old", lambda s: s["position"] == 2)
    assert server.stop(signal.SIGTERM) == 0
    with sqlite3.connect(data / "catalog.db") as conn:
        conn.execute("ALTER TABLE subscription_attempts DROP COLUMN last_position")
        conn.execute("ALTER TABLE subscription_attempts DROP COLUMN events")
    conn.close()
    server.restart()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        log = client.get("/v1/subscriptions/old/deliveries").json()["deliveries"]
        assert [d["position"] for d in log] == [2, 1]
        assert not [d for d in log if "events" in d or "last_position" in d]  # one event each
        append(client, "s", 1)
        wait_status(client, "old", lambda s: s["position"] == 3)
        newest = client.get("/v1/subscriptions/old/deliveries?limit=1").json()["deliveries"][0]
        assert newest["position"] == 3


def test_delivery_durations_by_outcome(make_server, receiver):
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        append(c, "timed", 3)
        receiver.script(Reply(500), Reply(200, delay=0.3))
        subscribe(c, "timed", "timed", receiver.url, **FAST)
        wait_status(c, "timed", lambda s: s["position"] == 3)
        text = c.get("/metrics").text
    series = histogram(text, "eventor_delivery_duration_seconds")
    assert series[("failure",)]["count"] == 1
    success = series[("success",)]
    assert success["count"] == 3
    assert success["0.25"] <= 2  # one took the 0.3 s delay
    assert success["+Inf"] == 3
    assert success["sum"] >= 0.3
