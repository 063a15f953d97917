"""Screenshots of the dashboard for the docs: each main page, desktop (light) and narrow (dark).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts its own server on a free port with a throwaway data dir, a webhook receiver, and about a
minute of demo traffic (so the live chart has a shape), then drives /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORTS = {
    "desktop": ({"width": 1280, "height": 800}, "light"),
    "narrow": ({"width": 360, "height": 740}, "dark"),
}
TRAFFIC_SECONDS = 75


class _Receiver(BaseHTTPRequestHandler):
    """200 on /ok, 503 with a JSON body on /down: enough to show both in the dashboard."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/down"):
            body = b'{"error": "inventory database is in maintenance"}'
            self.send_response(503)
        else:
            body = b"ok"
            self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = data.parent / "server.log"
    cmd = [sys.executable, "-m", "eventor", "serve", "--port", "0", "--data", str(data)]
    proc = subprocess.Popen(
        [*cmd, "--durability", "off"], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"serving (http://[^\s,]+)", log.read_text(errors="replace"))
        if found:
            return proc, found[1]
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the server did not start:\n{log.read_text()}")


def order(n: int) -> dict[str, Any]:
    rng = random.Random(n)
    items = [
        {"sku": f"SKU-{rng.randint(100, 999)}", "qty": rng.randint(1, 3)}
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "order_id": f"ord_{n:05d}",
        "customer": f"cus_{rng.randint(1, 400):04d}",
        "items": items,
        "total": round(rng.uniform(9, 240), 2),
        "currency": "EUR",
    }


def seed(api: httpx.Client, hook: str) -> None:
    def put(name: str, **body: Any) -> None:
        r = api.put(f"/v1/subscriptions/{name}", json=body)
        r.raise_for_status()

    put(
        "billing",
        stream="orders",
        url=f"{hook}/ok",
        headers={"Authorization": "Bearer demo-token"},
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        event_types=["OrderPlaced", "OrderPaid"],
    )
    put("search-index", stream="catalog:products", url=f"{hook}/ok", batch_size=50)
    put(
        "warehouse",
        stream="inventory:eu",
        url=f"{hook}/down",
        max_attempts=0,
        backoff={"initial": 2, "max": 20},
    )
    put("analytics", stream="orders", url=f"{hook}/ok", start="end")
    put(
        "audit.archive",
        stream="customers",
        url=f"{hook}/down",
        max_attempts=2,
        backoff={"initial": 0.1, "max": 0.2},
        on_exhausted="park",
    )
    for i in range(40):
        api.post(
            "/v1/streams/catalog:products/events",
            json={
                "type": "ProductUpdated",
                "data": {"sku": f"SKU-{100 + i}", "price": 10 + i, "stock": i * 3},
            },
        )
    for i in range(6):
        api.post(
            "/v1/streams/customers/events",
            json={
                "type": "CustomerRegistered",
                "data": {"id": f"cus_{i:04d}", "country": "DE", "plan": "pro"},
                "metadata": {"source": "signup-form"},
            },
        )
    for i in range(3):
        api.post(
            "/v1/streams/inventory:eu/events",
            json={
                "type": "StockReserved",
                "data": {"sku": f"SKU-{200 + i}", "qty": 2, "warehouse": "FRA-1"},
            },
        )
    api.post(
        "/v1/streams/payments.refunds/events",
        json={
            "type": "RefundRequested",
            "data_base64": "UmVmdW5kICMxMDQy",
            "content_type": "text/plain",
        },
    )


def traffic(api: httpx.Client, stop: threading.Event) -> None:
    """Orders at a rate that rises and falls, so the chart is worth looking at."""
    n = 0
    start = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - start
        rate = 6 + 5 * math.sin(elapsed / 9) + random.random() * 3
        batch = []
        for _ in range(max(1, int(rate / 4))):
            n += 1
            batch.append({"type": "OrderPlaced", "data": order(n), "metadata": {"channel": "web"}})
            if n % 3 == 0:
                batch.append(
                    {"type": "OrderPaid", "data": {"order_id": f"ord_{n:05d}", "method": "card"}}
                )
            if n % 5 == 0:
                batch.append(
                    {
                        "type": "OrderShipped",
                        "data": {"order_id": f"ord_{n - 4:05d}", "carrier": "DHL"},
                    }
                )
        api.post("/v1/streams/orders/events", json=batch)
        if n % 7 == 0:
            api.post(
                "/v1/streams/inventory:eu/events",
                json={
                    "type": "StockReserved",
                    "data": {"sku": f"SKU-{n % 900 + 100}", "qty": 1, "warehouse": "FRA-1"},
                },
            )
        time.sleep(0.25)


def shoot(
    page: Page, url: str, path: str, out: Path, name: str, ready: str, before: Any = None
) -> None:
    page.goto(url + path)
    page.locator(ready).first.wait_for()
    if before:
        before(page)
    page.wait_for_timeout(400)  # let the live chart and relative times settle
    page.screenshot(path=str(out / f"{name}.png"))
    print("wrote", out / f"{name}.png", (out / f"{name}.png").stat().st_size // 1024, "KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--traffic", type=float, default=TRAFFIC_SECONDS, help="seconds of demo traffic"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    hook_server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{hook_server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "data")
        try:
            api = httpx.Client(base_url=url, timeout=10)
            seed(api, hook)
            stop = threading.Event()
            # Traffic goes on while the pictures are taken: the chart is live in all of them.
            feeder = threading.Thread(target=traffic, args=(api, stop), daemon=True)
            feeder.start()
            time.sleep(args.traffic)
            api.post("/v1/subscriptions/analytics/pause")
            expand_first = lambda page: page.locator("#events .event-toggle").first.click()  # noqa: E731
            pages = [
                ("overview", "/dashboard", ".chart .series-line", None),
                ("streams", "/dashboard/streams", "#streams-list .chip", None),
                ("stream", "/dashboard/streams/orders", "#events .event-toggle", expand_first),
                ("subscriptions", "/dashboard/subscriptions", "#subscriptions-list tbody tr", None),
                (
                    "subscription",
                    "/dashboard/subscriptions/warehouse",
                    "#deliveries tbody tr",
                    None,
                ),
                (
                    "new-subscription",
                    "/dashboard/new-subscription?stream=orders",
                    ".chip-button",
                    None,
                ),
            ]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                for label, (viewport, scheme) in VIEWPORTS.items():
                    context = browser.new_context(viewport=viewport, color_scheme=scheme)  # type: ignore[arg-type]
                    page = context.new_page()
                    for name, path, ready, before in pages:
                        shoot(page, url, path, args.out, f"{name}-{label}", ready, before)
                    context.close()
                browser.close()
            stop.set()
            feeder.join(10)
            api.close()
        finally:
            proc.terminate()
            proc.wait(15)
            hook_server.shutdown()
    print(json.dumps(sorted(p.name for p in args.out.glob("*.png"))))


if __name__ == "__main__":
    main()
