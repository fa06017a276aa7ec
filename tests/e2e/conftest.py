"""Browser tests: Playwright driving Debian's Chromium against `certdesk serve` on a free port.

Under CI=true a missing Chromium fails the run instead of skipping it (`make test` installs it).
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.helpers import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    instance: Path
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, needle: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"server never printed {needle!r}; output: {self.lines}")


def start_server(instance: Path, extra_env: dict | None = None) -> LiveServer:
    """Run `certdesk serve` as a user would, on a free loopback port, until it answers."""
    port = free_port()
    env = dict(
        os.environ,
        CERTDESK_INSTANCE=str(instance),
        CERTDESK_SECRET_KEY="e2e-secret",
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", instance, proc)
    lines: queue.SimpleQueue = queue.SimpleQueue()

    def pump():
        for line in proc.stdout:
            server.lines.append(line.rstrip())
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"certdesk serve exited: {server.lines}")
        try:
            if requests.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"certdesk serve did not start: {server.lines}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI=true (apt-get install chromium)")
        pytest.skip("Chromium is not installed; `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def live_server(db_templates, tmp_path):
    """CertDesk served for real, over a migrated database with admin/operator/auditor users."""
    from tests.conftest import _instance_from

    server = start_server(_instance_from(db_templates["users"], tmp_path / "instance"))
    yield server
    stop_server(server)


@pytest.fixture
def fresh_server(db_templates, tmp_path):
    """CertDesk served over an empty database (no users yet: the first-run setup applies)."""
    from tests.conftest import _instance_from

    server = start_server(_instance_from(db_templates["empty"], tmp_path / "instance"))
    yield server
    stop_server(server)


def login(page, server: LiveServer, username: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
