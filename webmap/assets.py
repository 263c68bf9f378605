"""Install the map's front-end packages from npm and copy what the page needs into static/vendor/.

Run ``python -m webmap.assets`` (``make assets`` does). The packages are pinned in
``webmap/package.json`` + ``package-lock.json``; ``npm ci`` installs them into ``webmap/node_modules``
and the files the page loads are copied to ``webmap/static/vendor/``, so the running service needs no
internet at all. A stamp (hash of the lock file and the copy list) makes a second run a no-op.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
VENDOR = HERE / "static" / "vendor"
STAMP = VENDOR / ".stamp"

# source under node_modules → destination under static/vendor (a trailing "/" copies a directory)
FILES: dict[str, str] = {
    "leaflet/dist/leaflet.js": "leaflet/leaflet.js",
    "leaflet/dist/leaflet.css": "leaflet/leaflet.css",
    "leaflet/dist/images/": "leaflet/images/",
    "leaflet.markercluster/dist/leaflet.markercluster.js": "markercluster/leaflet.markercluster.js",
    "leaflet.markercluster/dist/MarkerCluster.css": "markercluster/MarkerCluster.css",
    "leaflet.markercluster/dist/MarkerCluster.Default.css": "markercluster/MarkerCluster.Default.css",
    "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js": "vectorgrid/Leaflet.VectorGrid.bundled.min.js",
    "proj4/dist/proj4.js": "proj4/proj4.js",
}


def _say(message: str) -> None:
    print(f"[webmap.assets] {message}", flush=True)


def _fingerprint() -> str:
    lock = (HERE / "package-lock.json").read_bytes()
    return hashlib.sha1(lock + json.dumps(FILES, sort_keys=True).encode()).hexdigest()


def _up_to_date(fingerprint: str) -> bool:
    if not STAMP.exists() or STAMP.read_text().strip() != fingerprint:
        return False
    return all((VENDOR / dest).exists() for dest in FILES.values())


def _npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("[webmap.assets] ERROR: npm not found — install Debian's nodejs and npm "
                         "(make test-deps does) and run again")
    # npm ci wipes and reinstalls node_modules: only when the lock file changed since the last install
    marker = NODE_MODULES / ".govgis-lock-sha1"
    lock_sha = hashlib.sha1((HERE / "package-lock.json").read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == lock_sha and \
            all((NODE_MODULES / src.rstrip("/")).exists() for src in FILES):
        _say("node_modules already installed from package-lock.json")
        return
    _say("npm ci (packages pinned in webmap/package-lock.json)")
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE)
    if result.returncode != 0:
        raise SystemExit("[webmap.assets] ERROR: npm ci failed (see above); check the npm registry is "
                         "reachable (npm config get registry)")
    marker.write_text(lock_sha + "\n")


def install(force: bool = False) -> list[Path]:
    """Make static/vendor complete; returns the files copied (empty when already up to date)."""
    fingerprint = _fingerprint()
    if not force and _up_to_date(fingerprint):
        _say(f"vendor assets up to date in {VENDOR.relative_to(HERE.parent)}")
        return []
    _npm_ci()
    copied: list[Path] = []
    for src, dest in FILES.items():
        source, target = NODE_MODULES / src, VENDOR / dest
        if src.endswith("/"):
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        copied.append(target)
        _say(f"copied {src} → static/vendor/{dest}")
    STAMP.write_text(fingerprint + "\n")
    return copied


if __name__ == "__main__":
    install(force="--force" in sys.argv[1:])
