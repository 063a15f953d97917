"""Writes from a web page of another origin are refused (CSRF); reads stay open to any origin."""

from __future__ import annotations

import httpx
import pytest
from helpers import assert_problem, unique

ELSEWHERE = "https://attacker.example"


def test_a_cross_origin_simple_post_changes_nothing(client, stream):
    """What any page can send without a preflight: a text/plain POST, or one without a body."""
    sub = unique("csrf")
    body = f'{{"stream": "{stream}", "url": "{ELSEWHERE}/exfil"}}'
    r = client.post(
        f"/subscriptions/{sub}",
        content=body,
        headers={"Origin": ELSEWHERE, "Content-Type": "text/plain"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/plain")
    assert sub not in {s["name"] for s in client.get("/subscriptions").json()}
    r = client.post(f"/streams/{stream}", content=b"{}", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert client.get(f"/streams/{stream}/0/10").json() == []
    assert (
        client.put(
            f"/v1/subscriptions/{sub}", json={"stream": stream, "url": "http://127.0.0.1:9/"}
        ).status_code
        == 201
    )
    for site in ("cross-site", "same-site"):  # another port on the same host is same-site
        r = client.post(f"/v1/subscriptions/{sub}/pause", headers={"Sec-Fetch-Site": site})
        assert_problem(r, 403)
        assert "another origin" in r.json()["detail"]
    assert client.get(f"/v1/subscriptions/{sub}").json()["status"] == "active"
    client.delete(f"/v1/subscriptions/{sub}")


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, services, the Python client: no browser headers at all
        {"Sec-Fetch-Site": "same-origin"},  # the dashboard
        {"Sec-Fetch-Site": "none"},  # typed by the user
        {"Origin": "SAME"},  # a browser without Sec-Fetch-Site, same origin
    ],
)
def test_writes_from_clients_and_the_own_origin_go_ahead(client, server, stream, headers):
    if headers.get("Origin") == "SAME":
        headers = {"Origin": server.url}
    r = client.post(f"/v1/streams/{stream}/events", json={"type": "T"}, headers=headers)
    assert r.status_code == 201


def test_an_origin_naming_another_port_or_null_is_refused(client, server, stream):
    port = int(httpx.URL(server.url).port or 80)
    for origin in (f"http://127.0.0.1:{port + 1}", "null", f"ftp://127.0.0.1:{port}"):
        r = client.post(
            f"/v1/streams/{stream}/events", json={"type": "T"}, headers={"Origin": origin}
        )
        assert_problem(r, 403)
    assert client.get(f"/v1/streams/{stream}").status_code == 404  # nothing was appended


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://eventor.local", "eventor.local:80"),
        ("https://eventor.local", "eventor.local:443"),
        ("http://EVENTOR.local:9400", "eventor.LOCAL:9400"),
        ("http://[::1]", "[::1]:80"),
    ],
)
def test_an_origin_matches_its_host_whatever_the_spelling(client, stream, origin, host):
    headers = {"Origin": origin, "Host": host}
    r = client.post(f"/v1/streams/{stream}/events", json={"type": "T"}, headers=headers)
    assert r.status_code == 201


def test_reads_stay_open_to_any_origin(client, stream):
    client.post(f"/v1/streams/{stream}/events", json={"type": "T"})
    headers = {"Origin": ELSEWHERE, "Sec-Fetch-Site": "cross-site"}
    r = client.get(f"/v1/streams/{stream}/events", headers=headers)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "path",
    [
        "/subscriptions",
        "/v1/subscriptions",
        "/v1/subscriptions/none_such",
        "/v1/subscriptions/none_such/deliveries",
        "/v1/subscriptions/none_such/parked",
    ],
)
def test_subscription_reads_are_not_shared_with_other_origins(client, path):
    """They show receivers' credentials (`headers`, a URL's user:password): a page of another
    origin must not read them. The dashboard is same-origin."""
    r = client.get(path, headers={"Origin": ELSEWHERE, "Sec-Fetch-Site": "cross-site"})
    assert "access-control-allow-origin" not in r.headers
    preflight = client.options(
        path, headers={"Origin": ELSEWHERE, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 204
    assert "GET" in preflight.headers["allow"]
    assert "access-control-allow-origin" not in preflight.headers
    # Same-origin reads, the dashboard's, are as they were.
    assert client.get(path).status_code in (200, 404)
