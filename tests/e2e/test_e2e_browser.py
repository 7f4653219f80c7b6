"""The real app in a real browser: start a run, watch it finish, visit every
page. Screenshots go to artifacts/screenshots/ for people to look at.

Needs Playwright's Python package and Debian's Chromium. Under CI=true both
are required; elsewhere the test skips when either is missing.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
IN_CI = os.environ.get("CI", "").lower() == "true"
WIDTH = 1400


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on a free port, saving runs under ``runs``."""

    def __init__(self, tmp_path: Path, runs: Path, name: str = "server"):
        self.port = _free_port()
        self.log_path = tmp_path / f"{name}.log"
        self.log = open(self.log_path, "wb")
        env = {**os.environ, "MSR_RUNS_DIR": str(runs)}
        self.proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                      "--server.port", str(self.port), "--server.address", "127.0.0.1"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("streamlit did not start:\n" + self.log_path.read_text())
            time.sleep(0.3)

    def stop(self) -> int | None:
        self.proc.terminate()
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = None
        self.log.close()
        return code


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, tmp_path / "runs")
    try:
        yield srv.url, tmp_path / "runs"
    finally:
        srv.stop()


def need_browser() -> None:
    missing = _missing()
    if missing:
        if IN_CI:
            pytest.fail(f"the browser test is mandatory under CI=true, but {missing}")
        pytest.skip(missing)


