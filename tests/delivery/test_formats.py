"""Delivery formats, checked by third-party code: standardwebhooks and the CloudEvents SDK."""

from __future__ import annotations

import base64
import json
import os

from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from standardwebhooks import Webhook, WebhookVerificationError

from eventor.delivery.webhook import EVENTOR_HEADERS, WebhookBuilder
from eventor.types import RecordedEvent, SubscriptionConfig

from .helpers import append, name, status, subscribe, wait_status
from .receiver import Receiver


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def verifies(secret: str, request) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


def test_signatures_verify_with_standardwebhooks(client, stream, receiver: Receiver):
    secret = new_secret()
    append(client, stream, 3)
    sub = name()
    out = subscribe(client, sub, stream, receiver.url, secret=secret)
    assert out["config"]["secret_set"] is True
    assert secret not in json.dumps(status(client, sub))
    for r in receiver.wait_count(3):
        assert verifies(secret, r)
        assert r.headers["webhook-id"] == r.headers["x-event-uuid"]
        assert not verifies(new_secret(), r)


def test_a_short_secret_is_accepted_and_verifies(client, stream, receiver: Receiver):
    secret = "whsec_" + base64.b64encode(b"test-secret").decode()  # 11 bytes: below the advice
    append(client, stream, 1)
    subscribe(client, name(), stream, receiver.url, secret=secret)
    assert verifies(secret, receiver.wait_count(1)[0])


def test_secret_rotation_signs_with_both_for_a_while(client, stream, receiver: Receiver):
    old, new = new_secret(), new_secret()
    sub = name()
    subscribe(client, sub, stream, receiver.url, secret=old)
    append(client, stream, 1)
    before = receiver.wait_count(1)[0]
    assert verifies(old, before)
    assert not verifies(new, before)
    assert len(before.headers["webhook-signature"].split(" ")) == 1
    r = client.put(
        f"/v1/subscriptions/{sub}", json={"stream": stream, "url": receiver.url, "secret": new}
    )
    assert r.status_code == 200
    append(client, stream, 1)
    after = receiver.wait_count(2)[1]
    assert verifies(new, after)
    assert verifies(old, after)
    assert len(after.headers["webhook-signature"].split(" ")) == 2
    # leaving the secret out on update keeps it; null removes it
    client.put(f"/v1/subscriptions/{sub}", json={"stream": stream, "url": receiver.url})
    append(client, stream, 1)
    assert verifies(new, receiver.wait_count(3)[2])
    client.put(
        f"/v1/subscriptions/{sub}", json={"stream": stream, "url": receiver.url, "secret": None}
    )
    append(client, stream, 1)
    assert "webhook-signature" not in receiver.wait_count(4)[3].headers
    # A secret removed is gone: a later new one signs alone, not beside it (it may have leaked).
    newest = new_secret()
    client.put(
        f"/v1/subscriptions/{sub}", json={"stream": stream, "url": receiver.url, "secret": newest}
    )
    append(client, stream, 1)
    last = receiver.wait_count(5)[4]
    assert verifies(newest, last)
    assert len(last.headers["webhook-signature"].split(" ")) == 1


def test_batches_are_signed_over_the_whole_body(client, stream, receiver: Receiver):
    secret = new_secret()
    append(client, stream, 5)
    subscribe(client, name(), stream, receiver.url, secret=secret, batch_size=5)
    request = receiver.wait_count(1)[0]
    assert verifies(secret, request)
    first = json.loads(request.body)[0]["id"]
    assert request.headers["webhook-id"] == f"{first}:5"


def test_a_batchs_attempt_says_the_range_it_carried(client, stream, receiver: Receiver):
    """The attempt log said one position per request: a batch of 50 looked like one event."""
    client.post(
        f"/v1/streams/{stream}/events",
        json=[{"type": "Kept" if n % 2 else "Other"} for n in range(10)],  # 2, 4, ... are Kept
    )
    sub = name()
    subscribe(client, sub, stream, receiver.url, batch_size=3, event_types=["Kept"])
    wait_status(client, sub, lambda s: s["position"] == 10)
    log = client.get(f"/v1/subscriptions/{sub}/deliveries").json()["deliveries"]
    ranges = [(d["position"], d["last_position"], d["events"]) for d in reversed(log)]
    assert ranges == [(2, 6, 3), (8, 10, 2)]  # the positions passed over are not counted
    single = name()
    subscribe(client, single, stream, receiver.url, start=9)
    wait_status(client, single, lambda s: s["position"] == 10)
    (only,) = client.get(f"/v1/subscriptions/{single}/deliveries").json()["deliveries"]
    assert only["position"] == 10
    assert "last_position" not in only  # one event: the spec's shape, as it lists it
    assert "events" not in only


