"""Helpers of the land document tests: print an HTML page to PDF in Debian's Chromium (headless, its
own profile, the page's print CSS deciding the paper) and read it back with pdftotext; check a
problem+json answer."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from gis.settings import get_settings

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
    # on the one document mechanism: every page carries the bureau's name and 第n页/共m页
    pages = [page for page in text.split("\f") if page.strip()]
    numbers = [re.search(r"第\s*(\d+)\s*页\s*/\s*共\s*(\d+)\s*页", page) for page in pages]
    assert all(numbers) and [int(m.group(1)) for m in numbers] == list(range(1, len(pages) + 1)), numbers
    assert {int(m.group(2)) for m in numbers} == {len(pages)}
    bureau = get_settings().service.bureau_name
    assert all(bureau in page for page in pages), bureau
    return text


def assert_problem(r, status: int, words: str | None = None) -> None:  # noqa: ANN001
    """An RFC 7807 answer with this status whose detail (when given) says ``words``."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["detail"]
    if words:
        assert words in body["detail"], body["detail"]
