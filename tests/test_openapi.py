"""/openapi.json and /docs, and the document held against the routes it describes.

Every documented (operation, status) is a test below: a real request to a real server that
gets that status, whose body is then checked against the documented media type and schema.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jsonschema
import pytest
from helpers import in_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi

import eventor
from eventor import __version__
from eventor.api.app import EventorApp, create_app
from eventor.api.openapi import (
    CROSS_ORIGIN_403,
    ENCODED_SLASH_400,
    UndocumentedRoutes,
    build_openapi,
)
from eventor.api.problems import TITLES
from eventor.api.routing import Doc, Route
from eventor.settings import Settings

# -- the document as the code builds it (for parametrizing) ----------------------------------

_APP_DATA = tempfile.mkdtemp(prefix="eventor-openapi-")
APP = create_app(data_dir=Path(_APP_DATA))  # never started: no file is written
shutil.rmtree(_APP_DATA, ignore_errors=True)
BUILT = build_openapi(APP.router.routes, strict=False)

# The operations this file must cover (others' routes are skipped until they get a case).
OWN_PATHS = re.compile(r"^/(v1/streams|streams|introspect|health|ready|metrics|openapi\.json|docs)")
MiB = 1024 * 1024


def _documented() -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, status)
        for path, ops in BUILT["paths"].items()
        for method, op in ops.items()
        for status in op["responses"]
    ]


# -- checking a response against the document ------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @classmethod
    def of(cls, r: httpx.Response) -> Answer:
        return cls(r.status_code, r.headers, r.content)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def validate(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Validate `value` against `schema`, whose $refs point into the document's components."""
    root = {**schema, "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{value!r:.300} does not match the schema: {errors[0].message}"


def sse_messages(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        if "data" in fields:
            messages.append(fields)
    return messages


def check_answer(doc: dict[str, Any], method: str, path: str, answer: Answer) -> None:
    """The answer's status is documented for the operation; its body and headers match."""
    op = doc["paths"][path][method.lower()]
    documented = op["responses"].get(str(answer.status))
    assert documented is not None, (
        f"{method} {path} answered {answer.status}, which is not documented: {answer.text[:300]}"
    )
    content = documented.get("content")
    if not content:
        assert answer.body == b"", f"{answer.status} has no documented body, got {answer.body!r}"
    else:
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        assert media_type in content, (
            f"{method} {path} {answer.status} came as {media_type!r}, documented {list(content)}"
        )
        media = content[media_type]
        if media_type == "text/event-stream":
            item = media["x-item-schema"]
            messages = sse_messages(answer.text)
            assert messages, "no message in the event stream"
            for message in messages:
                validate(doc, item, message)
                validate(
                    doc, item["properties"]["data"]["contentSchema"], json.loads(message["data"])
                )
        elif media_type.endswith("json"):
            validate(doc, media["schema"], answer.json())
        else:
            validate(doc, media["schema"], answer.text)
    for name, spec in documented.get("headers", {}).items():
        value = answer.headers.get(name)
        if spec.get("required"):
            assert value is not None, f"header {name} is documented as required"
        if value is not None:
            validate(
                doc,
                spec["schema"],
                int(value) if spec["schema"].get("type") == "integer" else value,
            )


# -- the cases: one real request per documented (operation, status) --------------------------


@dataclass
class Seed:
    """A stream with JSON events, a non-JSON event and an original-route event."""

    stream: str
    head: int
    hook: str


Case = Callable[[httpx.Client, Seed], Answer]
CASES: dict[tuple[str, str, str], Case] = {}


def case(method: str, path: str, *statuses: int) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        for status in statuses:
            CASES[(method, path, str(status))] = fn
        return fn

    return register


def new_stream() -> str:
    return f"oa-{uuid.uuid4().hex[:12]}"


EVENTS = "/v1/streams/{stream}/events"


@case("POST", EVENTS, 201)
def append_created(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(f"/v1/streams/{new_stream()}/events", json=[{"type": "A"}, {"type": "B"}])
    assert r.json()["last_position"] == 2
    return Answer.of(r)


@case("POST", EVENTS, 200)
def append_again(c: httpx.Client, seed: Seed) -> Answer:
    stream, event = new_stream(), {"type": "A", "id": str(uuid.uuid4())}
    assert c.post(f"/v1/streams/{stream}/events", json=event).status_code == 201
    r = c.post(f"/v1/streams/{stream}/events", json=event)
    assert r.json()["first_position"] == 1
    return Answer.of(r)


def _storage_trouble(
    method: str, path: str, body: bytes, headers: dict[str, str], trouble: str
) -> Answer:
    """The answer to an append made while the storage is in `trouble`: "moved" (its data
    directory gone: 503) or "full" (the disk full: 507), in an app of its own, in process."""

    async def main() -> Answer:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            app = EventorApp(Settings(data_dir=data))
            await app.startup()
            try:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
                    url = path.replace("{stream}", "s")
                    first = await c.post(url, content=body, headers=headers)
                    assert first.status_code in (200, 201), first.text
                    if trouble == "moved":
                        data.rename(Path(tmp) / "aside")
                    else:
                        pool: Any = app.storage._pool  # type: ignore[attr-defined]

                        def full(db: Any) -> None:
                            count = db._conn.execute("PRAGMA page_count").fetchone()[0]
                            db._conn.execute(f"PRAGMA max_page_count = {count}")

                        await pool.call("s", full)
                    big = body.replace(b'"1"', b'"' + b"1" * 300_000 + b'"')
                    return Answer.of(await c.request(method, url, content=big, headers=headers))
            finally:
                await app.shutdown()

    return asyncio.run(main())


def _trouble_case(method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
    for status, trouble in ((503, "moved"), (507, "full")):

        def run(c: httpx.Client, seed: Seed, trouble: str = trouble) -> Answer:
            return _storage_trouble(method, path, body, headers, trouble)

        CASES[(method, path, str(status))] = run


def _subscription_unavailable(method: str, suffix: str, body: bytes | None) -> Case:
    """A subscription write made once its data directory is gone (503), in an app of its own."""

    async def main() -> Answer:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            async with in_process(data) as (_, c):
                spec = {"stream": "s", "url": "http://127.0.0.1:9/hook"}
                assert (await c.put("/v1/subscriptions/x", json=spec)).status_code == 201
                if suffix == "/resume":
                    assert (await c.post("/v1/subscriptions/x/pause")).status_code == 200
                data.rename(Path(tmp) / "aside")
                headers = {"content-type": "application/json"} if body is not None else {}
                url = "/v1/subscriptions/x" + suffix
                return Answer.of(await c.request(method, url, content=body, headers=headers))

    return lambda c, seed: asyncio.run(main())


for _method, _suffix, _body in (
    ("PUT", "", b'{"stream": "s", "url": "http://127.0.0.1:9/other"}'),
    ("DELETE", "", None),
    ("POST", "/pause", None),
    ("POST", "/resume", None),
    ("POST", "/reset", b'{"position": 0}'),
):
    CASES[(_method, "/v1/subscriptions/{name}" + _suffix, "503")] = _subscription_unavailable(
        _method, _suffix, _body
    )


_trouble_case("POST", EVENTS, b'{"type": "T", "data": "1"}', {"content-type": "application/json"})
_trouble_case("POST", "/streams/{stream}", b'{"n": "1"}', {"x-event-type": "T"})


BAD_EVENTS = [
    b'{"type": ',
    b"[]",
    b'{"data": 1}',
    b'{"type": "A", "colour": "red"}',
    b'{"type": "A", "metadata": [1]}',
    b'{"type": "A", "data": 1, "data_base64": "AA=="}',
    b'{"type": "A", "data_base64": "not base64"}',
    b'{"type": "A", "data_base64": "\\u0080"}',  # once a 500: non-ASCII is a ValueError
    b'{"type": "A", "content_type": "text/plain", "data": "x"}',
]


@case("POST", EVENTS, 400)
def append_bad_events(c: httpx.Client, seed: Seed) -> Answer:
    for body in BAD_EVENTS:
        r = c.post(f"/v1/streams/{seed.stream}/events", content=body, headers=_JSON)
        assert r.status_code == 400, (body, r.text)
        check_answer(BUILT, "POST", EVENTS, Answer.of(r))
    assert c.get(f"/v1/streams/{seed.stream}").json()["head"] == seed.head  # nothing changed
    return Answer.of(r)


@case("POST", EVENTS, 409)
def append_wrong_version(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(f"/v1/streams/{seed.stream}/events?expected_version=0", json={"type": "A"})
    assert r.json()["current_version"] == seed.head
    return Answer.of(r)


@case("POST", EVENTS, 413)
def append_too_big(c: httpx.Client, seed: Seed) -> Answer:
    event = {"type": "A", "data": "x" * (MiB + 10)}
    return Answer.of(c.post(f"/v1/streams/{new_stream()}/events", json=event))


@case("POST", EVENTS, 415)
def append_not_json(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(
        f"/v1/streams/{seed.stream}/events", content=b"hi", headers={"content-type": "text/plain"}
    )
    return Answer.of(r)


@case("GET", EVENTS, 200)
def read_events(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get(f"/v1/streams/{seed.stream}/events")
    events = r.json()["events"]
    assert len(events) == seed.head
    assert {"data" in e for e in events} == {True, False}  # both JSON and base64 data shown
    return Answer.of(r)


@case("GET", EVENTS, 400)
def read_bad_limit(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/streams/{seed.stream}/events?limit=0"))


@case("GET", EVENTS, 404)
def read_unknown(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/streams/{new_stream()}/events"))


LIVE = "/v1/streams/{stream}/live"


@case("GET", LIVE, 200)
def live(c: httpx.Client, seed: Seed) -> Answer:
    body = b""
    with c.stream("GET", f"/v1/streams/{seed.stream}/live?from=1") as r:
        for chunk in r.iter_bytes():
            body += chunk
            if len(sse_messages(body.decode())) >= seed.head:
                break
        answer = Answer(r.status_code, r.headers, body)
    messages = sse_messages(answer.text)
    assert [m["id"] for m in messages] == [str(p) for p in range(1, seed.head + 1)]
    assert all(json.loads(m["data"])["type"] == m["event"] for m in messages)
    return answer


@case("GET", LIVE, 400)
def live_bad_last_event_id(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/streams/{seed.stream}/live", headers={"last-event-id": "x"}))


@case("GET", "/v1/streams", 200)
def list_streams(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get("/v1/streams", params={"prefix": seed.stream})
    assert [s["name"] for s in r.json()["streams"]] == [seed.stream]
    return Answer.of(r)


@case("GET", "/v1/streams", 400)
def list_bad_limit(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/v1/streams?limit=1001"))


INFO = "/v1/streams/{stream}"


@case("GET", INFO, 200)
def info(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get(f"/v1/streams/{seed.stream}")
    assert r.json()["head"] == seed.head
    return Answer.of(r)


@case("GET", INFO, 400)
def info_bad_name(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/v1/streams/-bad"))


@case("GET", INFO, 404)
def info_unknown(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/streams/{new_stream()}"))


ORIGINAL = "/streams/{stream}"


@case("POST", ORIGINAL, 200)
def original_append(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(f"/streams/{new_stream()}", content=b'{"a": 1}', headers={"x-event-type": "A"})
    assert r.headers["x-event-position"] == "1"
    return Answer.of(r)


@case("POST", ORIGINAL, 400)
def original_append_no_type(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(f"/streams/{seed.stream}", content=b"{}")
    assert r.text == "Event must have type specified in x-event-type header"
    return Answer.of(r)


@case("POST", ORIGINAL, 413)
def original_append_too_big(c: httpx.Client, seed: Seed) -> Answer:
    big = b"x" * (MiB + 1)
    return Answer.of(c.post(f"/streams/{new_stream()}", content=big, headers={"x-event-type": "A"}))


ORIGINAL_READ = "/streams/{stream}/{offset}/{limit}"


@case("GET", ORIGINAL_READ, 200)
def original_read(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get(f"/streams/{seed.stream}/0/100")
    assert [e["position"] for e in r.json()] == list(range(1, seed.head + 1))
    return Answer.of(r)


@case("GET", ORIGINAL_READ, 400)
def original_read_bad_name(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/streams/.bad/0/10"))


@case("GET", "/introspect", 200)
def introspect(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get("/introspect")
    assert seed.stream in {s["name"] for s in r.json()}
    return Answer.of(r)


@case("GET", "/introspect/{stream}", 200)
def introspect_stream(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get(f"/introspect/{seed.stream}")
    assert set(r.json()["event_variants"]) == {"Placed", "Blob", "Legacy"}
    return Answer.of(r)


@case("GET", "/introspect/{stream}", 400)
def introspect_bad_name(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/introspect/.bad"))


@case("GET", "/health", 200)
def health(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/health"))


@case("GET", "/ready", 200)
def ready(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/ready"))


@case("GET", "/ready", 503)
def not_ready(c: httpx.Client, seed: Seed) -> Answer:
    # Readiness fails only while the storage is closed, which a served app never shows for
    # long: ask an app whose lifespan never ran, in-process.
    async def ask() -> Answer:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://eventor") as client:
            return Answer.of(await client.get("/ready"))

    return asyncio.run(ask())


@case("GET", "/metrics", 200)
def metrics(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get("/metrics")
    assert "eventor_appended_events" in r.text
    return Answer.of(r)


@case("GET", "/openapi.json", 200)
def openapi(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/openapi.json"))


@case("GET", "/docs", 200)
def docs_page(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/docs"))


# Subscriptions deliver to `seed.hook`, a receiver on loopback that answers 200.

SUB = "/v1/subscriptions/{name}"


def new_subscription(c: httpx.Client, seed: Seed, **config: Any) -> str:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook, **config}
    assert c.put(f"/v1/subscriptions/{name}", json=body).status_code == 201
    return name


@case("GET", "/v1/subscriptions", 200)
def list_subscriptions(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed)
    r = c.get("/v1/subscriptions")
    assert name in {s["name"] for s in r.json()["subscriptions"]}
    return Answer.of(r)


@case("GET", "/v1/subscriptions", 400)
def list_subscriptions_of_a_bad_stream_name(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get("/v1/subscriptions", params={"stream": "a/b"}))


@case("PUT", SUB, 201)
def create_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook, "secret": "whsec_" + "A" * 32}
    return Answer.of(c.put(f"/v1/subscriptions/{name}", json=body))


@case("PUT", SUB, 200)
def update_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed)
    body = {"stream": seed.stream, "url": seed.hook, "batch_size": 10}
    r = c.put(f"/v1/subscriptions/{name}", json=body)
    assert r.json()["config"]["batch_size"] == 10
    return Answer.of(r)


@case("PUT", SUB, 400)
def create_bad_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": "ftp://example.invalid/"}
    r = c.put(f"/v1/subscriptions/{name}", json=body)
    assert c.get(f"/v1/subscriptions/{name}").status_code == 404  # nothing created
    return Answer.of(r)


@case("PUT", SUB, 412)
def update_subscription_gone(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook}
    r = c.put(f"/v1/subscriptions/{name}", json=body, headers={"If-Match": "*"})
    assert c.get(f"/v1/subscriptions/{name}").status_code == 404  # nothing created
    return Answer.of(r)


@case("PUT", SUB, 413)
def create_subscription_too_big(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook, "headers": {"X-Pad": "x" * MiB}}
    r = c.put(f"/v1/subscriptions/{name}", json=body)
    assert c.get(f"/v1/subscriptions/{name}").status_code == 404  # nothing created
    return Answer.of(r)


@case("PUT", SUB, 415)
def create_subscription_not_json(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"stream": seed.stream, "url": seed.hook})
    r = c.put(f"/v1/subscriptions/{name}", content=body, headers={"content-type": "text/plain"})
    return Answer.of(r)


@case("GET", SUB, 200)
def get_subscription(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/subscriptions/{new_subscription(c, seed)}"))


@case("DELETE", SUB, 204)
def delete_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed)
    r = c.delete(f"/v1/subscriptions/{name}")
    assert c.get(f"/v1/subscriptions/{name}").status_code == 404
    return Answer.of(r)


@case("POST", SUB + "/pause", 200)
def pause_subscription(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(f"/v1/subscriptions/{new_subscription(c, seed)}/pause")
    assert r.json()["status"] == "paused"
    return Answer.of(r)


@case("POST", SUB + "/resume", 200)
def resume_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed)
    assert c.post(f"/v1/subscriptions/{name}/pause").status_code == 200
    return Answer.of(c.post(f"/v1/subscriptions/{name}/resume"))


@case("POST", SUB + "/reset", 200)
def reset_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed, start="end")
    r = c.post(f"/v1/subscriptions/{name}/reset", json={"position": 0})
    assert r.json()["position"] == 0
    return Answer.of(r)


@case("POST", SUB + "/reset", 400)
def reset_bad_position(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed, start="end")
    return Answer.of(c.post(f"/v1/subscriptions/{name}/reset", json={"position": -1}))


@case("POST", SUB + "/reset", 413)
def reset_too_big(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed, start="end")
    body = b'{"position": 0' + b" " * MiB + b"}"
    headers = {"content-type": "application/json"}
    return Answer.of(c.post(f"/v1/subscriptions/{name}/reset", content=body, headers=headers))


@case("POST", SUB + "/reset", 415)
def reset_not_json(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed, start="end")
    headers = {"content-type": "text/plain"}
    r = c.post(f"/v1/subscriptions/{name}/reset", content=b'{"position": 0}', headers=headers)
    return Answer.of(r)


@case("GET", SUB + "/deliveries", 200)
def deliveries(c: httpx.Client, seed: Seed) -> Answer:
    name = new_subscription(c, seed)
    answer = poll(
        lambda: Answer.of(c.get(f"/v1/subscriptions/{name}/deliveries")),
        lambda a: len(a.json()["deliveries"]) > 0,
    )
    assert answer.json()["deliveries"][0]["status_code"] == 200
    return answer


@case("GET", SUB + "/deliveries", 400)
def deliveries_bad_limit(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/subscriptions/{new_subscription(c, seed)}/deliveries?limit=0"))


@case("GET", SUB + "/parked", 200)
def parked(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/subscriptions/{new_subscription(c, seed)}/parked"))


@case("GET", SUB + "/parked", 400)
def parked_bad_limit(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.get(f"/v1/subscriptions/{new_subscription(c, seed)}/parked?limit=0"))


@case("POST", SUB + "/parked/replay", 202)
def replay_parked(c: httpx.Client, seed: Seed) -> Answer:
    r = c.post(f"/v1/subscriptions/{new_subscription(c, seed)}/parked/replay")
    assert r.json()["replaying"] == 0
    return Answer.of(r)


@case("GET", SUB, 404)
@case("DELETE", SUB, 404)
@case("POST", SUB + "/pause", 404)
@case("POST", SUB + "/resume", 404)
@case("GET", SUB + "/deliveries", 404)
@case("GET", SUB + "/parked", 404)
@case("POST", SUB + "/parked/replay", 404)
def unknown_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    for method, suffix in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("GET", "/deliveries"),
        ("GET", "/parked"),
        ("POST", "/parked/replay"),
    ]:
        r = c.request(method, f"/v1/subscriptions/{name}{suffix}")
        assert r.status_code == 404, (method, suffix, r.text)
        check_answer(BUILT, method, SUB + suffix, Answer.of(r))
    return Answer.of(r)


@case("POST", SUB + "/reset", 404)
def reset_unknown(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa-{uuid.uuid4().hex[:12]}"
    return Answer.of(c.post(f"/v1/subscriptions/{name}/reset", json={"position": 0}))


ORIGINAL_SUB = "/subscriptions/{name}"


def new_original_subscription(c: httpx.Client, seed: Seed) -> str:
    name = f"oa_{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook}
    assert c.post(f"/subscriptions/{name}", json=body).status_code == 200
    return name


@case("POST", ORIGINAL_SUB, 200)
def original_create_subscription(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa_{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook, "position": seed.head}
    return Answer.of(c.post(f"/subscriptions/{name}", json=body))


@case("POST", ORIGINAL_SUB, 400)
def original_create_taken(c: httpx.Client, seed: Seed) -> Answer:
    name = new_original_subscription(c, seed)
    r = c.post(f"/subscriptions/{name}", json={"stream": seed.stream, "url": seed.hook})
    assert r.text == "Subscription with this name already exists"
    return Answer.of(r)


@case("POST", ORIGINAL_SUB, 413)
def original_create_too_big(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa_{uuid.uuid4().hex[:12]}"
    body = {"stream": seed.stream, "url": seed.hook, "headers": {"X-Pad": "x" * MiB}}
    return Answer.of(c.post(f"/subscriptions/{name}", json=body))


@case("POST", ORIGINAL_SUB, 415)
def original_create_encoded(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa_{uuid.uuid4().hex[:12]}"
    body = gzip.compress(
        b'{"stream": "%s", "url": "%s"}' % (seed.stream.encode(), seed.hook.encode())
    )
    return Answer.of(
        c.post(f"/subscriptions/{name}", content=body, headers={"content-encoding": "gzip"})
    )


@case("GET", "/subscriptions", 200)
def original_list_subscriptions(c: httpx.Client, seed: Seed) -> Answer:
    name = new_original_subscription(c, seed)
    r = c.get("/subscriptions")
    assert name in {s["name"] for s in r.json()}
    return Answer.of(r)


@case("DELETE", ORIGINAL_SUB, 200)
def original_delete_subscription(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.delete(f"/subscriptions/{new_original_subscription(c, seed)}"))


@case("POST", ORIGINAL_SUB + "/pause", 200)
def original_pause(c: httpx.Client, seed: Seed) -> Answer:
    return Answer.of(c.post(f"/subscriptions/{new_original_subscription(c, seed)}/pause"))


@case("POST", ORIGINAL_SUB + "/resume", 200)
def original_resume(c: httpx.Client, seed: Seed) -> Answer:
    name = new_original_subscription(c, seed)
    assert c.post(f"/subscriptions/{name}/pause").status_code == 200
    return Answer.of(c.post(f"/subscriptions/{name}/resume"))


@case("POST", ORIGINAL_SUB + "/pause", 400)
@case("POST", ORIGINAL_SUB + "/resume", 400)
def original_pause_or_resume_unknown(c: httpx.Client, seed: Seed) -> Answer:
    name = f"oa_{uuid.uuid4().hex[:12]}"
    for action in ("pause", "resume"):
        r = c.post(f"/subscriptions/{name}/{action}")
        assert r.text == "Subscription doesn't exist\n"
        check_answer(BUILT, "POST", f"{ORIGINAL_SUB}/{action}", Answer.of(r))
    return Answer.of(r)


@case("GET", "/v1/stats", 200)
def stats(c: httpx.Client, seed: Seed) -> Answer:
    r = c.get("/v1/stats")
    assert r.json()["streams"]["events"] >= seed.head
    return Answer.of(r)


@case("GET", "/v1/stats/live", 200)
def stats_live(c: httpx.Client, seed: Seed) -> Answer:
    body = b""
    with c.stream("GET", "/v1/stats/live") as r:
        for chunk in r.iter_bytes():
            body += chunk
            if sse_messages(body.decode()):
                break
        return Answer(r.status_code, r.headers, body)


def poll(get: Callable[[], Answer], done: Callable[[Answer], bool], timeout: float = 10) -> Answer:
    deadline = time.monotonic() + timeout
    while True:
        answer = get()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


_JSON = {"content-type": "application/json"}


# -- fixtures ---------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    """A webhook receiver on loopback that accepts every delivery."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    receiver.shutdown()
    receiver.server_close()


@pytest.fixture(scope="module")
def seed(server: Any, hook: str) -> Iterator[Seed]:
    stream = new_stream()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        events = [
            {"type": "Placed", "data": {"order": 1}, "metadata": {"by": "test"}},
            {"type": "Placed", "data": {"order": 2}},
            {
                "type": "Blob",
                "data_base64": base64.b64encode(b"\x00\xff").decode(),
                "content_type": "application/octet-stream",
            },
        ]
        assert c.post(f"/v1/streams/{stream}/events", json=events).status_code == 201
        r = c.post(
            f"/streams/{stream}",
            content=b"plain",
            headers={"x-event-type": "Legacy", "content-type": "text/plain"},
        )
        assert r.status_code == 200
        yield Seed(stream, 4, hook)
        for sub in c.get("/v1/subscriptions").json()["subscriptions"]:
            if sub["stream"] == stream:
                c.delete(f"/v1/subscriptions/{sub['name']}")


@pytest.fixture(scope="module")
def served(server: Any) -> dict[str, Any]:
    r = httpx.get(server.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return r.json()  # type: ignore[no-any-return]


# -- the document itself ----------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(served: dict[str, Any]) -> None:
    validate_openapi(served)
    assert served["openapi"].startswith("3.1")
    assert served["info"]["title"] == "Eventor"
    assert served["info"]["version"] == __version__
    assert served["info"]["description"]
    assert {"streams", "original", "operations"} <= {t["name"] for t in served["tags"]}


def test_the_served_document_is_the_built_one(served: dict[str, Any]) -> None:
    assert served == json.loads(json.dumps(BUILT))


def _route_keys(routes: list[Route]) -> set[tuple[str, str]]:
    return {
        (r.method, re.sub(r"{([a-z_]+):path}", r"{\1}", r.path))
        for r in routes
        if not (r.doc and r.doc.hidden)
    }


def test_every_route_is_documented_and_nothing_else(served: dict[str, Any]) -> None:
    documented = {(m.upper(), p) for p, ops in served["paths"].items() for m in ops}
    assert documented == _route_keys(APP.router.routes)
    assert ("GET", "/docs/assets/{name}") not in documented  # hidden


def test_every_route_has_a_doc() -> None:
    """A route added without `doc=Doc(...)` (and not hidden) fails here, naming the route."""
    build_openapi(APP.router.routes, strict=True)


def test_a_route_without_a_doc_is_refused_by_name() -> None:
    async def handler(request: Any) -> Any:
        raise AssertionError

    routes = [
        Route("GET", "/documented", handler, doc=Doc("documented")),
        Route("POST", "/v1/forgotten/{name}", handler),
        Route("GET", "/hidden", handler, doc=Doc("hidden", hidden=True)),
    ]
    with pytest.raises(UndocumentedRoutes, match=re.escape("POST /v1/forgotten/{name}")):
        build_openapi(routes)
    lenient = build_openapi(routes, strict=False)
    assert set(lenient["paths"]) == {"/documented", "/v1/forgotten/{name}"}


def test_errors_are_problems_on_v1_and_text_on_the_original_routes() -> None:
    for route in APP.router.routes:
        if route.doc is None or route.doc.hidden:
            continue
        path = re.sub(r"{([a-z_]+):path}", r"{\1}", route.path)
        op = BUILT["paths"][path][route.method.lower()]
        assert any(s.startswith("2") for s in op["responses"]), f"{route.path}: no success"
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            media = set(response.get("content", {}))
            want = "application/problem+json" if route.errors == "problem" else "text/plain"
            assert media == {want}, f"{route.method} {path} {status}: {media}, want {want}"


def test_parameters_carry_types_ranges_and_defaults() -> None:
    read = BUILT["paths"]["/v1/streams/{stream}/events"]["get"]
    params = {p["name"]: p for p in read["parameters"]}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 100,
    }
    assert params["direction"]["schema"]["enum"] == ["forward", "backward"]
    assert params["wait"]["schema"]["maximum"] == 60
    assert params["stream"]["required"]
    assert params["stream"]["schema"]["maxLength"] == 200
    append = BUILT["paths"]["/streams/{stream}"]["post"]
    assert {"name": "X-Event-Type", "in": "header", "required": True} | {
        "description": "the event's type",
        "schema": {"type": "string", "minLength": 1},
    } in append["parameters"]
    assert list(append["requestBody"]["content"]) == ["*/*"]
    v1_append = BUILT["paths"]["/v1/streams/{stream}/events"]["post"]
    assert set(v1_append["responses"]) >= {"200", "201", "400", "409", "413", "415"}
    conflict = v1_append["responses"]["409"]["content"]["application/problem+json"]["schema"]
    problem = BUILT["components"]["schemas"][conflict["$ref"].rsplit("/", 1)[1]]
    assert "current_version" in problem["properties"]


# -- the document against the routes ----------------------------------------------------------


def _case_id(key: tuple[str, str, str]) -> str:
    return " ".join(key)


@pytest.mark.parametrize("key", _documented(), ids=_case_id)
def test_documented_response_is_what_the_route_answers(
    key: tuple[str, str, str], client: httpx.Client, seed: Seed, served: dict[str, Any]
) -> None:
    method, path, status = key
    run = CASES.get(key)
    if run is None and status == "400":
        responses = BUILT["paths"][path][method.lower()]["responses"]
        if responses["400"]["description"] == ENCODED_SLASH_400:
            run = _encoded_slash_case(method, path)
    if run is None and status == "403":
        responses = BUILT["paths"][path][method.lower()]["responses"]
        if responses["403"]["description"] == CROSS_ORIGIN_403:
            run = _cross_origin_case(method, path)
    if run is None:
        if OWN_PATHS.match(path):
            pytest.fail(f"no case exercises the documented {method} {path} {status}: add one")
        pytest.skip(f"no conformance case for {method} {path} {status} yet")
    answer = run(client, seed)
    assert str(answer.status) == status, f"the case got {answer.status}: {answer.text[:300]}"
    check_answer(served, method, path, answer)


def _encoded_slash_case(method: str, path: str) -> Case:
    def run(c: httpx.Client, seed: Seed) -> Answer:
        url = re.sub(r"{[a-z_]+}", "a%2Fb", path)
        r = c.request(method, url)
        assert "%2F" in r.text
        return Answer.of(r)

    return run


def _cross_origin_case(method: str, path: str) -> Case:
    def run(c: httpx.Client, seed: Seed) -> Answer:
        url = re.sub(r"{[a-z_]+}", "x", path)
        r = c.request(method, url, headers={"Origin": "https://elsewhere.example"})
        assert "another origin" in r.text
        return Answer.of(r)

    return run


def test_every_case_is_for_a_documented_response() -> None:
    assert set(CASES) <= set(_documented())


# -- /docs --------------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def test_docs_page_references_only_its_own_assets(client: httpx.Client) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    parser = _Links()
    parser.feed(r.text)
    scripts_and_styles = [link for link in parser.links if not link.startswith("data:")]
    assert len(scripts_and_styles) >= 3
    for link in scripts_and_styles:
        assert not urlsplit(link).scheme, link
        assert not urlsplit(link).netloc, link
        asset = client.get(httpx.URL(str(r.url)).join(link))
        assert asset.status_code == 200, link
        assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        again = client.get(asset.url, headers={"if-none-match": asset.headers["etag"]})
        assert again.status_code == 304
    assert client.get("/docs/assets/nothing.js").status_code == 404


@pytest.mark.browser
def test_docs_page_renders_every_operation_offline(server: Any) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    origin = server.url
    elsewhere: list[str] = []
    problems: list[str] = []
    operations = sum(len(ops) for ops in BUILT["paths"].values())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            def route(r: Any) -> None:
                if r.request.url.startswith(origin + "/") or r.request.url.startswith("data:"):
                    r.continue_()
                else:
                    elsewhere.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(origin + "/docs")
            # No wait_for_function: its string is an eval, which the page's CSP forbids.
            page.locator(".opblock").nth(operations - 1).wait_for(timeout=15_000)
            assert page.locator(".opblock").count() == operations
            assert "Eventor" in page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert elsewhere == []
    assert problems == []


# -- fuzzing the documented v1 and original routes -------------------------------------------

# Generated requests (valid by the documented schemas, or junk) to the v1 and original stream
# routes: every answer must be a documented status with a body that matches its schema.
FUZZED = [
    ("POST", EVENTS),
    ("GET", EVENTS),
    ("GET", "/v1/streams"),
    ("GET", INFO),
    ("POST", ORIGINAL),
    ("GET", ORIGINAL_READ),
    ("GET", "/introspect/{stream}"),
    # Subscriptions, but never the routes that create one (a generated url could be anywhere).
    ("GET", "/v1/subscriptions"),
    ("GET", SUB),
    ("DELETE", SUB),
    ("POST", SUB + "/pause"),
    ("POST", SUB + "/reset"),
    ("GET", SUB + "/deliveries"),
    ("POST", SUB + "/parked/replay"),
    ("POST", ORIGINAL_SUB + "/resume"),
    ("DELETE", ORIGINAL_SUB),
]
FUZZ_EXAMPLES = 40


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid by `schema`, for the JSON Schema the document uses (refs, unions, types)."""
    if "$ref" in schema:
        return from_schema(BUILT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return st.one_of([from_schema(s) for s in schema[union]])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**63)), schema.get("maximum", 2**63))
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "null":
        return st.none()
    if kind == "string":
        if schema.get("format") == "uuid":
            return st.uuids().map(str)
        low, high = schema.get("minLength", 0), schema.get("maxLength", 20)
        if "pattern" in schema:
            text = st.from_regex(schema["pattern"], fullmatch=True)
            return text.filter(lambda s: low <= len(s) <= high)
        return st.text(min_size=low, max_size=min(high, low + 20))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "object":
        properties = {k: from_schema(v) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    return _JSON_VALUES


def _junk() -> st.SearchStrategy[str]:
    chars = st.characters(codec="utf-8", exclude_characters="/\x00")
    return st.text(chars, min_size=1, max_size=20).filter(lambda s: s not in (".", ".."))


def _param_values(param: dict[str, Any]) -> st.SearchStrategy[str | None]:
    name, where = param["name"], param["in"]
    if name == "wait":  # documented up to 60 s: keep the fuzzer fast
        return st.sampled_from([None, "0", "0.01", "-1", "61", "x", "nan"])
    if where == "header":
        printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
        return st.one_of(st.none(), st.text(printable, max_size=20).map(str.strip))
    valid = from_schema(param["schema"]).map(str)
    values = st.one_of(valid, _junk())
    if where == "path":  # an empty or dot segment would be another path, not this operation
        return values.filter(lambda s: s not in ("", ".", ".."))
    return st.one_of(st.none(), values)


def _bodies(op: dict[str, Any]) -> st.SearchStrategy[bytes | None]:
    body = op.get("requestBody")
    if body is None:
        return st.none()
    media_type, media = next(iter(body["content"].items()))
    junk = st.binary(max_size=64)
    if media_type != "application/json":
        return junk
    valid = from_schema(media["schema"]).map(lambda v: json.dumps(v).encode())
    return st.one_of(valid, valid, junk)


def test_generated_requests_get_documented_answers(make_server: Any) -> None:
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for method, path in FUZZED:
            _fuzz(c, method, path)


def _fuzz(c: httpx.Client, method: str, path: str) -> None:
    op = BUILT["paths"][path][method.lower()]
    params = op.get("parameters", [])
    values = st.fixed_dictionaries({p["name"]: _param_values(p) for p in params})

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(values=values, body=_bodies(op))
    def check(values: dict[str, str | None], body: bytes | None) -> None:
        url, query, headers = path, {}, {"content-type": "application/json"}
        for p in params:
            value = values[p["name"]]
            if value is None:
                continue
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", quote(value, safe=""))
            elif p["in"] == "query":
                query[p["name"]] = value
            else:
                headers[p["name"]] = value
        r = c.request(method, url, params=query, headers=headers, content=body)
        assert r.status_code < 500, f"{method} {r.url}: {r.status_code} {r.text[:300]}"
        check_answer(BUILT, method, path, Answer.of(r))

    check()


def test_docs_with_a_trailing_slash_redirects_to_the_page(client: httpx.Client) -> None:
    r = client.get("/docs/")
    assert (r.status_code, r.headers["location"]) == (308, "/docs")
    assert client.get("/docs/", follow_redirects=True).status_code == 200


# -- the problem types docs/api.md lists --------------------------------------------------------

#: Files whose problems never reach a /v1 answer: the original routes (text), the dashboard's
#: and the API docs' assets.
_NOT_V1_FILES = {"compat.py", "compat_subscriptions.py", "dashboard.py", "docs.py"}
#: The protocol's refusals (eventor/protocol.py types them by their status line's title).
_PROTOCOL = {"bad-request", "request-timeout", "request-header-fields-too-large", "not-implemented"}
#: Codes of errors that never reach a /v1 answer (SubscriptionExists becomes a 412 there; the
#: original routes answer text), and the base class's.
_NOT_ON_V1 = {"error", "subscription-exists"}


def _untyped_statuses(source: str) -> set[int]:
    """The statuses of `HTTPProblem(...)` calls without a `code`: typed by their title."""
    statuses = set()
    for match in re.finditer(r"HTTPProblem\(\s*(\d{3})\b", source):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        if "code=" not in source[match.start() : end]:
            statuses.add(int(match.group(1)))
    return statuses


def test_problem_types_in_the_docs_are_the_ones_answered() -> None:
    """docs/api.md's table lists every problem type the code can answer, and no other."""
    package = Path(eventor.__file__).parent
    server = [p for p in package.rglob("*.py") if "client" not in p.name]  # not the client's own
    source = "\n".join(p.read_text() for p in server)
    codes = set(re.findall(r'\bcode\s*=\s*"([a-z-]+)"', source))
    v1 = "\n".join(p.read_text() for p in server if p.name not in _NOT_V1_FILES)
    titled = {TITLES[status].lower().replace(" ", "-") for status in _untyped_statuses(v1)}
    table = (package.parent / "docs" / "api.md").read_text().split("## Problem types", 1)[1]
    table = table.split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z-]+)`(?:, `([a-z-]+)`)?", table, re.M))
    types = {t for row in documented for t in row if t}
    assert types == (codes | titled | _PROTOCOL) - _NOT_ON_V1


# -- request body examples ("Try it out" in /docs) ---------------------------------------------

_EXAMPLES = [
    (path, method, media["example"])
    for path, ops in BUILT["paths"].items()
    for method, op in ops.items()
    for media in op.get("requestBody", {}).get("content", {}).values()
    if "example" in media
]


def test_the_request_bodies_people_try_first_have_working_examples() -> None:
    """Swagger made its own up from the schemas: `"url": "HTtp://-"` (a 400) and a real
    subscription named by chance, `"position": 4611686018427388000` (2^62 rounded, a 400)."""
    assert {(m, p) for p, m, _ in _EXAMPLES} >= {
        ("post", "/v1/streams/{stream}/events"),
        ("put", "/v1/subscriptions/{name}"),
        ("post", "/v1/subscriptions/{name}/reset"),
        ("post", "/subscriptions/{name}"),
    }
    for path, method, example in _EXAMPLES:
        schema = BUILT["paths"][path][method]["requestBody"]["content"]["application/json"]
        validate(BUILT, schema["schema"], example)


def test_the_examples_are_taken_by_the_routes(client: httpx.Client) -> None:
    examples = {(m, p): e for p, m, e in _EXAMPLES}
    v1, original = f"oa-example-{uuid.uuid4().hex[:8]}", f"oa_example_{uuid.uuid4().hex[:8]}"
    try:
        for (method, path), url in {
            ("post", "/v1/streams/{stream}/events"): "/v1/streams/oa-examples/events",
            ("put", "/v1/subscriptions/{name}"): f"/v1/subscriptions/{v1}",
            ("post", "/v1/subscriptions/{name}/reset"): f"/v1/subscriptions/{v1}/reset",
            ("post", "/subscriptions/{name}"): f"/subscriptions/{original}",
        }.items():
            r = client.request(method.upper(), url, json=examples[(method, path)])
            assert r.is_success, (method, url, r.text)
    finally:
        client.delete(f"/v1/subscriptions/{v1}")
        client.delete(f"/subscriptions/{original}")
