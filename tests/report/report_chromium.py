"""Open an HTML file in headless Chromium and report broken images, console errors and a
screenshot, through the DevTools protocol over ``--remote-debugging-pipe`` (no extra package).

Used by ``test_report_browser.py``; :func:`find_chromium` returns ``None`` when no browser is installed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)

_CHECK_IMAGES = """
(() => {
  const images = Array.from(document.images);
  return JSON.stringify({
    total: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    tables: document.querySelectorAll('table.metrics').length,
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  });
})()
"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What the page showed: image counts, broken image sources, console errors, screenshot."""

    total_images: int
    broken_images: list[str]
    metrics_tables: int
    console_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class _Pipe:
    def __init__(self, process: subprocess.Popen[bytes], write_fd: int, read_fd: int) -> None:
        self.process = process
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no reply to {method} within {timeout} s")

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self._read(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)
        raise TimeoutError(f"no {method} event within {timeout} s")

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("chromium did not answer")
            ready, _, _ = select.select([self.read_fd], [], [], remaining)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)


def check_page(html_file: Path, screenshot: Path, *, width: int = 1280, height: int = 900,
               timeout: float = 60.0) -> PageCheck:
    """Load ``html_file``, wait for it, check its images, collect console errors, screenshot."""
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium executable on PATH")
    profile = tempfile.mkdtemp(prefix="losslab-chromium-")
    # Chromium reads commands from fd 3 and writes replies to fd 4.
    to_browser_read, to_browser_write = os.pipe()
    from_browser_read, from_browser_write = os.pipe()
    command = [browser, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
               f"--window-size={width},{height}", "about:blank"]

    def child_setup() -> None:
        os.dup2(to_browser_read, 3)
        os.dup2(from_browser_write, 4)
        os.set_inheritable(3, True)  # dup2 onto the same number keeps close-on-exec
        os.set_inheritable(4, True)

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=child_setup,
                               close_fds=False)
    os.close(to_browser_read)
    os.close(from_browser_write)
    pipe = _Pipe(process, to_browser_write, from_browser_read)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
        session = pipe.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                      "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            pipe.send(domain, session=session)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        pipe.send("Page.navigate", {"url": html_file.resolve().as_uri()}, session=session)
        pipe.wait_event("Page.loadEventFired", timeout=timeout)
        result = pipe.send("Runtime.evaluate", {"expression": _CHECK_IMAGES,
                                                "returnByValue": True}, session=session)
        facts = json.loads(result["result"]["value"])
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": min(int(facts["height"]), 16000),
                   "deviceScaleFactor": 1, "mobile": False}, session=session)
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=session, timeout=timeout)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors = []
        for event in pipe.events:
            method = event.get("method")
            params = event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                       for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append(str(params.get("exceptionDetails", {}).get("text", "exception")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        return PageCheck(facts["total"], facts["broken"], facts["tables"], errors, screenshot)
    finally:
        with contextlib.suppress(Exception):
            pipe.send("Browser.close", timeout=5)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        os.close(to_browser_write)
        os.close(from_browser_read)
        shutil.rmtree(profile, ignore_errors=True)