def settle(page, timeout: float = 60.0) -> None:
    """Wait until the script has finished and charts had a moment to draw."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout * 1000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout * 1000)


def full_page_shot(page, path: Path) -> None:
    """Streamlit scrolls inside its main block, so a full-page screenshot
    needs a viewport as tall as that block."""
    height = page.evaluate("""() => Math.max(...['stMainBlockContainer', 'stMain', 'stAppViewContainer']
        .map(id => document.querySelector(`[data-testid="${id}"]`)).filter(Boolean).map(e => e.scrollHeight))""")
    page.set_viewport_size({"width": WIDTH, "height": min(int(height) + 80, 16000)})
    page.wait_for_timeout(800)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": 900})


def set_number(page, label: str, value) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_train_a_run_in_the_browser_and_visit_every_page(server):
    need_browser()
    from playwright.sync_api import sync_playwright

    url, runs = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            # start where a user starts: the entry point, then the Train link
            page.goto(url + "/")
            nav = '[data-testid="stSidebarNav"]'
            page.wait_for_selector(f'{nav} [data-testid="stNavSectionHeader"]', timeout=60000)
            settle(page)
            page.locator(f'{nav} a[href$="/train"]').click()
            page.get_by_text("Start run").wait_for(timeout=60000)
            settle(page)
            # a tiny run: each field is typed as a user would
            page.get_by_text("Model size, checkpoints, logging and name").click()
            for label, value in [("Angle count", 2), ("Angle step (degrees)", 90), ("Ways (classes per task)", 2),
                                 ("Shots (support images per class)", 1), ("Queries per class", 2),
                                 ("Tasks per step", 2), ("Outer steps", 6), ("Evaluate every … steps", 2),
                                 ("Test tasks per evaluation", 2), ("Conv channels", 4)]:
                set_number(page, label, value)
            page.get_by_label("Run name (optional)", exact=True).fill("browser")
            page.get_by_role("button", name="Start run").click()
            page.get_by_text("Run completed").wait_for(timeout=120000)
            settle(page)
            assert page.locator('[data-testid="stException"]').count() == 0
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            assert charts.count() == 3
            assert page.locator('[data-testid="stVegaLiteChart"] canvas, '
                                '[data-testid="stVegaLiteChart"] svg.marks').count() >= 3
            saved = [d for d in runs.iterdir() if not d.name.startswith(".")]
            assert len(saved) == 1 and '"status": "completed"' in (saved[0] / "status.json").read_text()

            # every page in the navigation, in this same browser session
            links = page.locator('[data-testid="stSidebarNav"] a')
            targets = [(links.nth(i).inner_text().strip(), links.nth(i).get_attribute("href"))
                       for i in range(links.count())]
            assert len(targets) >= 3
            failures = []
            for title, href in targets:
                page.locator(f'[data-testid="stSidebarNav"] a[href="{href}"]').click()
                page.wait_for_url(lambda u, h=href: u.split("?")[0] == h, timeout=30000)  # pages add ?run=…
                settle(page)
                # the link text starts with its icon's name, so name shots by the page's address
                name = re.sub(r"[^a-z0-9]+", "_", href.rstrip("/").rsplit("/", 1)[-1].lower()).strip("_") or "home"
                full_page_shot(page, SHOTS / f"{name}.png")
                errors = page.locator('[data-testid="stException"]')
                if errors.count():
                    failures.append(f"{title}: {errors.first.inner_text()[:300]}")
                if title == "Runs":
                    assert page.get_by_text(saved[0].name).count() >= 1
                    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
            assert not failures, "pages raised errors:\n" + "\n".join(failures)
        finally:
            browser.close()


def fill_tiny_form(page, steps: int) -> None:
    page.get_by_text("Model size, checkpoints, logging and name").click()
    for label, value in [("Angle count", 2), ("Angle step (degrees)", 90), ("Ways (classes per task)", 2),
                         ("Shots (support images per class)", 1), ("Queries per class", 2),
                         ("Tasks per step", 2), ("Outer steps", steps), ("Evaluate every … steps", 50),
                         ("Test tasks per evaluation", 2), ("Conv channels", 4)]:
        set_number(page, label, value)


def status_of(run: Path) -> dict:
    import json
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _cleaned_up(server: Server, runs: Path):
    """Whatever happens in the test, its first server is stopped and no run it started goes on training."""
    from msr.store.liveness import force_stop

    try:
        yield
    finally:
        if server.proc.poll() is None:
            server.stop()
        for run in (runs.iterdir() if runs.is_dir() else []):
            if run.is_dir() and status_of(run).get("status") in ("starting", "running"):
                force_stop(run)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_outlives_a_server_restart_and_the_next_server_stops_it(tmp_path):
    """Start a run in the browser, stop the server (SIGTERM, as Ctrl-C or a
    service manager does), start a new one: the run kept training, and a
    fresh page of the new server shows it with a Stop that works."""
    need_browser()
    from playwright.sync_api import sync_playwright

    runs = tmp_path / "runs"
    first = Server(tmp_path, runs, "first")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p, _cleaned_up(first, runs):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(first.url + "/train")
            page.get_by_text("Start run").wait_for(timeout=60000)
            settle(page)
            fill_tiny_form(page, 100000)
            page.get_by_role("button", name="Start run").click()
            page.get_by_role("button", name="Stop").first.wait_for(timeout=60000)
            run = next(d for d in runs.iterdir() if not d.name.startswith("."))
            deadline = time.monotonic() + 60
            while status_of(run).get("status") != "running" and time.monotonic() < deadline:
                time.sleep(0.2)
            code = first.stop()
            assert code == 0, f"the server ended with {code}:\n" + first.log_path.read_text()[-2000:]
            assert "terminate called" not in first.log_path.read_text()
            step = status_of(run).get("step", 0)
            time.sleep(3)
            assert status_of(run)["status"] == "running" and status_of(run)["step"] > step  # still training

            second = Server(tmp_path, runs, "second")
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(second.url + "/runs")
                page.get_by_text("Training now (1)").wait_for(timeout=60000)
                settle(page)
                page.screenshot(path=str(SHOTS / "restart_1280x720.png"))
                page.set_viewport_size({"width": 1600, "height": 1000})
                page.wait_for_timeout(500)
                page.screenshot(path=str(SHOTS / "restart_1600x1000.png"))
                assert page.locator('[data-testid="stException"]').count() == 0
                page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Stop").click()
                deadline = time.monotonic() + 60
                while status_of(run).get("status") != "stopped" and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert status_of(run)["status"] == "stopped"
                page.get_by_text("No run is training now.").wait_for(timeout=30000)
            finally:
                assert second.stop() == 0
        finally:
            browser.close()
