"""Driving the web console in Debian's Chromium (Playwright's sync API, never ``playwright install``).

- ``launch_chromium``: the system browser (scripts/install-browser.sh installs it), headless, no network
  chatter of its own
- ``PageWatch``: everything that went wrong in a page (script errors, console errors, failed requests,
  responses >= 400 the test did not expect), asserted empty at the end of a test
- ``time_to_selector``: how long a navigation in a new tab takes until an element is in the DOM (measured
  in the page: from navigation start, by a MutationObserver that an init script installs);
  ``time_loads``: the same for repeated loads in one tab
- ``fill_answer_cache``: many stored answers, fast, straight into the answer store's collection
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    return shutil.which("chromium")


@contextlib.contextmanager
def launch_chromium() -> Iterator:
    """A headless Chromium (the Debian package); yields a Playwright ``Browser``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("chromium is not installed: run scripts/install-browser.sh")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageWatch:
    """Collects what went wrong in a page. ``expect(status, path)`` allows one kind of error response."""

    page: object
    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)
    responses: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        page = self.page
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        # Chromium also logs every response >= 400 as a console error: those are judged in _response
        if msg.text.startswith("Failed to load resource: the server responded with a status of"):
            return
        self.problems.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def _failed(self, request) -> None:
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response) -> None:
        path = urlsplit(response.url).path
        self.responses.append((response.request.method, path, response.status))
        if response.status < 400:
            return
        if any(status == response.status and path.startswith(prefix) for status, prefix in self.expected):
            return
        body = ""
        with contextlib.suppress(Exception):
            body = response.text()[:300]
        self.problems.append(f"unexpected HTTP {response.status}: {response.request.method} {response.url} {body}")

    def expect(self, status: int, path_prefix: str) -> None:
        self.expected.append((status, path_prefix))

    def assert_clean(self) -> None:
        assert not self.problems, "problems in the page:\n" + "\n".join(self.problems)


# records when the first element matching the selector enters the DOM (ms since navigation start)
_FIRST_SEEN = """
(() => {
  const selector = %s;
  const seen = () => {
    if (window.__firstSeenAt === undefined && document.querySelector(selector)) {
      window.__firstSeenAt = performance.now();
      return true;
    }
    return false;
  };
  const observer = new MutationObserver(() => { if (seen()) observer.disconnect(); });
  observer.observe(document, { childList: true, subtree: true });
})();
"""


# where the time went: when the document, each asset and each API call ended (ms since navigation start)
_BREAKDOWN = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const out = {document: Math.round(nav.responseEnd)};
  for (const e of performance.getEntriesByType('resource')) {
    const name = new URL(e.name).pathname.split('/').pop() || e.name;
    out[name] = [Math.round(e.startTime), Math.round(e.responseEnd)];
  }
  return out;
}"""


@dataclass
class Timing:
    ms: float  # navigation start until the selector matched
    problems: list[str]
    breakdown: dict  # document / asset / API call -> [start, end] in ms since navigation start


def time_to_selector(browser, url: str, selector: str, *, context=None, timeout_ms: float = 30_000) -> Timing:
    """Opens ``url`` in a new tab and measures, in the page, how long from navigation start until
    ``selector`` was in the DOM. In ``context`` when given (a browser in use: its renderer and font
    caches warm), else in a fresh context (nothing cached, a new renderer process)."""
    own = context is None
    if own:
        context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        watch = PageWatch(page)
        page.add_init_script(_FIRST_SEEN % json.dumps(selector))
        page.goto(url)
        page.wait_for_selector(selector, state="attached", timeout=timeout_ms)
        elapsed = page.evaluate("window.__firstSeenAt")
        page.wait_for_load_state("networkidle")
        return Timing(float(elapsed), watch.problems, page.evaluate(_BREAKDOWN))
    finally:
        page.close()
        if own:
            context.close()


def time_loads(context, url: str, selector: str, n: int, *, timeout_ms: float = 30_000) -> list[Timing]:
    """Loads ``url`` ``n`` times in one tab (each a full page load: a new document, the tab's renderer
    kept, as when a user reloads or comes back to the console) and measures each as ``time_to_selector``."""
    page = context.new_page()
    try:
        watch = PageWatch(page)
        page.add_init_script(_FIRST_SEEN % json.dumps(selector))
        base, _, fragment = url.partition("#")
        out = []
        for i in range(n):
            page.goto(f"{base}?load={i}#{fragment}")  # another URL each time: a real navigation
            page.wait_for_selector(selector, state="attached", timeout=timeout_ms)
            elapsed = page.evaluate("window.__firstSeenAt")
            page.wait_for_load_state("networkidle")
            out.append(Timing(float(elapsed), list(watch.problems), page.evaluate(_BREAKDOWN)))
        return out
    finally:
        page.close()


def fill_answer_cache(answer_store, n: int, dim: int, *, tenant: str = "bulk", model: str = "bulk-model") -> float:
    """Stores ``n`` answers (random unit vectors) in batches through the answer store's bulk insert;
    returns the seconds it took."""
    from writing.core.models import AnswerKey

    t0 = time.perf_counter()
    rng = np.random.default_rng(12)
    key = AnswerKey(tenant=tenant, model=model, context="bulk", max_tokens=64)
    batch = 1000
    for start in range(0, n, batch):
        size = min(batch, n - start)
        vectors = rng.standard_normal((size, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [(f"批量提示词 {start + i}", f"批量答案 {start + i}") for i in range(size)]
        answer_store.put_many(vectors, texts, key=key, stops=(), completion_tokens=8)
    return time.perf_counter() - t0
