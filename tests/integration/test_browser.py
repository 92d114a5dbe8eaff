"""usage.js in a real browser (Debian's Chromium driven by Playwright) against the real
collector, Kafka, Redis and aggregator: exact counts, CORS, pagehide beacons and retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from stack.browser import LAUNCH_ARGS, ensure_chromium
from stack.servers import PROJECT_ROOT
from tests.support import ACME_READ_KEY, Pipeline, free_port, get_json

pytestmark = pytest.mark.e2e

HOST_PAGE = """<!doctype html><html><body>
<button id="create">Create invoice</button><button id="send">Send invoice</button>
<script src="{collector}/usage.js"></script>
<script>
  usage.init({{serviceId: "SP-ACME", collectorUrl: "{collector}", flushIntervalMs: 300,
              account: {{id: "{account}", name: "Browser Co"}}, user: {{id: "web@acme.com"}}}});
  document.getElementById("create").onclick = function () {{ usage.track("Create", "Invoices"); }};
  document.getElementById("send").onclick = function () {{ usage.track("Send", "Invoices"); }};
</script></body></html>"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = ensure_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        yield launched
        await launched.close()


async def host_site(pipeline: Pipeline, account: str) -> tuple[str, web.AppRunner]:
    """Serve a product page from an origin of its own, as a customer's app would be."""
    page = HOST_PAGE.format(collector=pipeline.collector_url, account=account)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}", runner


def allow_origin(pipeline: Pipeline, origin: str) -> None:
    text = pipeline.services_file.read_text()
    pipeline.services_file.write_text(
        text.replace("allowed_origins = [", f'allowed_origins = ["{origin}", ', 1)
    )


async def counts(pipeline: Pipeline, account: str) -> list[dict[str, Any]]:
    await pipeline.drain()
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-ACME/accounts/{account}/usage",
            ACME_READ_KEY, {"by": "activity"},
        )  # fmt: skip
    if status == 404:
        return []
    assert status == 200, body
    return list(body["rows"])


async def wait_for_counts(pipeline: Pipeline, account: str, expected: list[dict[str, Any]]) -> None:
    for _ in range(150):
        if await counts(pipeline, account) == expected:
            return
        await asyncio.sleep(0.2)
    assert await counts(pipeline, account) == expected


async def open_page(browser: Browser, url: str, errors: list[str]) -> Page:
    page = await browser.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return page


async def test_clicks_arrive_exactly_including_at_pagehide(
    pipeline: Pipeline, browser: Browser
) -> None:
    origin, site = await host_site(pipeline, "web-1")
    allow_origin(pipeline, origin)
    await pipeline.start_all()
    errors: list[str] = []
    try:
        page = await open_page(browser, origin, errors)
        for _ in range(3):
            await page.click("#create")
        await wait_for_counts(pipeline, "web-1", [{"activity": "Create", "count": 3}])
        for _ in range(2):
            await page.click("#send")
        # Leave at once: the two sends are still queued and go out with sendBeacon.
        assert await page.evaluate("usage.pending()") == 2
        await page.goto("about:blank")
        await wait_for_counts(
            pipeline,
            "web-1",
            [{"activity": "Create", "count": 3}, {"activity": "Send", "count": 2}],
        )
        await page.close()
    finally:
        await site.cleanup()
    assert errors == []


async def test_origin_not_allowed_sends_nothing_that_counts(
    pipeline: Pipeline, browser: Browser
) -> None:
    origin, site = await host_site(pipeline, "web-2")  # not in allowed_origins
    await pipeline.start_all()
    before = await pipeline.end_offsets()
    errors: list[str] = []
    try:
        page = await open_page(browser, origin, errors)
        for _ in range(3):
            await page.click("#create")
        await asyncio.sleep(2)
        await page.goto("about:blank")
        await asyncio.sleep(1)
        await page.close()
    finally:
        await site.cleanup()
    assert await pipeline.end_offsets() == before
    assert await counts(pipeline, "web-2") == []
    assert errors == []
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{pipeline.collector_url}/v1/collect",
            data='{"service_id": "SP-ACME", "account_id": "x", "module": "M", "activity": "A"}',
            headers={"Origin": origin, "Content-Type": "text/plain"},
        ) as response:
            assert (response.status, await response.json()) == (
                403,
                {"error": "origin not allowed"},
            )
        async with session.options(
            f"{pipeline.collector_url}/v1/collect", headers={"Origin": origin}
        ) as response:
            assert response.status == 403


async def test_events_are_retried_while_the_collector_is_down(
    pipeline: Pipeline, browser: Browser
) -> None:
    origin, site = await host_site(pipeline, "web-3")
    allow_origin(pipeline, origin)
    await pipeline.start_all()
    errors: list[str] = []
    try:
        page = await open_page(browser, origin, errors)
        await page.wait_for_function("usage.pending() === 0")  # the identify event went out
        pipeline.stop("collector")
        for _ in range(4):
            await page.click("#create")
        await asyncio.sleep(3)  # sends fail, usage.js backs off and keeps the events
        assert await page.evaluate("usage.pending()") == 4
        await pipeline.start_collector()  # same port
        await wait_for_counts(pipeline, "web-3", [{"activity": "Create", "count": 4}])
        await asyncio.sleep(2)
        assert await counts(pipeline, "web-3") == [{"activity": "Create", "count": 4}]
        await page.close()
    finally:
        await site.cleanup()
    assert errors == []


async def test_demo_page_shows_live_counts(pipeline: Pipeline, browser: Browser) -> None:
    await pipeline.start_all()
    errors: list[str] = []
    url = (f"{pipeline.collector_url}/demo?service=SP-ACME&account=demo-co&key={ACME_READ_KEY}"
           f"&api={pipeline.api_url}")  # fmt: skip
    page = await open_page(browser, url, errors)
    for selector, times in (('[data-activity="Create"]', 3), ('[data-activity="Export"]', 1)):
        for _ in range(times):
            await page.click(selector)
    await page.wait_for_function(
        "document.querySelectorAll('#counts tr td.count').length === 2", timeout=20_000
    )
    cells = await page.eval_on_selector_all("#counts td", "tds => tds.map(td => td.textContent)")
    assert cells == ["Invoices", "Create", "3", "Reports", "Export", "1"]
    artifacts = PROJECT_ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    await page.screenshot(path=str(artifacts / "demo.png"), full_page=True)
    await page.close()
    assert errors == []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{pipeline.collector_url}/usage.js") as response:
            etag = response.headers["ETag"]
            assert response.headers["Cache-Control"] == "public, max-age=300"
        async with session.get(
            f"{pipeline.collector_url}/usage.js", headers={"If-None-Match": etag}
        ) as response:
            assert response.status == 304
    assert Path(artifacts / "demo.png").stat().st_size > 10_000
