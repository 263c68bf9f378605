"""Running a coroutine from a sync test, whatever ran before it.

Once a browser test has run, the session's sync Playwright keeps an event loop running in the main
thread, and asyncio.run() there refuses ("cannot be called from a running event loop"). A test runs its
coroutine on a loop of its own in a worker thread instead; exceptions come back as raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coroutine).result()
