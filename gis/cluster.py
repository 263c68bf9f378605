"""The embedded PostgreSQL cluster under .pgdata/, for `make run` and `make test`.

    python -m gis.cluster start    # init (once) and start; upgrades an older cluster in place
    python -m gis.cluster stop
    python -m gis.cluster status

The cluster listens only on a Unix socket inside the project (no TCP port to collide with, nothing
reachable from the network) and, when we run as root, belongs to an unprivileged OS user because
PostgreSQL refuses to run as root. It is never the system's own cluster.

Every connection authenticates with a password (scram-sha-256): the passwords of the cluster's
roles (gis/roles.py: an admin superuser, the schema owner and the service's application role) are
generated at initialisation into ``.pgdata/passwords``, a libpq password file readable by its owner
only, which the connection URLs name. A cluster made by an older govgis (trust authentication, one
superuser, ``synchronous_commit = off`` appended to postgresql.conf) is upgraded on its next start:
our settings live in ``govgis.conf``, included last and rewritten on every start, so they override
the old appended block; the roles get their passwords, and only then does pg_hba.conf switch from
trust to scram-sha-256.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gis.db import ADMIN_ROLE, APP_ROLE, EMBEDDED_PORT, OWNER_ROLE, PGDATA, embedded_url

OS_USER = "govgis"  # owner of the cluster's files when we run as root
CONF_NAME = "govgis.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_NAME}'  # govgis: its settings, rewritten on every start"

# Tuned for one machine shared with the API: modest memory, no JIT (it slows short spatial queries),
# room for bulk loads. Commits are durable: synchronous_commit, fsync and full_page_writes keep their
# safe defaults, so a commit the service acknowledged survives a crash of the server or the machine.
# Trading that away (synchronous_commit = off loses the last ~0.6 s of acknowledged commits on a crash)
# is an operator's explicit choice: GOVGIS_PG_SETTINGS="synchronous_commit=off" (README-operations.md).
TUNING: dict[str, str] = {
    "max_connections": "200",
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "effective_cache_size": "8GB",
    "max_wal_size": "4GB",
    "synchronous_commit": "on",
    "fsync": "on",
    "full_page_writes": "on",
    "wal_level": "replica",  # the default, named: streaming replicas and WAL archiving need it
    "jit": "off",
    "random_page_cost": "1.1",
    "password_encryption": "scram-sha-256",
    "log_min_duration_statement": "-1",
}

HBA = """# govgis: Unix socket only (listen_addresses = ''); every role authenticates with its password
# (scram-sha-256, the passwords are in ../passwords). Rewritten by gis/cluster.py.
local   all             all                                     scram-sha-256
local   replication     all                                     scram-sha-256
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