def test_binary_mode_parses_with_the_cloudevents_sdk(client, stream, receiver: Receiver):
    client.post(
        f"/v1/streams/{stream}/events",
        json=[
            {"type": "OrderPlaced", "data": {"id": 7}},
            {"type": "Blob", "data_base64": "AAEC/w==", "content_type": "image/png"},
            {"type": 'Order Placed 100%41 "x"'},
            {"type": "Ordér"},
        ],
    )
    subscribe(client, name(), stream, receiver.url)
    requests = receiver.wait_count(4)
    events = [from_http(HTTPMessage(r.headers, r.body), JSONFormat()) for r in requests]
    placed, blob, spaced, accented = events
    # types beyond printable ASCII travel percent-encoded, and the SDK reads them back as sent
    assert spaced.get_type() == 'Order Placed 100%41 "x"'
    assert accented.get_type() == "Ordér"
    assert placed.get_specversion() == "1.0"
    assert placed.get_type() == "OrderPlaced"
    assert placed.get_source() == f"/streams/{stream}"
    assert placed.get_id() == requests[0].headers["x-event-uuid"]
    assert placed.get_extension("sequence") == "00000000000000000001"
    assert placed.get_time() is not None
    assert placed.get_data() == {"id": 7}
    assert blob.get_extension("sequence") == "00000000000000000002"
    assert requests[1].headers["content-type"] == "image/png"
    assert requests[1].body == b"\x00\x01\x02\xff"  # the bytes as appended


def test_batch_mode_parses_with_the_cloudevents_sdk(client, stream, receiver: Receiver):
    client.post(
        f"/v1/streams/{stream}/events",
        json=[
            {"type": "A", "data": {"n": 1}},
            {"type": "B", "data": [1, 2]},
            {"type": "C", "data_base64": "aGVsbG8=", "content_type": "text/plain"},
        ],
    )
    subscribe(client, name(), stream, receiver.url, batch_size=10)
    request = receiver.wait_count(1)[0]
    assert request.headers["content-type"] == "application/cloudevents-batch+json"
    fmt = JSONFormat()
    events = [fmt.read(None, json.dumps(item)) for item in json.loads(request.body)]
    assert [e.get_type() for e in events] == ["A", "B", "C"]
    assert [e.get_extension("sequence") for e in events] == [f"{p:020d}" for p in (1, 2, 3)]
    assert events[0].get_data() == {"n": 1}
    assert events[1].get_data() == [1, 2]
    assert events[2].get_data() == b"hello"
    assert events[2].get_datacontenttype() == "text/plain"
    assert all(e.get_source() == f"/streams/{stream}" for e in events)


def test_data_bytes_are_delivered_exactly_as_appended(client, stream, receiver: Receiver):
    raw = b'{ "spaced" :  1,"z":[ 1 ,2 ] }'
    client.post(f"/streams/{stream}", content=raw, headers={"X-Event-Type": "Raw"})
    client.post(
        f"/v1/streams/{stream}/events",
        content=b'{"type":"J","data":{"b" : 2 }}',
        headers={"content-type": "application/json"},
    )
    subscribe(client, name(), stream, receiver.url, headers={"Authorization": "Bearer t"})
    first, second = receiver.wait_count(2)
    assert first.body == raw
    assert second.body == b'{"b" : 2 }'
    assert first.headers["authorization"] == "Bearer t"
    assert first.headers["user-agent"].startswith("Eventor/")
    assert first.headers["x-event-stream"] == stream
    assert first.headers["x-eventor-attempt"] == "1"


def test_deliveries_reuse_one_keep_alive_connection(client, stream, receiver: Receiver):
    append(client, stream, 30)
    subscribe(client, name(), stream, receiver.url)
    requests = receiver.wait_count(30)
    assert len({r.peer for r in requests}) == 1


