"""After the intranet_zone role: for every signed-in user, http://localhost is in the Local intranet
zone with automatic logon, and the browsers may use Windows authentication there.

Read with ``reg query`` as an administrator would on the PC. Where a value comes from, highest
first: the machine policy, the user's policy, then the user's own Internet Settings (the
machine's instead when the policy ``Security_HKLM_only`` is 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from windows_tools import Windows

SETTINGS = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings"
POLICY = r"SOFTWARE\Policies\Microsoft\Windows\CurrentVersion\Internet Settings"
FLAGS = {"AutoDetect": 0, "IntranetName": 1, "ProxyBypass": 1, "UNCAsIntranet": 1}
LOGON_ALLOWED = (0x00000, 0x20000)  # 1A00: automatic logon with the current user name, or only in the intranet
LOGON_DEFAULT = 0x20000  # Windows' Medium-low template for the Local intranet zone
OUTSIDE_INTRANET = (2, 3, 4)  # Trusted sites, Internet, Restricted sites
BROWSERS = (r"SOFTWARE\Policies\Google\Chrome", r"SOFTWARE\Policies\Microsoft\Edge")


def signed_in(windows: Windows) -> list[str]:
    sids = windows.user_sids()
    if not sids:
        pytest.skip("nobody is signed in: the zone settings that count are a person's")
    return sids


def chain(windows: Windows, sid: str, subkey: str) -> list[str]:
    machine_only = windows.reg_dword(f"HKLM\\{POLICY}", "Security_HKLM_only") == 1
    own = f"HKLM\\{SETTINGS}\\{subkey}" if machine_only else f"HKU\\{sid}\\{SETTINGS}\\{subkey}"
    return [f"HKLM\\{POLICY}\\{subkey}", f"HKU\\{sid}\\{POLICY}\\{subkey}", own]


def effective(windows: Windows, keys: list[str], name: str) -> int | None:
    for key in keys:
        found = windows.reg_dword(key, name)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_local_intranet_sites_flags(windows: Windows, flag: str) -> None:
    for sid in signed_in(windows):
        assert effective(windows, chain(windows, sid, "ZoneMap"), flag) == FLAGS[flag], sid


def test_automatic_logon_in_the_intranet_zone(windows: Windows) -> None:
    for sid in signed_in(windows):
        keys = chain(windows, sid, r"Zones\1")
        if not keys[-1].startswith("HKLM"):
            keys.append(f"HKLM\\{SETTINGS}\\Zones\\1")  # the machine's, when the user has none
        found = effective(windows, keys, "1A00")
        assert (LOGON_DEFAULT if found is None else found) in LOGON_ALLOWED, (sid, found)


def test_localhost_is_not_mapped_outside_the_intranet(windows: Windows) -> None:
    for sid in signed_in(windows):
        for root in (f"HKU\\{sid}\\{SETTINGS}", f"HKLM\\{SETTINGS}"):
            for host in ("localhost", "127.0.0.1"):
                for scheme in ("http", "*"):
                    zone = windows.reg_dword(f"{root}\\ZoneMap\\Domains\\{host}", scheme)
                    assert zone not in OUTSIDE_INTRANET, (root, host, scheme)
        for policy in (f"HKLM\\{POLICY}\\ZoneMapKey", f"HKU\\{sid}\\{POLICY}\\ZoneMapKey"):
            for name, (_type, data) in (windows.reg_values(policy) or {}).items():
                if name.split("://")[-1] in ("localhost", "127.0.0.1") and not name.startswith("https://"):
                    assert data.strip() == "1", (policy, name, data)


def test_browsers_may_use_windows_logon_for_localhost(windows: Windows) -> None:
    roots = ["HKLM", *(f"HKU\\{sid}" for sid in windows.user_sids())]
    for browser in BROWSERS:
        for root in roots:
            values = windows.reg_values(f"{root}\\{browser}") or {}
            if "authserverallowlist" in values:
                entries = [e.strip().lower() for e in values["authserverallowlist"][1].split(",")]
                assert {"localhost", "*", "*localhost", "*.localhost"} & set(entries), (root, browser, entries)
                break  # the machine's list wins over the user's
