"""A real service (uvicorn + a worker on 127.0.0.1) and headless Chromium that may not leave it.

Chromium is Debian's (/usr/bin/chromium, installed by `make test` when missing),
driven by Playwright for Python. Every request the page makes goes through a
route handler: requests to the service's own origin pass, anything else is
aborted and recorded in ``page.outside_requests``, which tests assert is empty.
Screenshots go to test-artifacts/ (ignored by git; README images are copied
from there by the tests that make them).
"""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.service import live

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",  # no calls home: this machine has no internet
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Service:
    url: str
    database_url: str
    processes: list = field(default_factory=list)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    """The API and one worker on a fresh SQLite database, on a free port."""
    from service.core.migrate import upgrade

    database_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'backprop.db'}"
    upgrade(database_url)
    env = live.service_env(
        database_url, poll_seconds=0.05, flush_seconds=0.1, heartbeat_seconds=0.5
    )
    port = live.free_port()
    running = Service(url=f"http://127.0.0.1:{port}", database_url=database_url)
    running.processes = [live.start_api(env, port), live.start_worker(env)]
    try:
        live.wait_until_ready(running.url)
        yield running
    finally:
        for process in running.processes:
            live.stop(process)


@pytest.fixture(scope="module")
def api(service) -> Iterator[httpx.Client]:
    """An HTTP client of the live service (tests prepare data through the API)."""
    with httpx.Client(base_url=service.url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, service):
    """A page that may only talk to ``service``; console errors are collected too."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.outside_requests = []
    page.console_errors = []

    def only_the_service(route, request):
        if request.url.startswith(service.url) or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            page.outside_requests.append(request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
