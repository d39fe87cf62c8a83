#!/usr/bin/env python3
"""A throw-away MIT Kerberos KDC on a loopback port, for the emulated domain estate.

Real MIT Kerberos from Debian's packages (krb5-kdc, krb5-admin-server, krb5-user): a realm in a
private folder (krb5.conf, kdc.conf, database, stash, log, keytab), users and HTTP/<host>
service principals made with kadmin.local, the services' keys exported to one keytab, and
``krb5kdc -n`` serving on 127.0.0.1 on a free port. Nothing is written outside that folder and
nothing runs as a system service. Passwords reach kadmin.local and kinit on standard input, never
on a command line, and are never printed.

Used by `make demo TRANSPORT=kerberos` (tools/demo.py) and the Kerberos tests
(tests/integration/test_kerberos*.py). By hand::

    .venv/bin/python tools/kdc.py /tmp/realm     # starts a KDC, prints its variables, stops on Ctrl-C
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REALM = "EMULATED.TEST"
SERVICE = "HTTP"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")
PACKAGES = ("krb5-kdc", "krb5-admin-server", "krb5-user", "libkrb5-dev")
SBIN = ("/usr/sbin", "/sbin")
START_TIMEOUT = 15.0
START_ATTEMPTS = 3
ENCTYPES = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal"


class KdcError(Exception):
    """The KDC could not be set up or started (one line, no secrets)."""


def tool(name: str) -> str:
    """The full path of an MIT Kerberos program (krb5kdc and kadmin.local live in /usr/sbin)."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))
    if path is None:
        raise KdcError(f"{name} not found: install Debian's {' '.join(PACKAGES)} (make kerberos does)")
    return path


def missing_tools() -> list[str]:
    """The MIT Kerberos programs that are not installed."""
    return [name for name in TOOLS if not (shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN)))]


def domain_of(realm: str) -> str:
    """The DNS domain of the realm's hosts (EMULATED.TEST -> emulated.test)."""
    return realm.lower()


def service_principal(host: str, realm: str = REALM) -> str:
    """``HTTP/<host>.<domain>@REALM``, the SPN a desktop's WinRM listener is known by."""
    fqdn = host.lower() if "." in host else f"{host.lower()}.{domain_of(realm)}"
    return f"{SERVICE}/{fqdn}@{realm}"


def krb5_conf(realm: str, kdc: str, ccache: Path, other_realms: Mapping[str, str] | None = None) -> str:
    """krb5.conf of the realm: its KDC on loopback, no DNS, the default cache inside the folder;
    `other_realms` maps more realms to their KDC's address (another domain of the estate)."""
    domain = domain_of(realm)
    others = "".join(f"    {name} = {{\n        kdc = {address}\n    }}\n"
                     for name, address in (other_realms or {}).items())
    return f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    default_ccache_name = FILE:{ccache}
    ticket_lifetime = 10h
    forwardable = false

[realms]
    {realm} = {{
        kdc = {kdc}
    }}
{others}
[domain_realm]
    .{domain} = {realm}
    {domain} = {realm}
"""


def kdc_conf(realm: str, directory: Path, port: int) -> str:
    """kdc.conf: the database, stash and log inside `directory`, listening on 127.0.0.1:`port` only."""
    return f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {realm} = {{
        database_name = {directory}/principal
        key_stash_file = {directory}/stash
        acl_file = {directory}/kadm5.acl
        max_life = 10h
        max_renewable_life = 0
        supported_enctypes = {ENCTYPES}
        default_principal_flags = +preauth
    }}

[logging]
    kdc = FILE:{directory}/kdc.log
"""


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise KdcError("no free port on 127.0.0.1 for the KDC")


