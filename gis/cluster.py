"""The embedded PostgreSQL cluster under .pgdata/, for `make run` and `make test`.

    python -m gis.cluster start    # init (once) and start; prints what it does
    python -m gis.cluster stop
    python -m gis.cluster status

The cluster listens only on a Unix socket inside the project (no TCP port to collide with, nothing
reachable from the network) and, when we run as root, belongs to an unprivileged OS user because
PostgreSQL refuses to run as root. It is never the system's own cluster.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from gis.db import EMBEDDED_PORT, EMBEDDED_USER, PGDATA, SOCKET_DIR

DATA_DIR = PGDATA / "data"
LOG_FILE = PGDATA / "postgres.log"
OS_USER = "govgis"  # owner of the cluster's files when make is run as root

# Tuned for one machine shared with the API: modest memory, no JIT (it slows short spatial queries),
# room for bulk loads. synchronous_commit=off loses at most the last few commits on a crash, never
# consistency; a city running production points GOVGIS_DATABASE_URL at a managed PostGIS instead.
CONF = """
listen_addresses = ''
unix_socket_directories = '{socket}'
unix_socket_permissions = 0700
port = {port}
max_connections = 200
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 512MB
effective_cache_size = 8GB
max_wal_size = 4GB
synchronous_commit = off
jit = off
random_page_cost = 1.1
log_min_duration_statement = -1
"""


def say(message: str) -> None:
    print(f"[govgis cluster] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[govgis cluster] ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def pg_bin() -> Path:
    for candidate in (os.environ.get("GOVGIS_PG_BIN"), "/usr/lib/postgresql/15/bin"):
        if candidate and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    fail("PostgreSQL 15 server binaries not found: install postgresql-15 (apt-get install postgresql-15) "
         "or set GOVGIS_PG_BIN to the folder holding pg_ctl")
    raise AssertionError  # unreachable


def check_extensions() -> None:
    share = Path("/usr/share/postgresql/15/extension")
    missing = [name for name in ("postgis", "pgrouting") if not (share / f"{name}.control").exists()]
    if missing:
        fail(f"extension(s) {', '.join(missing)} not installed: run `make deps` (installs "
             "postgresql-15-postgis-3 and postgresql-15-pgrouting from Debian)")


def _as_owner(args: list[str]) -> list[str]:
    """Run a command as the cluster's owner: ourselves, or OS_USER when we are root."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", OS_USER, "--", *args]


def _ensure_os_user() -> None:
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        say(f"creating unprivileged OS user '{OS_USER}' to own the cluster (PostgreSQL refuses root)")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER], check=True
        )
    # the owner must be able to walk down to .pgdata; open the execute bit on folders that block it
    user = pwd.getpwnam(OS_USER)
    path = PGDATA.resolve().parent
    blocked = []
    for folder in [path, *path.parents]:
        st = folder.stat()
        if not (st.st_mode & 0o001) and st.st_uid != user.pw_uid:
            blocked.append(folder)
    for folder in blocked:
        say(f"allowing '{OS_USER}' to pass through {folder} (chmod o+x) so it can reach .pgdata")
        folder.chmod(folder.stat().st_mode | 0o001)


def running() -> bool:
    if not (DATA_DIR / "PG_VERSION").exists():
        return False
    result = subprocess.run(
        _as_owner([str(pg_bin() / "pg_ctl"), "-D", str(DATA_DIR), "status"]),
        capture_output=True, text=True,
    )
    return result.returncode == 0


def init() -> None:
    if (DATA_DIR / "PG_VERSION").exists():
        return
    say(f"initialising a new PostgreSQL cluster in {DATA_DIR}")
    PGDATA.mkdir(parents=True, exist_ok=True)
    SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        _ensure_os_user()
        shutil.chown(PGDATA, OS_USER, OS_USER)
        shutil.chown(SOCKET_DIR, OS_USER, OS_USER)
    PGDATA.chmod(0o700)
    SOCKET_DIR.chmod(0o700)
    subprocess.run(
        _as_owner([str(pg_bin() / "initdb"), "-D", str(DATA_DIR), "-U", EMBEDDED_USER, "--auth=trust",
                   "-E", "UTF8", "--locale=C.UTF-8"]),
        check=True, stdout=subprocess.DEVNULL,
    )
    with open(DATA_DIR / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(CONF.format(socket=SOCKET_DIR, port=EMBEDDED_PORT))


def start() -> None:
    check_extensions()
    init()
    if running():
        say(f"already running (socket {SOCKET_DIR})")
        return
    say("starting PostgreSQL (Unix socket only, no TCP port)")
    if os.geteuid() == 0:
        shutil.chown(LOG_FILE.parent, OS_USER, OS_USER)
        if LOG_FILE.exists():
            shutil.chown(LOG_FILE, OS_USER, OS_USER)
    result = subprocess.run(
        _as_owner([str(pg_bin() / "pg_ctl"), "-D", str(DATA_DIR), "-l", str(LOG_FILE), "-w", "-t", "60",
                   "start"]),
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        tail = LOG_FILE.read_text(errors="replace").splitlines()[-10:] if LOG_FILE.exists() else []
        fail("PostgreSQL did not start. Last log lines:\n  " + "\n  ".join(tail) +
             f"\nLook at {LOG_FILE}; to start from scratch: make stop && rm -rf .pgdata")
    say(f"running; socket {SOCKET_DIR}/.s.PGSQL.{EMBEDDED_PORT}")


def stop() -> None:
    if not running():
        say("not running")
        return
    subprocess.run(
        _as_owner([str(pg_bin() / "pg_ctl"), "-D", str(DATA_DIR), "-m", "fast", "-w", "stop"]), check=True,
        stdout=subprocess.DEVNULL,
    )
    say("stopped")


def main(argv: list[str]) -> None:
    commands = {"start": start, "stop": stop, "status": lambda: say("running" if running() else "stopped")}
    if len(argv) != 1 or argv[0] not in commands:
        fail(f"usage: python -m gis.cluster {{{'|'.join(commands)}}}")
    commands[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
