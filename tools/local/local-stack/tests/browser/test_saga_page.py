"""The saga page of the local runner in a real browser (headless Chromium through Playwright).

Run by tools/testing/saga-page.sh, which starts the local stack; this script places an order with a
dev token, waits until it is CONFIRMED and its notification is sent, opens
/_local/?order=<id> and checks that the timeline draws every hop of the saga (the real
functions of the service templates with the real event types of shared/kit/src/events.rs),
that each hop shows its outcome, duration and trace id, and that the queue depth table is
there; then that `local-stack trace <id>` prints the same saga. Saves a screenshot to
.local/saga-page/saga-timeline.png (docs/img/saga-timeline.png with `--screenshot`, which
`make screenshot` passes). Fails (never skips) when no Chromium or Chrome is installed.

Usage: test_saga_page.py --url http://127.0.0.1:PORT --token TOKEN --cli target/debug/local-stack
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "no Chromium or Chrome found on PATH (looked for " + ", ".join(BROWSERS) + "); "
    "install one (Debian/Ubuntu: `sudo apt-get install -y chromium`; macOS: "
    "`brew install --cask chromium`) or set SAGA_PAGE_BROWSER to its path; "
    "tools/setup.sh installs it when apt-get is usable"
)

# Every hop of a confirmed order's saga: (function, event types it handles). Function names are
# the template's (`<AppName>-<Stage>-<function>`); event types are shared/kit/src/events.rs's.
HOPS = [
    ("orders-http", []),
    ("orders-relay", ["OrderPlaced", "OrderConfirmed"]),
    ("payments-events", ["OrderPlaced"]),
    ("payments-relay", ["PaymentAuthorized"]),
    ("orders-events", ["PaymentAuthorized"]),
    ("notify-events", ["OrderConfirmed"]),
    ("notify-relay", ["NotificationSent"]),
]
TRACE_ID = re.compile(r"\b1-[0-9a-f]{8}-[0-9a-f]{24}\b")
QUEUES = ["OrdersQueue", "PaymentsQueue", "NotifyQueue", "OrdersQueueDlq", "PaymentsQueueDlq"]


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def find_browser():
    configured = os.environ.get("SAGA_PAGE_BROWSER")
    if configured:
        check(os.access(configured, os.X_OK), f"SAGA_PAGE_BROWSER={configured} is not executable")
        return configured
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise Failure(INSTALL_HINT)


def call(method, url, token=None, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
        headers["idempotency-key"] = str(uuid.uuid4())
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def place_confirmed_order(api, token):
    order = {
        "lines": [{"sku": "SAGA-PAGE-1", "quantity": 2, "unit_price": {"amount": 1250, "currency": "EUR"}}],
        "card_token": "tok_approve",
    }
    status, body = call("POST", f"{api}/v1/orders", token, order)
    check(status == 201, f"POST /v1/orders answered {status}: {body}")
    order_id = body["id"]
    deadline = time.time() + 60
    state = None
    while time.time() < deadline:
        status, body = call("GET", f"{api}/v1/orders/{order_id}", token)
        check(status == 200, f"GET /v1/orders/{order_id} answered {status}: {body}")
        state = body.get("status")
        if state in ("CONFIRMED", "CANCELLED"):
            break
        time.sleep(1)
    check(state == "CONFIRMED", f"order {order_id} is {state}, want CONFIRMED within 60 s")
    while time.time() < deadline:
        status, body = call("GET", f"{api}/v1/notifications", token)
        check(status == 200, f"GET /v1/notifications answered {status}: {body}")
        if any(n.get("order_id") == order_id for n in body.get("items", [])):
            return order_id
        time.sleep(1)
    raise Failure(f"no notification for order {order_id} within 60 s")


def wait_for_hops(api, order_id):
    """The relay of NotificationSent runs after the notification is listed: wait for it."""
    deadline = time.time() + 30
    while True:
        status, body = call("GET", f"{api}/_local/api/orders/{order_id}")
        check(status == 200, f"GET /_local/api/orders/{order_id} answered {status}: {body}")
        seen = {(h["function"], t) for h in body["saga"]["hops"] for t in h["event_types"] or [""]}
        want = [(f, t) for f, types in HOPS for t in types or [""]]
        if all(any(fn.endswith("-" + f) and et == t for fn, et in seen) for f, t in want):
            return
        if time.time() > deadline:
            return  # the page check below reports what is missing
        time.sleep(0.5)


def check_page(page, api, order_id):
    response = page.goto(f"{api}/_local/?order={order_id}")
    check(response is not None and response.status == 200,
          f"/_local/?order={order_id} answered {response.status if response else 'nothing'}")
    check(page.title().startswith(f"order {order_id}"), f"page title is {page.title()!r}")
    state = page.locator("#state").inner_text()
    check(state == "CONFIRMED", f"the page says the order is {state!r}, want CONFIRMED")
    svg = page.locator("svg#timeline")
    check(svg.count() == 1, "the page has no svg#timeline")
    svg_box = svg.bounding_box()
    check(svg_box and svg_box["width"] > 500, f"the timeline is not drawn: {svg_box}")
    for function, types in HOPS:
        lane = svg.locator(f'g.lane[data-function$="-{function}"]')
        check(lane.count() == 1, f"the timeline has no lane for {function}")
        label = lane.locator("text").first.text_content()
        check(label == function, f"the lane of {function} is labelled {label!r}")
        bars = lane.locator("g.hop rect")
        check(bars.count() >= 1, f"the lane of {function} has no bar")
        for i in range(bars.count()):
            box = bars.nth(i).bounding_box()
            check(box and box["width"] >= 2 and svg_box["x"] <= box["x"] <= svg_box["x"] + svg_box["width"],
                  f"a bar of {function} is not drawn inside the timeline: {box}")
        drawn = " ".join(lane.locator("g.hop").nth(i).get_attribute("data-events") or ""
                         for i in range(lane.locator("g.hop").count()))
        for t in types:
            check(t in drawn.split(), f"the lane of {function} shows {drawn!r}, not {t}")
        endings = {lane.locator("g.hop").nth(i).get_attribute("data-ending")
                   for i in range(lane.locator("g.hop").count())}
        check(endings == {"ok"}, f"the hops of {function} ended {endings}, want ok")
        rows = page.locator(f'#hops tr[data-function$="-{function}"]')
        check(rows.count() >= 1, f"the invocation table has no row for {function}")
        row = rows.first.inner_text()
        check(" ms" in row and "ok" in row, f"the row of {function} shows no outcome or duration: {row!r}")
        check(TRACE_ID.search(row), f"the row of {function} shows no trace id: {row!r}")
    # One saga, one trace: every event hop shows the trace of the POST that started it (the
    # GET polls of orders-http are requests of their own, with their own traces).
    post = page.locator('#hops tr[data-function$="-orders-http"]', has_text="POST")
    check(post.count() == 1, "the invocation table has no POST row for orders-http")
    post_trace = TRACE_ID.search(post.first.inner_text())
    check(post_trace, f"the POST row shows no trace id: {post.first.inner_text()!r}")
    for function, _ in HOPS[1:]:
        rows = page.locator(f'#hops tr[data-function$="-{function}"]')
        for i in range(rows.count()):
            shown = TRACE_ID.search(rows.nth(i).inner_text())
            check(shown and shown.group(0) == post_trace.group(0),
                  f"a hop of {function} shows trace {shown.group(0) if shown else None}, "
                  f"not the POST's {post_trace.group(0)}")
    for q in QUEUES:
        row = page.locator(f'#queues tr[data-queue="{q}"]')
        check(row.count() == 1, f"the queue table has no row for {q}")
        cells = row.locator("td")
        check(cells.nth(3).inner_text().isdigit(), f"{q} shows no depth: {row.inner_text()!r}")


def svg_bottom(page):
    box = page.locator("svg#timeline").bounding_box()
    return box["y"] + box["height"]


def check_index(page, api, order_id):
    page.goto(f"{api}/_local/")
    link = page.locator(f'#sagas a[href="/_local/?order={order_id}"]')
    check(link.count() == 1, f"the list of sagas at /_local/ has no link to order {order_id}")


def check_trace(cli, api, order_id):
    out = subprocess.run([cli, "trace", order_id, "--url", api, "--width", "140"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, f"local-stack trace failed: {out.stderr}")
    text = out.stdout
    for function, types in HOPS:
        check(f"  {function} (" in text, f"local-stack trace shows no lane {function}:\n{text}")
        for t in types:
            check(t in text, f"local-stack trace shows no {t}:\n{text}")
    check("CONFIRMED" in text and TRACE_ID.search(text), f"local-stack trace lacks state or trace ids:\n{text}")
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--screenshot", default=".local/saga-page/saga-timeline.png")
    args = ap.parse_args()
    started = time.time()
    try:
        browser_path = find_browser()
        from playwright.sync_api import sync_playwright

        order_id = place_confirmed_order(args.url, args.token)
        wait_for_hops(args.url, order_id)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, headless=True,
                                        args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1180, "height": 700})
                check_page(page, args.url, order_id)
                os.makedirs(os.path.dirname(args.screenshot), exist_ok=True)
                # The timeline and the first invocations (a full page is over 200 KB).
                bottom = svg_bottom(page) + 240
                page.screenshot(path=args.screenshot, full_page=True,
                                clip={"x": 0, "y": 0, "width": 1180, "height": bottom})
                check_index(page, args.url, order_id)
            finally:
                browser.close()
        size = os.path.getsize(args.screenshot)
        check(size < 200_000, f"{args.screenshot} is {size} bytes, want < 200 KB")
        text = check_trace(args.cli, args.url, order_id)
    except Failure as e:
        print(f"saga-page: FAILED: {e}", file=sys.stderr)
        return 1
    print(text)
    print(f"saga-page: ok  order {order_id}: every hop on /_local/ in {browser_path}, "
          f"screenshot {args.screenshot} ({size} bytes), {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