@dataclass
class Kdc:
    """A running KDC of `realm` whose files are in `directory`."""

    directory: Path
    realm: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    services: set[str] = field(default_factory=set)

    @property
    def krb5_config(self) -> Path:
        return self.directory / "krb5.conf"

    @property
    def kdc_profile(self) -> Path:
        return self.directory / "kdc.conf"

    @property
    def keytab(self) -> Path:
        """The keytab of every service principal added (the desktops' keys)."""
        return self.directory / "http.keytab"

    @property
    def ccache(self) -> Path:
        """The default credential cache of this realm's krb5.conf (inside the folder)."""
        return self.directory / "ccache"

    def env(self) -> dict[str, str]:
        """Variables that point MIT Kerberos (kinit, the libraries, the KDC) at this realm."""
        return {"KRB5_CONFIG": str(self.krb5_config), "KRB5_KDC_PROFILE": str(self.kdc_profile)}

    def _kadmin(self, script: str) -> None:
        """Run kadmin.local commands (and the passwords it prompts for) from standard input."""
        done = subprocess.run([tool("kadmin.local"), "-r", self.realm], input=script, capture_output=True,
                              text=True, env=dict(os.environ, **self.env()), timeout=120, check=False)
        errors = [line for line in (done.stdout + done.stderr).splitlines()
                  if "error" in line.lower() or "while " in line]
        if done.returncode != 0 or errors:
            raise KdcError(f"kadmin.local failed: {errors[0] if errors else f'exit {done.returncode}'}")

    def add_users(self, users: Mapping[str, str]) -> None:
        """User principals `name@REALM` with their passwords (as domain accounts)."""
        self._kadmin("".join(f"addprinc {name}\n{password}\n{password}\n" for name, password in users.items()))

    def add_services(self, hosts: Iterable[str]) -> list[str]:
        """Join desktops to the domain: `HTTP/<host>.<domain>` for each host not joined yet, its key
        exported to `keytab`; the SPNs added."""
        spns = sorted({service_principal(host, self.realm) for host in hosts} - self.services)
        if spns:
            self._kadmin("".join(f"addprinc -randkey {spn}\nktadd -k {self.keytab} {spn}\n" for spn in spns))
            self.services.update(spns)
        return spns

    def write_krb5_conf(self, other_realms: Mapping[str, str] | None = None) -> None:
        """(Re)write krb5.conf, with more realms and their KDCs' addresses if given."""
        _write(self.krb5_config, krb5_conf(self.realm, f"127.0.0.1:{self.port}", self.ccache, other_realms), 0o644)

    def kinit(self, principal: str, password: str, ccache: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """`kinit` as a user would run it, password on standard input, into `ccache`."""
        return subprocess.run([tool("kinit"), *args, principal], input=password + "\n", capture_output=True,
                              text=True, timeout=60, check=False,
                              env=dict(os.environ, **self.env(), KRB5CCNAME=f"FILE:{ccache}"))

    def stop(self) -> None:
        """Stop krb5kdc (by its own pid). Idempotent; the folder is the caller's to remove."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _wait_listening(kdc: Kdc, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KdcError(f"krb5kdc exited with {proc.returncode}: {_last_log_line(kdc)}")
        try:
            with socket.create_connection(("127.0.0.1", kdc.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise KdcError(f"krb5kdc did not listen on 127.0.0.1:{kdc.port} within {START_TIMEOUT:.0f} s")


def _last_log_line(kdc: Kdc) -> str:
    log = kdc.directory / "kdc.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return lines[-1] if lines else "no log"


def start_kdc(directory: Path, realm: str = REALM, users: Mapping[str, str] | None = None) -> Kdc:
    """Create the realm in `directory` (which must exist and be private), add `users`, start krb5kdc."""
    kdc = Kdc(directory, realm, free_port())
    _configure(kdc)
    _write(directory / "kadm5.acl", "")
    master = secrets.token_urlsafe(24)  # the database's master key, never used again (kept in the stash)
    done = subprocess.run([tool("kdb5_util"), "create", "-s", "-r", realm], input=f"{master}\n{master}\n",
                          capture_output=True, text=True, env=dict(os.environ, **kdc.env()), timeout=120,
                          check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise KdcError(f"kdb5_util create failed: {last}")
    if users:
        kdc.add_users(users)
    for attempt in range(START_ATTEMPTS):
        try:
            kdc.proc = _start(kdc)
            return kdc
        except KdcError:
            if attempt == START_ATTEMPTS - 1:
                raise
            kdc.port = free_port()  # someone took the port between free_port() and krb5kdc's bind
            _configure(kdc)
    raise AssertionError("unreachable")


def _configure(kdc: Kdc) -> None:
    kdc.write_krb5_conf()
    _write(kdc.kdc_profile, kdc_conf(kdc.realm, kdc.directory, kdc.port), 0o644)


def _start(kdc: Kdc) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([tool("krb5kdc"), "-n", "-r", kdc.realm, "-P", str(kdc.directory / "krb5kdc.pid")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, **kdc.env()), start_new_session=True)
    try:
        _wait_listening(kdc, proc)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        raise
    return proc


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} FOLDER  (an empty folder for the realm's files)", file=sys.stderr)
        return 2
    directory = Path(argv[1]).resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        kdc = start_kdc(directory)
    except KdcError as exc:
        print(f"kdc: {exc}", file=sys.stderr)
        return 1
    print(f"realm {kdc.realm}: KDC on 127.0.0.1:{kdc.port} (pid {kdc.proc.pid if kdc.proc else '?'})")
    for name, value in kdc.env().items():
        print(f"export {name}={value}")
    print("Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    finally:
        kdc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
