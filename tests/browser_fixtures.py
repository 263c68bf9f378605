"""The browser the Playwright tests share: Debian's Chromium, started once per session.

Defined here, in a plugin module (tests/conftest.py lists it), and nowhere else: a browser test module
takes the ``browser`` fixture by name and never imports it. An imported fixture is a second definition
of its own, so a second module would start a second sync Playwright while the first still runs, and
Playwright refuses that ("Sync API inside the asyncio loop") for every test after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
