"""A domain for the Kerberos tests: a real MIT KDC (tools/kdc.py) and emulated desktops joined to it.

(Not named kerberos.py: that would hide pykerberos, whose module is `kerberos`.)"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from harness import ROOT, Estate

sys.path.insert(0, str(ROOT / "tools"))

from kdc import REALM, Kdc, free_port, start_kdc  # tools/ is not a package

#: The scenarios' default WinRM user, a domain account of the test realm here.
USER = "ansible"
PASSWORD = "Passw0rd!"  # the emulated estate's well-known test password
#: A second domain of the estate whose KDC nobody answers for (a branch site's domain controller down).
UNREACHABLE_REALM = "BRANCH.TEST"

__all__ = ["PASSWORD", "REALM", "UNREACHABLE_REALM", "USER", "Kdc", "joined_estate", "new_kdc", "read_inventory",
           "write_inventory"]


def new_kdc(directory: Path) -> Kdc:
    """A KDC of the test realm with the scenarios' user, and a krb5.conf that also names a realm
    whose KDC is unreachable (a port nobody listens on)."""
    directory.chmod(0o700)
    kdc = start_kdc(directory, users={USER: PASSWORD})
    kdc.write_krb5_conf({UNREACHABLE_REALM: f"127.0.0.1:{free_port()}"})
    return kdc


def joined_estate(estate: Callable[..., Estate], kdc: Kdc, scenarios: list[Path], *extra: str,
                  env: dict[str, str] | None = None) -> Estate:
    """Emulated desktops served with the realm's keytab and joined to it (their SPNs registered,
    their keys exported), with the inventory's Kerberos variables (written by the emulator)."""
    running = estate(scenarios, "--transport", "kerberos", "--keytab", str(kdc.keytab), "--realm", kdc.realm,
                     *extra, env={**kdc.env(), **(env or {})})
    kdc.add_services(read_inventory(running)["windows"]["hosts"])
    return running


def read_inventory(running: Estate) -> dict[str, Any]:
    return yaml.safe_load(running.inventory.read_text())


def write_inventory(running: Estate, document: dict[str, Any]) -> None:
    running.inventory.write_text(yaml.safe_dump(document, sort_keys=False))
