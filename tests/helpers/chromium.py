"""Headless Chromium driven over the DevTools protocol on a pipe (no extra dependencies).

Chromium reads protocol messages from file descriptor 3 and writes its answers to 4
(``--remote-debugging-pipe``), each a JSON object ended by a NUL byte. Enough of the
protocol for the TensorBoard end-to-end test: open a page, evaluate JavaScript in it
(e.g. to read text inside shadow roots, which ``--dump-dom`` leaves out), screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

# Every text node of the page, shadow roots included (style and script text left out).
DEEP_TEXT = """(() => {
  const texts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text) texts.push(text);
      return;
    }
    if (node.nodeName === 'STYLE' || node.nodeName === 'SCRIPT') return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return texts;
})()"""


class Chromium:
    """One headless Chromium process with one page; a context manager.

    Args:
        profile: A fresh directory for the browser profile (made if missing); the
            browser's stderr goes to ``chromium-stderr.log`` in it.
        window: The page's viewport in pixels (width, height).
    """

    def __init__(self, profile: pathlib.Path, *, window: tuple[int, int] = (1400, 900)) -> None:
        executable = shutil.which("chromium")
        if executable is None:
            raise FileNotFoundError("`chromium` must be on PATH, but got none")
        profile.mkdir(parents=True, exist_ok=True)
        self._log = profile / "chromium-stderr.log"
        # The browser's ends of the two pipes, moved above fd 9 (close-on-exec) so that
        # placing them at 3 and 4 in the child cannot overwrite one with the other.
        reads, self._to_browser = os.pipe()
        self._from_browser, writes = os.pipe()
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (reads, writes)]
        os.close(reads)
        os.close(writes)

        def place_pipes() -> None:  # In the child, before exec: fd 3 and fd 4.
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        try:
            with open(self._log, "wb") as log:  # A file: a full pipe would stall the browser.
                self._process = subprocess.Popen(
                    [
                        executable,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        "--remote-debugging-pipe",
                        f"--user-data-dir={profile}",
                        f"--window-size={window[0]},{window[1]}",
                        "about:blank",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    close_fds=False,  # Python's own descriptors are not inheritable anyway.
                    preexec_fn=place_pipes,
                )
        finally:
            for fd in ends:
                os.close(fd)
        self._window = window
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends the browser (politely, then by force)."""
        with contextlib.suppress(OSError):
            self._send("Browser.close", session=False)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)

    def open(self, url: str) -> None:
        """Opens ``url`` in a new page, which later calls act on."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        target = target["targetId"]
        attached = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )
        self._session = attached["sessionId"]
        width, height = self._window
        self.call(  # The viewport itself, whatever the window's frame takes.
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        answer = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"JavaScript failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, ready: Callable[[Any], bool], timeout: float) -> Any:
        """Evaluates ``expression`` until ``ready(value)`` holds; returns that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if ready(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the page did not get ready in {timeout} s: {value!r}")
            time.sleep(0.25)

    def screenshot(self, path: pathlib.Path) -> None:
        """Writes a PNG of the page's viewport to ``path``."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        """Sends a protocol command and returns its result (raises on a protocol error)."""
        message_id = self._send(method, params, session=session)
        while True:
            message = self._receive()
            if message.get("id") != message_id:
                continue  # An event, or the answer to an earlier command.
            if "error" in message:
                raise RuntimeError(f"{method} failed: {message['error']}")
            return message["result"]

    def _send(self, method: str, params: dict[str, Any] | None = None, *, session: bool) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                stderr = self._log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"chromium closed its pipe; its stderr ends:\n{stderr}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)
