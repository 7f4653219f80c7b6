"""The demo as a lecturer gives it, on a projector (1280×720) and on a large screen (1600×1000).

Home → "Train the demo model" → the live run, in view without scrolling →
a finished run → the pages that look inside it, through the sidebar, each on
that run → Paper check with U in the first screen while it trains, also in
presentation mode → presentation mode (Home, Train, and Runs, whose table grows
with the charts' text). On every page no text may be cut:
the check is in the DOM (an element that clips its text is wider inside
than out), not only in the screenshots, which are kept for people under
artifacts/screenshots/demo_flow/<size>/.
"""
from __future__ import annotations

import json
import shutil

import pytest

from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, Server, need_browser, settle

SIZES = [(1280, 720), (1600, 1000)]
FOLDER = SHOTS / "demo_flow"

# Text that does not fit its box: clipped (overflow hidden or clip) or ellipsized, on screen.
CUT_TEXT_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')]
  .filter(e => {
    const r = e.getBoundingClientRect(), cs = getComputedStyle(e);
    return e.innerText && e.innerText.trim() && r.width > 0 && r.right > 0 && r.left < innerWidth
      && e.scrollWidth > e.clientWidth + 1
      && (cs.overflowX === 'hidden' || cs.overflowX === 'clip' || cs.textOverflow === 'ellipsis');
  })
  .map(e => e.innerText.trim().split('\\n')[0].slice(0, 80))"""


def cut_text(page) -> list[str]:
    return page.evaluate(CUT_TEXT_JS)


class Walk:
    """One browser page at one size: every stop is screenshotted and checked."""

    def __init__(self, page, folder):
        self.page, self.folder, self.problems = page, folder, []
        shutil.rmtree(folder, ignore_errors=True)  # only this walk's pictures
        folder.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        self.page.screenshot(path=str(self.folder / f"{name}.png"))
        self.problems += [f"{name}: cut text {t!r}" for t in cut_text(self.page)]
        errors = self.page.locator('[data-testid="stException"]')
        if errors.count():
            self.problems.append(f"{name}: {errors.first.inner_text()[:300]}")

    def visit(self, url: str, name: str) -> None:
        self.page.goto(url)
        settle(self.page)
        self.check(name)


def in_view(locator, height: int) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 120) <= height


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("width,height", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_demo_fits_the_screen_from_home_to_paper_check(tmp_path, width, height):
    need_browser()
    from playwright.sync_api import sync_playwright

    runs = tmp_path / "runs"
    server = Server(tmp_path, runs)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                walk = Walk(browser.new_page(viewport={"width": width, "height": height}),
                            FOLDER / f"{width}x{height}")
                page = walk.page
                walk.visit(server.url + "/", "1_home")

                # one click: the page becomes the live run, in view without scrolling
                page.get_by_role("button", name="Train the demo model").click()
                progress = page.locator('[data-testid="stProgress"]').first
                progress.wait_for(timeout=60000)
                page.wait_for_url("**/train?*run=*", timeout=5000)  # the address names the run it shows
                assert page.get_by_role("button", name="Start run").count() == 0, "the form folds away"
                assert in_view(progress, height)
                chart = page.locator('[data-testid="stMain"] [data-testid="stVegaLiteChart"]').first
                chart.wait_for(timeout=120000)
                assert in_view(chart, height), "the live charts are in view without scrolling"
                settle(page)
                walk.check("2_train_live")

                page.get_by_text("Run completed").wait_for(timeout=400000)
                settle(page)
                walk.check("3_train_done")
                run_id = next(d.name for d in runs.iterdir() if not d.name.startswith("."))

                # a newer run beside it: the pages must open on the run this session trained, not the newest
                copy = runs / ("29991231-000000-" + run_id.split("-", 2)[2])
                shutil.copytree(runs / run_id, copy)
                status = json.loads((copy / "status.json").read_text())
                (copy / "status.json").write_text(json.dumps({**status, "created": status["created"] + 3600}))

                # look inside the run, going page to page through the sidebar (its links name no run)
                nav = page.locator('[data-testid="stSidebarNav"]')
                for n, slug in enumerate(["data", "errors", "weights", "symmetry", "runs"], start=4):
                    nav.locator(f'a[href$="/{slug}"]').click()
                    page.wait_for_url(f"**/{slug}?*run={run_id}*", timeout=60000)
                    settle(page, 240)  # Symmetry reads each checkpoint with the lens on a first visit
                    walk.check(f"{n}_{slug}")
                    main = page.locator('[data-testid="stMain"]').inner_html()
                    assert run_id in main, f"{slug} shows the run"
                    if slug != "runs":  # the Runs page lists every run
                        assert copy.name not in main, f"{slug} shows the run chosen, not the newest"

                # Paper check: a short rank1 group; U is drawn while it trains
                page.goto(server.url + "/paper_check")
                settle(page)
                steps = page.get_by_label("Outer steps", exact=True)
                steps.fill("3000")
                steps.press("Tab")
                page.get_by_role("button", name="Run", exact=True).click()
                page.get_by_text("U of MSR-FC at step", exact=False).first.wait_for(timeout=180000)
                stop = page.get_by_role("button", name="Stop all")
                assert stop.count() == 1, "U is drawn while the group trains"
                settle(page)
                u_picture = page.locator('[data-testid="stMain"] [data-testid="stImage"]').first
                assert in_view(u_picture, height), "U is in the first screen while the group trains"
                walk.check("9_paper_check_live")
                walk.visit(f"{server.url}/paper_check?present=1", "9_paper_check_live_presenting")
                assert in_view(u_picture, height), "and in presentation mode"
                page.get_by_role("button", name="Stop all").click()
                page.get_by_text("can be resumed from the Runs page").first.wait_for(timeout=120000)

                # presentation mode: from the URL, sidebar folded, kept when moving to another page
                walk.visit(f"{server.url}/?present=1", "10_presentation_home")
                sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
                assert sidebar is None or sidebar["x"] + sidebar["width"] <= 1, "the sidebar is folded away"
                page.get_by_text("Choose your own settings").click()
                page.wait_for_url("**/train?*present=1*", timeout=30000)  # the mode goes along
                settle(page)
                walk.check("11_presentation_train")
                walk.visit(f"{server.url}/runs?present=1", "12_presentation_runs")
                cell = page.locator('[data-testid="stMain"] [data-testid="stTable"] td').first
                size = cell.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
                assert size >= 18, f"presenting, a table's text grows as the charts' does ({size:.0f} px)"
                assert not walk.problems, "\n".join(walk.problems)
            finally:
                browser.close()
    finally:
        server.stop()
