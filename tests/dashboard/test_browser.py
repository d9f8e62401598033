"""End to end: ``aitrader dashboard`` as a real server, loaded in headless Chromium.

Skipped (with a message) only where chromium is not installed (``make chromium`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aitrader.core.paths import Home

from .cdp import Browser, stop_group

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (run 'make chromium'); "
                                                          "the dashboard browser test needs it")
CHART_READY = ("document.querySelector('[data-testid=\"stPlotlyChart\"] .main-svg') !== null"
               " && document.body.innerText.includes('Equity vs buy-and-hold')"
               " && document.body.innerText.includes('102,000.00')")
# Set this to keep the screenshot for a human to look at.
SHOT = os.environ.get("AITRADER_DASHBOARD_SHOT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise AssertionError("the dashboard did not become healthy in time")


@pytest.mark.timeout(60)
def test_dashboard_in_headless_chromium(dash_home: Home, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AITRADER_HOME": str(dash_home.root)}
    env.pop("AITRADER_CONFIG", None)
    cfg = tmp_path / "fast_refresh.yaml"
    cfg.write_text("dashboard:\n  refresh_seconds: 1\n", encoding="utf-8")
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "aitrader", "--home", str(dash_home.root), "--config", str(cfg),
                               "dashboard", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_healthy(url, server, timeout=25)
        assert CHROMIUM is not None
        with Browser(CHROMIUM) as browser:
            browser.goto(url)
            assert browser.wait_for(CHART_READY, timeout=25), "the equity chart never rendered"
            time.sleep(0.5)  # let plotly finish drawing the traces
            shot = tmp_path / "dashboard.png"
            browser.screenshot(shot)
            dom = browser.dom()
            # Auto-refresh: the fragment re-renders by itself (its "Rendered" stamp changes).
            stamp = browser.evaluate("document.body.innerText.match(/Rendered [0-9: -]+UTC/)[0]")
            assert stamp and browser.wait_for(f"!document.body.innerText.includes({stamp!r})", timeout=10)
    finally:
        stop_group(server)
        log.close()
    assert server.poll() is not None
    assert 'data-testid="stPlotlyChart"' in dom and "Equity vs buy-and-hold" in dom
    assert "Traceback" not in dom
    img = np.asarray(Image.open(shot).convert("RGB"), dtype="float64")
    assert img.shape[1] == 1400 and img.shape[0] > 600
    assert img.std() > 10.0  # not a blank page
    # The equity line's blue (#1f77b4) is drawn: the chart is visible, not just its container.
    blue = (np.abs(img - np.array([31.0, 119.0, 180.0])).sum(axis=2) < 30).sum()
    assert blue > 200
    if SHOT:
        shutil.copyfile(shot, SHOT)
