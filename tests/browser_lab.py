"""JupyterLab on 127.0.0.1 driven by a real headless Chromium, for tests/test_browser.py.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) with Selenium from
PyPI; no browser downloads itself. :func:`missing` says why the browser test cannot run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# Flags for a root user on a machine without a network: no sandbox (root), and no background
# connections (to Google's update, sync and safe-browsing hosts), which the closed network
# would refuse many times over.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def _chromium() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUM) if path), None)


def missing() -> str:
    """Why the browser test cannot run here ('' when it can)."""
    if _chromium() is None:
        return "no Chromium on this machine (Debian: apt-get install chromium chromium-driver)"
    if shutil.which("chromedriver") is None:
        return "no chromedriver on this machine (Debian: apt-get install chromium-driver)"
    for module in ("selenium", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[dev]')"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server serving ``root`` on 127.0.0.1, with its own config and runtime dirs."""

    def __init__(self, root: Path, home: Path, env: dict[str, str] | None = None) -> None:
        self.token = "browser-test"
        self.root = root
        home.mkdir(parents=True, exist_ok=True)
        self.environment = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            **(env or {}),
        }
        # a notebook opens as a plain notebook: no news, no update checks, no kernel chooser
        settings = home / "settings" / "@jupyterlab"
        (settings / "apputils-extension").mkdir(parents=True, exist_ok=True)
        (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        # the kernels listen on Unix sockets in a short folder of their own: a TCP port picked
        # for a kernel can be taken by another process before the kernel binds it
        self.sockets = Path(tempfile.mkdtemp(prefix="lab-kernels-"))
        self.log = (home / "lab.log").open("w")
        # the server's own port can be taken the same way; it then exits (no retries on other
        # ports, whose address the test would not know) and starts again on a new one
        for _ in range(3):
            self.port = _free_port()
            self._log_start = self.log.tell()
            self.process = self._start()
            if self._wait():
                return
        raise RuntimeError(f"JupyterLab could not bind a port 3 times; see {self.log.name}")

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                "--ServerApp.disable_check_xsrf=True",
                "--LabApp.news_url=",
                "--KernelManager.transport=ipc",
                f"--KernelManager.ip={self.sockets / 'k'}",
            ],
            env=self.environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def _wait(self, seconds: float = 60) -> bool:
        """True once the server answers; False if it exited because its port was taken."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.flush()
                with open(self.log.name) as log:
                    log.seek(self._log_start)
                    taken = "already in use" in log.read()
                if taken:
                    return False
                raise RuntimeError(f"JupyterLab exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url("api/status"), timeout=2).read()
                return True
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {seconds:.0f} s; see {self.log.name}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.sockets, ignore_errors=True)


def chromium(profile: Path):
    """A headless Chromium under Selenium, its console logged, in a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    return driver
