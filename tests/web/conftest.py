"""Page tests in a real browser: Debian's Chromium (/usr/bin/chromium, installed by scripts/install.sh)
driven by Playwright, against ``copilot serve`` on loopback with the sample brand loaded. Screenshots of
each page go to artifacts/screenshots/; a page that logs a console error fails its test."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import REPO
from tests.serve import COPILOT, served

CHROMIUM = Path(os.environ.get("COPILOT_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO / "artifacts" / "screenshots"


@dataclass(frozen=True)
class Live:
    base: str
    keys: dict[str, str]  # role -> key of the sample brand


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``copilot demo --no-serve`` (sample brand and its keys), then ``copilot serve`` on a free port."""
    data = tmp_path_factory.mktemp("web") / "data"
    env = {**os.environ, "COPILOT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "COPILOT_UPLOAD_SYNC_BYTES": "2048"}
    env.pop("COPILOT_LLM_BASE_URL", None)
    subprocess.run([*COPILOT, "demo", "--no-serve"], env=env, check=True, capture_output=True, timeout=600)
    keys = json.loads((data / "demo-keys.json").read_text())
    for role in ("content", "qa"):
        made = subprocess.run([*COPILOT, "keys", "create", "--tenant", "brightwave", "--role", role, "--json"],
                              env=env, check=True, capture_output=True, text=True, timeout=120)
        keys[role] = json.loads(made.stdout)["key"]
    with served(env, data.parent / "server.log") as base:
        yield Live(base, keys)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install.sh (it installs Debian's chromium) or set "
                    "COPILOT_CHROMIUM")
    with sync_playwright() as playwright:
        # --no-sandbox: CI and these machines run as root, where Chromium's sandbox cannot start
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def console_problems() -> list[str]:
    """Console errors and uncaught exceptions of the test's tab; a test may remove the ones it caused."""
    return []


@pytest.fixture
def page(browser: Browser, live: Live, console_problems: list[str]) -> Iterator[Page]:
    """A fresh laptop-sized tab (1366x768); any console error or uncaught exception fails the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=live.base)
    tab = context.new_page()
    problems = console_problems

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
    assert problems == [], problems


def sign_in(page: Page, key: str, next_page: str) -> None:
    """Through the sign-in form, as a person does; lands on ``next_page``."""
    page.goto(f"/app/?next={next_page}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{next_page}")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
