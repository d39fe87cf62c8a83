"""A real PostgreSQL server for the store tests: Debian's packages, a temporary data folder, a loopback port.

The server refuses to run as root, so as root (CI) it runs as the unprivileged user ``nobody``;
otherwise as the current user. It is started with ``postgres`` itself (no service manager) and
stopped by its pid. ``make postgresql`` installs Debian's ``postgresql`` when it is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"
START_SECONDS = 60


def binaries() -> Path | None:
    """The folder of Debian's newest PostgreSQL server binaries (or the one whose initdb is on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(os.path.realpath(initdb)).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> dict[str, Any]:
    """subprocess arguments that drop root to ``nobody`` (the server refuses to run as root)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


@dataclass
class PgServer:
    """A running server: its port, superuser password, pid; ``url()`` gives a store URL."""

    bin: Path
    root: Path
    port: int
    password: str = field(repr=False)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password,
                             dbname=database, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    def new_database(self) -> str:
        name = "store_" + secrets.token_hex(6)
        self.sql(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _ready(port: int, password: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, password=password, dbname="postgres",
                             connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def start(bin_dir: Path) -> PgServer:
    """initdb a temporary cluster (password authentication only) and start the server on a free loopback port."""
    root = Path(tempfile.mkdtemp(prefix="nhs_cm-pg-"))
    user = _as_user()
    if user:
        os.chown(root, user["user"], user["group"])
    password = secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if user:
        os.chown(pwfile, user["user"], user["group"])
    data = root / "data"
    subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256",
                    f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C"], check=True, capture_output=True,
                   cwd=root, **user)
    pwfile.unlink()
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - the server keeps writing to it
    proc = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
                             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                             "-c", "max_connections=60"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=root, **user)
    server = PgServer(bin_dir, root, port, password, proc)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (root / "server.log").read_text(errors="replace")
            server.stop()
            raise RuntimeError(f"postgres exited with {proc.returncode}: {text[-2000:]}")
        if _ready(port, password):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"postgres did not accept connections in {START_SECONDS} s")


@contextlib.contextmanager
def running() -> Iterator[PgServer]:
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed: `make postgresql` installs Debian's postgresql")
    server = start(bin_dir)
    try:
        yield server
    finally:
        server.stop()
