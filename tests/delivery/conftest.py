from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _delete_test_subscriptions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Subscriptions made on the shared server stop with their test (receivers go away)."""
    yield
    if "server" not in request.fixturenames:
        return
    server = request.getfixturevalue("server")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for sub in client.get("/v1/subscriptions").json()["subscriptions"]:
            if sub["name"].startswith("sub_"):
                client.delete(f"/v1/subscriptions/{sub['name']}")
