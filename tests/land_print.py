"""Helpers of the land document tests: print an HTML page to PDF in Debian's Chromium (headless, its
own profile, the page's print CSS deciding the paper) and read it back with pdftotext; check a
problem+json answer."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def printed_text(html: str, name: str) -> str:
    """The page as Chromium prints it (A4 asserted), as text; the PDF is kept in tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / f"{name}.pdf"
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / f"{name}.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                        page.as_uri()], check=True, capture_output=True, timeout=120)
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert "(A4)" in info, info
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    (ARTIFACTS / f"{name}.txt").write_text(text, encoding="utf-8")
    return text


def assert_problem(r, status: int, words: str | None = None) -> None:  # noqa: ANN001
    """An RFC 7807 answer with this status whose detail (when given) says ``words``."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["detail"]
    if words:
        assert words in body["detail"], body["detail"]
