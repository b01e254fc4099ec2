"""Argilla's web UI, served by `curate review serve argilla` with the embedded search engine, in headless Chromium
(playwright driving the system's Chromium, which scripts/test.sh installs): log in, open a pushed dataset, see
its record and questions, answer one through the UI, and `pull` brings the verdict back. The screenshots are
kept in test-artifacts/ (or $CURATE_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from curation.review.backends import snapshot_key
from curation.review.items import ReviewItem
from tests.conftest import REPO


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (Debian), as scripts/test.sh does",
                    pytrace=False)
    return path


def test_a_reviewer_logs_in_to_argilla_s_ui_sees_the_pushed_records_and_answers_one(argilla) -> None:  # noqa: ANN001
    from playwright.sync_api import expect, sync_playwright

    from curation.review.backends.argilla import ArgillaBackend

    artifacts = Path(os.environ.get("CURATE_TEST_ARTIFACTS") or REPO / "test-artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    backend = ArgillaBackend(url=argilla.url, api_key=argilla.api_key)
    key = snapshot_key(1, store_id=uuid.uuid4().hex)
    items = [ReviewItem(item_id=f"1:s{i}:1", kind="sample", snapshot_id=1, sample_id=f"s{i}", version=1,
                        stratum="clean", instruction=f"Name the capital of country number {i}.",
                        output=f"The capital is city {i}.", source="ui.jsonl", lang="en") for i in range(3)]
    pushed = backend.push(key, "sample", items)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{argilla.url}/sign-in", wait_until="networkidle")
            page.locator("input").first.fill(argilla.username)
            page.locator("input[type=password]").fill(argilla.password)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: "/sign-in" not in url, timeout=60_000)
            page.goto(pushed.url, wait_until="networkidle")
            # the record (one of the three pushed, in the user's own order) and every question of ours
            expect(page.get_by_text("1 of 3")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Name the capital of country number")).to_be_visible()
            body = page.inner_text("body")
            for text in ("Verdict", "Error categories (when rejecting)", "Corrected answer (optional)", "incomplete",
                         "accept", "reject", "Instruction", "Answer"):
                assert text in body, (text, body[:2000])
            page.screenshot(path=str(artifacts / "argilla-ui-dataset.png"), full_page=True)
            shown = page.get_by_text("Name the capital of country number").inner_text()
            page.get_by_text("reject", exact=True).click()
            page.get_by_text("incomplete", exact=True).click()
            page.get_by_role("button", name="Submit").click()
            expect(page.get_by_text("2 of 3").or_(page.get_by_text("1 of 2"))).to_be_visible(timeout=60_000)
            page.screenshot(path=str(artifacts / "argilla-ui-after-submit.png"), full_page=True)
        finally:
            browser.close()
    answered = next(it.item_id for it in items if it.instruction == shown.strip())
    pulled = backend.pull(key, "sample")
    assert [(v["item_id"], v["reviewer"], v["verdict"], v["categories"]) for v in pulled] == \
        [(answered, argilla.username, "reject", ["incomplete"])]
