"""What the Playwright tests share: Debian's Chromium and the live map server, each started once per session.

Defined here, in a plugin module (tests/conftest.py lists it), and nowhere else: a browser test module
takes the ``browser`` fixture by name and never imports it. An imported fixture is a second definition
of its own, so a second module would start a second sync Playwright while the first still runs, and
Playwright refuses that ("Sync API inside the asyncio loop") for every test after it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(log_name: str, **environment: str) -> Iterator[str]:
    """The whole app (uvicorn, api.app:create_app) in a process of its own on a free loopback port,
    against the test database, with ``environment`` added to ours; yields its base URL once /healthz
    answers, stops it after. Its output goes to tests/artifacts/<log_name>."""
    subprocess.run([sys.executable, "-m", "webmap.assets"], cwd=ROOT, check=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")  # noqa: SIM115 — closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **environment}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start; see {ARTIFACTS / log_name}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def server(demo_city) -> Iterator[str]:
    """The map's server for the browser tests, with a local GeoTIFF offered as a hillshade basemap."""
    from test_webmap_raster import make_dem

    basemaps = ARTIFACTS / "basemaps"
    basemaps.mkdir(parents=True, exist_ok=True)
    make_dem(basemaps / "terrain.tif")
    with serve_app("webmap-server.log", GOVGIS_RASTER_BASEMAP_DIR=str(basemaps)) as base:
        yield base