def test_a_content_type_that_cannot_be_a_header_is_sent_as_octet_stream():
    # Appends refuse such a content type now; one stored before they did must not hold its
    # subscription on that event for good (the HTTP client refuses to send the header).
    config = SubscriptionConfig(stream="s", url="http://127.0.0.1:1/")
    event = RecordedEvent(
        "0190c8e2-0000-7000-8000-000000000001", "s", 1, "T", b"hi",
        "text/plain\r\nX-Injected: 1", False, None, "2026-11-28T02:54:41.123456Z",
    )  # fmt: skip
    body, headers = WebhookBuilder("sub", config).build([event], 1)
    assert body == b"hi"
    assert headers["Content-Type"] == "application/octet-stream"
    assert "X-Injected" not in headers


def test_the_url_is_requested_exactly_as_given(client, stream, receiver: Receiver):
    # a presigned URL: its escapes are part of what was signed
    query = "?sig=ab%2Bcd%3D&p=%2F%3F%3A%40&q=a+b"
    append(client, stream, 1)
    subscribe(client, name(), stream, receiver.url + query)
    assert receiver.wait_count(1)[0].target == "/hook" + query
    # what a request line may not carry is escaped; the rest stays as it is
    subscribe(client, name(), stream, receiver.url + "?x=a|b{c}&p=100%&q=%41")
    assert receiver.wait_count(2)[1].target == "/hook?x=a%7Cb%7Bc%7D&p=100%25&q=%41"
    # non-ASCII characters too (as UTF-8), and the escapes beside them stay as they are
    subscribe(client, name(), stream, receiver.url + "/café?sig=a%2Fb%7E&x=é")
    assert receiver.wait_count(3)[2].target == "/hook/caf%C3%A9?sig=a%2Fb%7E&x=%C3%A9"


def test_url_credentials_are_basic_auth_unless_the_subscription_sends_its_own(
    client, stream, receiver: Receiver
):
    """As the original's Go client: `user:password@` in the URL is Basic auth, and an
    `Authorization` among the subscription's headers wins over it (aiohttp refused the two
    together: every attempt failed before it was sent)."""
    with_credentials = receiver.url.replace("http://", "http://ann:pw@")
    append(client, stream, 1)
    subscribe(client, name(), stream, with_credentials)
    assert receiver.wait_count(1)[0].headers["authorization"] == "Basic YW5uOnB3"
    sub = name()
    subscribe(client, sub, stream, with_credentials, headers={"authorization": "Bearer t0k"})
    got = receiver.wait_count(2)[1]
    assert got.headers["authorization"] == "Bearer t0k"
    assert got.position == 1
    assert client.get(f"/v1/subscriptions/{sub}").json()["last_error"] is None


def test_own_headers_go_out_as_set_unless_eventor_sends_that_header(
    client, stream, receiver: Receiver
):
    own = {
        "Webhook-Token": "s3cret",  # near Eventor's names, but none it sends
        "X-Event-Source": "billing",
        "Ce-Tenant": "t1",
        "X-Eventor-Key": "k",
        "X-Event-Position": "999",  # one Eventor sends: its own wins
    }
    append(client, stream, 1)
    subscribe(client, name(), stream, receiver.url, headers=own)
    got = receiver.wait_count(1)[0].headers
    assert (got["webhook-token"], got["x-event-source"]) == ("s3cret", "billing")
    assert (got["ce-tenant"], got["x-eventor-key"]) == ("t1", "k")
    assert got["x-event-position"] == "1"


def test_every_header_eventor_sends_is_one_a_subscription_cannot_override():
    config = SubscriptionConfig(stream="s", url="http://127.0.0.1:1/", secret=new_secret())
    event = RecordedEvent(
        "0190c8e2-0000-7000-8000-000000000001", "s", 1, "T", b"{}",
        "application/json", True, None, "2026-11-28T02:54:41.123456Z",
    )  # fmt: skip
    sent: set[str] = set()
    for batch_size in (1, 2):
        config.batch_size = batch_size
        _, headers = WebhookBuilder("sub", config).build([event], 1)
        sent |= {h.lower() for h in headers}
    assert sent == set(EVENTOR_HEADERS)
