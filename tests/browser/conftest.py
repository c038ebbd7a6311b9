"""Fixtures for the browser tests: the local stack as a subprocess, headless Chromium (Debian's package)
driven by Playwright, a fresh page per test, and screenshots saved as test artifacts."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"  # browser.mk installs it
SERIOUS = ("serious", "critical")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STACK_START_SECONDS = 90
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed: `make browser-deps` installs requirements-browser.txt"
    if not AXE.exists():
        return f"{AXE} is missing: `make browser-deps` installs axe-core"
    return None


@pytest.fixture(scope="session", autouse=True)
def browser_available() -> None:
    """Skips the browser tests where Chromium is not installed; in CI, which installs it, that fails."""
    reason = _unavailable()
    if reason and os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    if reason:
        pytest.skip(reason)


@dataclass
class LocalStack:
    """The running `python -m infra.local.run` and the URLs it printed."""

    url: str
    qbo_url: str
    xero_url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def token(self, organisation: str) -> str:
        response = httpx.post(f"{self.url}/_local/token", json={"organisation_id": organisation})
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def call(self, method: str, path: str, organisation: str, json_body: Any = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(organisation)}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, json=json_body, timeout=30)

    def settle(self) -> None:
        """Returns once the stack's queues are drained and no message is in flight (the poller has handled
        everything queued so far)."""
        httpx.post(f"{self.url}/_local/settle", timeout=120).raise_for_status()

    def fire_schedule(self, function: str) -> Any:
        response = httpx.post(f"{self.url}/_local/schedules/{function}", timeout=60)
        response.raise_for_status()
        return response.json()


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@pytest.fixture(scope="session")
def local_stack(browser_available: None) -> Iterator[LocalStack]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "local-stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.run", "--port", "0", "--qbo-port", "0", "--xero-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + STACK_START_SECONDS
    try:
        while "READY" not in printed:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                pytest.fail(f"the local stack printed no READY within {STACK_START_SECONDS} s: {printed}")
            if line is None:
                pytest.fail(f"the local stack exited ({process.wait()}); see {log.name}: {printed}")
            printed.append(line.strip())
        text = "\n".join(printed)

        def url_after(label: str) -> str:
            match = re.search(rf"{label}\s*(http://\S+)", text)
            assert match, f"the local stack did not print its {label.strip(':')} URL:\n{text}"
            return match.group(1).rstrip("/")

        yield LocalStack(
            url_after("running at"), url_after("QBO sandbox:"), url_after("Xero sandbox:"), process, printed
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def browser(local_stack: LocalStack) -> Iterator[BrowserContext]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=DESKTOP,
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(10_000)
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    """A fresh tab with no cookies; fails the test on any uncaught error in the page's script."""
    browser.clear_cookies()
    tab = browser.new_page()
    tab.set_viewport_size(DESKTOP)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    for extra in browser.pages:
        if extra is not tab and not extra.is_closed() and extra.url != "about:blank":
            extra.close()
    tab.close()
    assert not errors, f"the page's script failed: {errors}"


class Screenshots:
    """Saves `test-artifacts/browser/<test>-<step>.png`."""

    def __init__(self, test_name: str) -> None:
        self.test_name = re.sub(r"[^\w-]+", "_", test_name)

    def __call__(self, page: Page, step: str) -> Path:
        path = ARTIFACTS / f"{self.test_name}-{step}.png"
        # a full-page capture of a loaded machine can outlast the 10 s action timeout: it asserts nothing
        page.screenshot(path=str(path), full_page=True, timeout=60_000)
        return path


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Screenshots:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return Screenshots(request.node.name)


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations (WCAG 2.x A and AA, and its best practices) on the page as
    it is now, one line per rule with the elements it found."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(({id, impact, help, nodes}) => ({id, impact, help,
                  targets: nodes.map((n) => n.target.join(" ")).slice(0, 5)}))"""
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}): {v['targets']}" for v in found if v["impact"] in SERIOUS
    ]