def as_owner(args: list[str]) -> list[str]:
    """Run a command as the cluster's owner: ourselves, or OS_USER when we are root."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", OS_USER, "--", *args]


def _ensure_os_user(root: Path) -> None:
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        say(f"creating unprivileged OS user '{OS_USER}' to own the cluster (PostgreSQL refuses root)")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER], check=True
        )
    # the owner must be able to walk down to .pgdata; open the execute bit on folders that block it
    user = pwd.getpwnam(OS_USER)
    path = root.resolve().parent
    for folder in [path, *path.parents]:
        st = folder.stat()
        if not (st.st_mode & 0o001) and st.st_uid != user.pw_uid:
            say(f"allowing '{OS_USER}' to pass through {folder} (chmod o+x) so it can reach .pgdata")
            folder.chmod(st.st_mode | 0o001)


def parse_settings(text: str) -> dict[str, str]:
    """``name=value`` pairs separated by commas or newlines (GOVGIS_PG_SETTINGS)."""
    out: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        if item.strip():
            if "=" not in item:
                fail(f"GOVGIS_PG_SETTINGS: {item.strip()!r} is not name=value (e.g. synchronous_commit=off)")
            name, value = item.split("=", 1)
            out[name.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Cluster:
    """A project-local PostgreSQL cluster in ``root`` (data/, run/ for the socket, passwords, log).

    The embedded one is ``Cluster(PGDATA)``; tests make throw-away ones in temporary folders with
    ``settings`` that shrink the memory and, for a replica, its own socket.
    """

    root: Path
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def passfile(self) -> Path:
        return self.root / "passwords"

    def pg(self, tool: str, *args: str) -> list[str]:
        return as_owner([str(pg_bin() / tool), *args])

    # --- state ---------------------------------------------------------------------------------
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        result = subprocess.run(self.pg("pg_ctl", "-D", str(self.data_dir), "status"), capture_output=True,
                                text=True)
        return result.returncode == 0

    def postmaster_pid(self) -> int | None:
        """The running postmaster's process id (first line of postmaster.pid), None when stopped."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    # --- passwords -----------------------------------------------------------------------------
    def passwords(self) -> dict[str, str]:
        """Role → password from the password file, creating the file (0600) with new random
        passwords for the roles it lacks."""
        known: dict[str, str] = {}
        if self.passfile.exists():
            for line in self.passfile.read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 5 and not line.startswith("#"):
                    known[parts[3]] = parts[4]
        missing = [role for role in (ADMIN_ROLE, OWNER_ROLE, APP_ROLE) if role not in known]
        if missing:
            for role in missing:
                known[role] = secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: nothing to escape in the file
            self.root.mkdir(parents=True, exist_ok=True)
            body = "# libpq password file of the embedded cluster's roles (generated; keep it 0600)\n" + "".join(
                f"*:*:*:{role}:{password}\n" for role, password in known.items())
            descriptor = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(body)
            self.passfile.chmod(0o600)
        return known

    # --- configuration -------------------------------------------------------------------------
    def conf_text(self) -> str:
        values = {"listen_addresses": "''", "unix_socket_directories": f"'{self.socket_dir}'",
                  "unix_socket_permissions": "0700", "port": str(EMBEDDED_PORT), **TUNING,
                  **parse_settings(os.environ.get("GOVGIS_PG_SETTINGS", "")), **self.settings}
        lines = [f"{name} = {_conf_value(value)}" for name, value in values.items()]
        return ("# govgis settings, rewritten by gis/cluster.py on every start (edits here are lost: use\n"
                "# GOVGIS_PG_SETTINGS or ALTER SYSTEM). Included last, so these win over postgresql.conf.\n"
                + "\n".join(lines) + "\n")

    def write_conf(self) -> bool:
        """Write govgis.conf and make postgresql.conf include it last. True when something changed."""
        changed = False
        target = self.data_dir / CONF_NAME
        text = self.conf_text()
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed = True
        main_conf = self.data_dir / "postgresql.conf"
        lines = main_conf.read_text().splitlines()
        if not lines or lines[-1] != INCLUDE_LINE:
            # last line, so its values override anything before it (an older govgis appended
            # synchronous_commit = off and friends directly to this file)
            main_conf.write_text("\n".join(line for line in lines if line != INCLUDE_LINE) + "\n"
                                 + INCLUDE_LINE + "\n")
            changed = True
        if os.geteuid() == 0:
            for path in (target, main_conf):
                shutil.chown(path, OS_USER, OS_USER)
        return changed

    def hba_is_trust(self) -> bool:
        hba = self.data_dir / "pg_hba.conf"
        return any(line.split()[-1] == "trust" for line in hba.read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))

    def write_hba(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(HBA)
        hba.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(hba, OS_USER, OS_USER)

    # --- life cycle ----------------------------------------------------------------------------
    def init(self) -> bool:
        """initdb once (password authentication from the start). True when it made a new cluster."""
        if self.initialised():
            return False
        say(f"initialising a new PostgreSQL cluster in {self.data_dir}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.passwords()
        if os.geteuid() == 0:
            _ensure_os_user(self.root)
            for path in (self.root, self.socket_dir):
                shutil.chown(path, OS_USER, OS_USER)
        self.root.chmod(0o700)
        self.socket_dir.chmod(0o700)
        # initdb reads the admin's password from a file only the cluster's owner can read, removed after
        pwfile = self.root / ".initdb-password"
        pwfile.write_text(self.passwords()[ADMIN_ROLE] + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(pwfile, OS_USER, OS_USER)
        try:
            subprocess.run(
                self.pg("initdb", "-D", str(self.data_dir), "-U", ADMIN_ROLE, f"--pwfile={pwfile}",
                        "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
                        "--locale=C.UTF-8"),
                check=True, stdout=subprocess.DEVNULL,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.write_hba()
        return True

    def start(self, *, quiet: bool = False) -> None:
        """Initialise if needed, (re)write our settings, start, and bring roles and authentication
        up to date (the in-place upgrade of an older cluster)."""
        check_extensions()
        self.init()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        conf_changed = self.write_conf()
        if self.running():
            if conf_changed:
                subprocess.run(self.pg("pg_ctl", "-D", str(self.data_dir), "reload"), check=True,
                               stdout=subprocess.DEVNULL)
                say("settings rewritten (govgis.conf) and reloaded; memory settings take effect at the next "
                    "restart (make stop && make run)")
            elif not quiet:
                say(f"already running (socket {self.socket_dir})")
        else:
            if not quiet:
                say("starting PostgreSQL (Unix socket only, no TCP port)")
            if os.geteuid() == 0:
                shutil.chown(self.socket_dir, OS_USER, OS_USER)
                shutil.chown(self.root, OS_USER, OS_USER)
                if self.log_file.exists():
                    shutil.chown(self.log_file, OS_USER, OS_USER)
            result = subprocess.run(
                self.pg("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "120", "start"),
                capture_output=True, text=True,
            )
            if result.returncode != 0:
                tail = self.log_file.read_text(errors="replace").splitlines()[-10:] if self.log_file.exists() else []
                fail("PostgreSQL did not start. Last log lines:\n  " + "\n  ".join(tail) +
                     f"\nLook at {self.log_file}; to start from scratch: make stop && rm -rf {self.root}")
        if not self.standby():  # a standby replays the primary's roles; it cannot change them
            self.ensure_roles()
        if not quiet:
            say(f"running; socket {self.socket_dir}/.s.PGSQL.{EMBEDDED_PORT}")

    def standby(self) -> bool:
        return (self.data_dir / "standby.signal").exists()

    def make_replica(self, root: Path, settings: Mapping[str, str] | None = None) -> Cluster:
        """A streaming replica of this (running) cluster in ``root`` (pg_basebackup -R), with its own
        socket and a copy of the password file; not started."""
        replica = Cluster(Path(root), {"hot_standby": "on", "hot_standby_feedback": "on", **(settings or {})})
        replica.root.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.passfile, replica.passfile)
        replica.passfile.chmod(0o600)
        replica.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            _ensure_os_user(replica.root)
            for path in (replica.root, replica.socket_dir):
                shutil.chown(path, OS_USER, OS_USER)
        replica.root.chmod(0o700)
        # the replication connection's password goes in the replica's primary_conninfo (its data folder
        # is readable by the cluster's owner only), through the environment rather than the command line
        env = {**os.environ, "PGPASSWORD": self.passwords()[ADMIN_ROLE]}
        result = subprocess.run(self.pg("pg_basebackup", "-D", str(replica.data_dir), "-R", "-X", "stream", "-c",
                                        "fast", "-h", str(self.socket_dir), "-p", str(EMBEDDED_PORT), "-U", ADMIN_ROLE),
                                env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr.strip()}")
        return replica

    def ensure_roles(self) -> None:
        """The admin, owner, audit and application roles with their passwords; then password
        authentication. Idempotent. Passwords are set while an older cluster still trusts local
        connections, and pg_hba.conf switches to scram-sha-256 only after that."""
        from gis.roles import ensure_embedded_roles

        passwords = self.passwords()
        ensure_embedded_roles(self.admin_url(), passwords)
        if self.hba_is_trust():
            say("switching authentication from trust to scram-sha-256 (passwords in "
                f"{self.passfile}, readable by its owner only)")
            self.write_hba()
            subprocess.run(self.pg("pg_ctl", "-D", str(self.data_dir), "reload"), check=True,
                           stdout=subprocess.DEVNULL)

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            say("not running")
            return
        subprocess.run(self.pg("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop"), check=True,
                       stdout=subprocess.DEVNULL)
        say("stopped")

    def crash(self) -> None:
        """SIGKILL the postmaster and every one of its processes at once, as a power cut or the
        kernel's OOM killer would, then wait until they are all gone (for fault tests)."""
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError(f"no postmaster running in {self.data_dir}")
        os.kill(pid, signal.SIGSTOP)  # frozen, it forks no new backend while we collect its children
        family = [*_children(pid), pid]
        for member in family:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        # gone from the process table, not merely dead: a zombie's PID still counts as a running
        # postmaster for pg_ctl and for the next postmaster's lock file check
        while any(Path(f"/proc/{member}").exists() for member in family):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {family} of the killed cluster were not reaped within 30 s")
            time.sleep(0.05)

    # --- connections ---------------------------------------------------------------------------
    def url(self, role: str = APP_ROLE, database: str = "govgis"):  # noqa: ANN201 — a sqlalchemy URL
        return embedded_url(database, role=role, root=self.root)

    def admin_url(self, database: str = "postgres"):  # noqa: ANN201
        return self.url(ADMIN_ROLE, database)


def _conf_value(value: str) -> str:
    """A postgresql.conf value: numbers, units and booleans bare, anything else quoted."""
    bare = value.replace(".", "", 1).replace("-", "", 1)
    if value.startswith("'") or bare.isalnum() or value.isidentifier():
        return value
    return "'" + value.replace("'", "''") + "'"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


EMBEDDED = Cluster(PGDATA)


def main(argv: list[str]) -> None:
    commands = {"start": EMBEDDED.start, "stop": EMBEDDED.stop,
                "status": lambda: say("running" if EMBEDDED.running() else "stopped")}
    if len(argv) != 1 or argv[0] not in commands:
        fail(f"usage: python -m gis.cluster {{{'|'.join(commands)}}}")
    commands[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
