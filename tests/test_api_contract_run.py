"""The API contract run (tests/contract/) in a pytest session of its own.

schemathesis sends generated requests with a key holding every scope: it registers parcels, edits
features and imports files. In the suite's shared session those writes changed the demo city under the
modules that read it (parcel codes in a sub-district of the generator's, extra survey patches), so the
contract run gets its own process, its own throw-away database and its own demo city.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent / "contract"


def test_the_api_definition_tells_the_truth_in_a_session_of_its_own() -> None:
    env = {**os.environ, "GOVGIS_TEST_CONTRACT_SESSION": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CONTRACT_DIR)],
                         env=env, capture_output=True, text=True, timeout=1200)
    summary = run.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"\ncontract session: {summary[0]}")
    assert run.returncode == 0, run.stdout[-8000:] + "\n" + run.stderr[-3000:]
    assert " passed" in summary[0] and "failed" not in summary[0] and "error" not in summary[0], summary
