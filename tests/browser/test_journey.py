"""The seed's journey in a real browser against `cebhub run`, with screenshots of the screens."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.console_support import build_lists, build_world, password
from tests.test_console_serving import free_port, set_console, start_hub, stop_hub, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots go to test-artifacts/ on every run; CEBHUB_SCREENSHOTS=docs/screenshots refreshes
# the README's pictures (and only then are tracked files touched).
SHOTS = Path(
    os.environ.get("CEBHUB_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)
WAIT_SECONDS = 30  # for the running hub to deliver, review and answer

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
def console(hub_ws, keys):
    """The journey's data, then `cebhub run` serving the console on a free port."""
    world = build_world(hub_ws, keys)
    lw = build_lists(world, keys)
    port = free_port()
    set_console(hub_ws, port=port)
    proc = start_hub(hub_ws)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/login", proc)
        yield base, lw
    finally:
        assert stop_hub(proc) == 0


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", password(user))
    page.click("button[type=submit]:has-text('Log in')")
    page.wait_for_load_state()


def log_out(page) -> None:
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/login")


def until(page, url: str, text: str) -> None:
    """Reload `url` until it shows `text`: the hub works in the background."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        page.goto(url)
        if text in page.content():
            return
        assert time.monotonic() < deadline, f"{url} never showed {text!r}"
        time.sleep(0.3)


def test_operator_and_officers_walk_the_seeds_journey(console, browser):
    base, lw = console
    world = lw.world
    page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")

    # log in
    page.goto(f"{base}/orders")
    assert "/login" in page.url
    shot(page, "01-login")
    log_in(page, base, "alice")
    assert page.url.endswith("/orders")

    # Transaction data → electronic order query → order details → order goods
    order_no = world.a_orders[0]
    page.fill("#conditions input[name=orderNo]", order_no)
    page.click("#conditions button[type=submit]")
    page.wait_for_load_state()
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1 and order_no in rows.first.inner_text()
    page.fill("#conditions input[name=orderNo]", "")
    page.click("#conditions button[type=submit]")
    page.wait_for_load_state()
    shot(page, "02-order-query")
    page.click(f"#results a:has-text('{order_no}')")
    page.wait_for_load_state()
    assert page.locator("#head").is_visible()
    assert page.get_attribute("#head span[title=acturalPaid]", "title") == "acturalPaid"
    shot(page, "03-order-details")
    page.click("a:has-text('Order goods')")
    page.wait_for_load_state()
    assert page.locator("#lines tbody tr").count() >= 1
    shot(page, "04-order-goods")

    # Lists → query list to be declared → details → modify
    page.click("nav a:has-text('To be declared')")
    page.wait_for_load_state()
    first, second, third = lw.temporary[:3]
    assert page.locator("#results input[name=ids]").count() == len(lw.temporary)
    shot(page, "05-lists-to-be-declared")
    page.fill("#conditions input[name=copNo]", first.cop_no)
    page.click("#conditions button[type=submit]")
    page.wait_for_load_state()
    page.click(f"#results tr[data-cop-no='{first.cop_no}'] a:has-text('Details')")
    page.wait_for_load_state()
    assert page.locator("#match tr.mismatch").count() == 0
    shot(page, "06-list-details")
    page.click("#modify")
    page.wait_for_load_state()
    page.fill("input[name=consigneeAddress]", "广东省广州市天河区别处路 99 号")
    page.fill("textarea[name=note]", "收货地址已更正 address corrected")
    page.click("#save")
    page.wait_for_load_state()
    assert "Saved as temporary" in page.content()
    assert page.locator("#match tr.mismatch").count() >= 1  # the address no longer matches

    # select three lists → batch declare, one result per list
    page.click("nav a:has-text('To be declared')")
    page.wait_for_load_state()
    for p in (first, second, third):
        page.check(f"#results tr[data-cop-no='{p.cop_no}'] input[name=ids]")
    page.click("#batch-declare")
    page.wait_for_load_state()
    results = page.locator("#declare-results tr")
    assert results.count() == 4  # header + three lists
    assert page.content().count("成功 declared") == 3
    shot(page, "07-batch-declare-result")

    # the modified list comes back returned: its operation log says why, in plain words
    first_id = lw.list_id(first.cop_no)
    until(page, f"{base}/lists/{first_id}/log", "consignee filing abnormal")
    reason = page.inner_text("#return-reason")
    assert "consignee filing abnormal" in reason
    shot(page, "08-operation-log")
    until(page, f"{base}/lists/declared?status=manual_review", second.cop_no)
    assert third.cop_no in page.content()
    shot(page, "09-declared-lists")
    log_out(page)

    # officers: customs, then inspection, release a list from the review queue
    pre_no = world_pre_no(lw, second.cop_no)
    for officer in ("carol", "ivan"):
        log_in(page, base, officer)
        assert page.url.endswith("/review")
        row = page.locator(f"#queue tr[data-pre-no='{pre_no}']")
        assert "value>0" in row.inner_text()
        if officer == "carol":
            shot(page, "10-review-queue")
        row.locator("select[name=decision]").select_option("release")
        row.locator("input[name=reason]").fill("单证齐全 papers in order")
        row.locator("button:has-text('Decide')").click()
        page.wait_for_load_state()
        assert "Decision recorded" in page.content()
        log_out(page)
    log_in(page, base, "alice")
    until(page, f"{base}/lists/declared?status=closed", second.cop_no)
    page.goto(f"{base}/lists/{lw.list_id(second.cop_no)}/log")
    log_text = page.inner_text("#log")
    assert "customs officer carol" in log_text and "inspection officer ivan" in log_text
    assert "结关 closed" in log_text


def world_pre_no(lw, cop_no: str) -> str:
    from sqlalchemy import select

    from hub.clearance.tables import lists

    with lw.world.engine.connect() as conn:
        return conn.execute(select(lists.c.pre_no).where(lists.c.cop_no == cop_no)).scalar_one()
