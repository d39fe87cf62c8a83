# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The finding catalogue as data (docs/findings.md and its pages are generated from it).

This module is the only place where finding ids are written. Everything else refers to them
through ``ID`` (``ID.CM_NOT_INSTALLED``), ``CATALOGUE`` or ``make_finding``, so a typo fails at
import time instead of producing a finding nobody keys on.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import types
import typing as t
from dataclasses import dataclass

#: The e-RS configuration check message of each fault (findings.md, "The four e-RS faults").
FAULT_MESSAGES: dict[int, str] = {
    1: "NHS Credential Management cannot be found",
    2: "NHS Credential Management is running on port <port> but is not connected",
    3: "NHS Credential Management is running on port <port> and is connected but cannot login to e-RS",
    4: "A Windows Security (credential) dialog pops up in e-RS",
}

SEVERITIES = ("error", "warning", "info")
BROWSERS = ("chrome", "edge", "firefox")

NATIONAL_SERVICE_DESK = {"to": "National Service Desk", "phone": "0300 303 5035"}

_ROLE_CM_SERVICE = "nhs_cm.remediation.cm_service"
_ROLE_COOKIES = "nhs_cm.remediation.third_party_cookies"
_ROLE_INTRANET = "nhs_cm.remediation.intranet_zone"


@dataclass(frozen=True)
class Remedy:
    automatic: bool
    role: str | None
    action: str


@dataclass(frozen=True)
class Escalation:
    to: str
    phone: str
    why: str


@dataclass(frozen=True)
class Entry:
    """One row of the catalogue."""

    id: str
    fault: int | None
    severity: str
    summary: str
    remedy: Remedy
    escalation: Escalation | None = None

    @property
    def title(self) -> str:
        """A short plain-English name (``TITLES``)."""
        return TITLES[self.id]

    @property
    def ers_message(self) -> str | None:
        return FAULT_MESSAGES.get(self.fault) if self.fault is not None else None


def _e(id_: str, fault: int | None, severity: str, summary: str, automatic: bool, role: str | None,
       action: str, escalation: Escalation | None = None) -> Entry:
    return Entry(id_, fault, severity, summary, Remedy(automatic, role, action), escalation)


_ENTRIES: tuple[Entry, ...] = (
    # Fault 1: NHS Credential Management cannot be found
    _e("CM_NOT_INSTALLED", 1, "error",
       "Neither NHS Credential Management nor NHS Identity Hub is installed",
       False, None,
       "Install NHS Credential Management from the trust's software distribution "
       "(NHS notes that not installing it may be a deliberate local choice)"),
    _e("CM_LEGACY_IDENTITY_HUB", 1, "warning",
       "Only the deprecated NHS Identity Hub is installed",
       False, None, "Upgrade to the current NHS Credential Management"),
    _e("CM_MULTIPLE_VERSIONS", 1, "warning",
       "More than one NHS Credential Management / Identity Hub version is installed",
       False, None,
       "Uninstall every NHS Credential Management and Identity Hub version, then install the current one"),
    _e("DOTNET48_MISSING", 1, "error",
       ".NET Framework 4.8, which NHS Credential Management needs, is not installed",
       False, None, "Install .NET Framework 4.8 (or later), then reinstall NHS Credential Management"),
    _e("PORT_SERVICE_MISSING", 1, "error",
       "NHS Credential Management is installed but the NHS Port Service is not",
       False, None, "Repair or reinstall NHS Credential Management"),
    _e("PORT_SERVICE_STOPPED", 1, "error",
       "The NHS Port Service is not running",
       True, _ROLE_CM_SERVICE, "Start the NHS Port Service"),
    _e("PORT_SERVICE_NOT_AUTOMATIC", 1, "warning",
       "The NHS Port Service does not start automatically",
       True, _ROLE_CM_SERVICE, "Set the NHS Port Service start mode to Automatic"),
    _e("PORT_SERVICE_NOT_LISTENING", 1, "error",
       "The NHS Port Service runs but nothing listens on its ports",
       True, _ROLE_CM_SERVICE, "Restart the NHS Port Service"),
    _e("CM_NOT_RUNNING", 1, "error",
       "NHS Credential Management is not running in an interactive session",
       True, _ROLE_CM_SERVICE, "Start NHS Credential Management in the user's session"),
    _e("CM_REBOOT_PENDING", 1, "info",
       "NHS Credential Management is installed and Windows reports a pending reboot",
       False, None, "Reboot the computer (CM expects a reboot after it is installed or updated)"),
    _e("THIRD_PARTY_COOKIES_BLOCKED", 1, "error",
       "Browser policy blocks third-party cookies and no allow-list entry covers localhost",
       True, _ROLE_COOKIES, "Add [*.]localhost to CookiesAllowedForUrls"),
    _e("COOKIES_BLOCKED_BY_DEFAULT", 1, "error",
       "Browser policy blocks all cookies by default and no allow-list entry covers localhost",
       True, _ROLE_COOKIES, "Add [*.]localhost to CookiesAllowedForUrls"),
    _e("LOCALHOST_COOKIES_BLOCKED", 1, "error",
       "A CookiesBlockedForUrls entry matches localhost",
       True, _ROLE_COOKIES,
       "Remove the CookiesBlockedForUrls entry that matches localhost (only when the play opts in)"),
    _e("LOCALHOST_ACCESS_BLOCKED", 1, "error",
       "Browser policy blocks the NHS sites' requests to NHS Credential Management on localhost "
       "(Local Network Access)",
       True, _ROLE_COOKIES,
       "Add the NHS sites to LoopbackNetworkAllowedForUrls where it outranks the blocking entry (a "
       "LocalNetworkAccessBlockedForUrls entry, Chrome or Edge 146 or later); otherwise remove the blocking "
       "entry (a decision for the trust)"),
    _e("LOCALHOST_ACCESS_NOT_ALLOWED", 1, "warning",
       "No browser policy allows the NHS sites' requests to NHS Credential Management on localhost, so each "
       "user is asked (Local Network Access)",
       True, _ROLE_COOKIES,
       "Add the NHS sites to the Local Network Access allow list the browser reads "
       "(LocalNetworkAccessAllowedForUrls; LoopbackNetworkAllowedForUrls from version 146)"),
    _e("LOCALHOST_ACCESS_POLICY_NOT_HONOURED", 1, "warning",
       "The trust allows the NHS sites through a Local Network Access policy the installed browser version does "
       "not apply to localhost, so each user is asked",
       True, _ROLE_COOKIES,
       "Add the NHS sites to the Local Network Access allow list the installed version reads "
       "(LocalNetworkAccessAllowedForUrls; LoopbackNetworkAllowedForUrls from version 146)"),
    _e("LOCALHOST_ACCESS_USER_BLOCKED", 1, "error",
       "The user answered Block when the browser asked whether an NHS site may reach NHS Credential Management "
       "on localhost (Local Network Access); the browser profile keeps that answer",
       True, _ROLE_COOKIES,
       "The user sets Local network access to Allow (or resets it) in the browser's site settings for the NHS "
       "site, or the trust adds the NHS sites to the Local Network Access allow list (the role does), which "
       "overrides a user's Block; the role never edits a browser profile"),
    # Fault 2: running on port <port> but is not connected (CM 1.x with the legacy Identity Agent)
    _e("IA_NOT_INSTALLED", 2, "error",
       "NHS Credential Management 1.x is installed without the NHS Identity Agent",
       False, None, "Install the NHS Identity Agent v2.4.10.0 or later"),
    _e("IA_NOT_RUNNING", 2, "error",
       "NHS Credential Management 1.x runs in a session where IdentityAgent.exe does not",
       True, _ROLE_CM_SERVICE, "Start the Identity Agent in the user's session"),
    _e("IA_VERSION_RETIRED", 2, "error",
       "The NHS Identity Agent is older than 2.4.10.0 (retired and blocked by NHS)",
       False, None, "Upgrade the NHS Identity Agent to v2.4.10.0 or later"),
    _e("CM_NOT_CONNECTED", 2, "error",
       "NHS Credential Management and the Identity Agent both run but are not connected",
       True, _ROLE_CM_SERVICE,
       "Restart the Identity Agent and NHS Credential Management once; if it persists, escalate",
       Escalation(NATIONAL_SERVICE_DESK["to"], NATIONAL_SERVICE_DESK["phone"],
                  "NHS says this fault should not normally happen; raise it with the National "
                  "Service Desk if it keeps recurring")),
    # Fault 3: connected but cannot login to e-RS
    _e("SMARTCARD_SERVICE_STOPPED", 3, "error",
       "The Smart Card service (SCardSvr) is not running on a CM 1.x host",
       True, _ROLE_CM_SERVICE, "Start the Smart Card service (SCardSvr)"),
    _e("NO_SMARTCARD_READER", 3, "warning",
       "No smartcard reader is registered with Windows",
       False, None, "Connect a smartcard reader (hardware)"),
    _e("USER_NOT_LOGGED_IN", 3, "info",
       "The Identity Agent runs; whether the user is logged in cannot be read remotely",
       False, None, "Ask the user to insert their smartcard and enter their passcode"),
    # Fault 4: Windows Security (credential) dialog
    _e("INTRANET_AUTODETECT_ON", 4, "error",
       "Automatic detection of the intranet network is on",
       True, _ROLE_INTRANET, "Set ZoneMap AutoDetect to 0"),
    _e("INTRANET_LOCAL_SITES_OFF", 4, "error",
       "Local (intranet) sites not listed in other zones are not in the Local intranet zone",
       True, _ROLE_INTRANET, "Set ZoneMap IntranetName to 1"),
    _e("INTRANET_PROXY_BYPASS_OFF", 4, "error",
       "Sites that bypass the proxy server are not in the Local intranet zone",
       True, _ROLE_INTRANET, "Set ZoneMap ProxyBypass to 1"),
    _e("INTRANET_UNC_OFF", 4, "warning",
       "Network paths (UNCs) are not in the Local intranet zone",
       True, _ROLE_INTRANET, "Set ZoneMap UNCAsIntranet to 1"),
    _e("INTRANET_LOGON_NOT_AUTOMATIC", 4, "error",
       "The Local intranet zone does not log on automatically",
       True, _ROLE_INTRANET, "Set Zones\\1 1A00 to 0x20000 (automatic logon only in Intranet zone)"),
    _e("LOCALHOST_MAPPED_OUTSIDE_INTRANET", 4, "error",
       "localhost or 127.0.0.1 is mapped to a zone other than Local intranet",
       True, _ROLE_INTRANET, "Map localhost to zone 1 (Local intranet)"),
    _e("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", 4, "error",
       "AuthServerAllowlist is set and no entry matches localhost",
       True, _ROLE_INTRANET, "Add localhost to AuthServerAllowlist"),
)

#: When each finding is reported, in words (its evaluator in ``checks`` decides).
WHEN: dict[str, str] = {
    'CM_NOT_INSTALLED': (
        'No Uninstall entry (64- and 32-bit views) has a DisplayName starting `NHS Credential '
        'Management` or `NHS Identity Hub`, and `cm_required` is true.'
    ),
    'CM_LEGACY_IDENTITY_HUB':
        'Only NHS Identity Hub (deprecated) is installed, no NHS Credential Management.',
    'CM_MULTIPLE_VERSIONS': (
        'More than one CM / Identity Hub version is installed (entries shown in Add/Remove '
        'Programs).'
    ),
    'DOTNET48_MISSING': (
        'CM is installed or required and .NET Framework 4.8 is absent (`NDP\\v4\\Full` `Release` < '
        '528040; an absent key counts as present on OS build 18362 or later, where 4.8 is part of '
        'Windows).'
    ),
    'PORT_SERVICE_MISSING':
        'CM is installed but no service has the display name `NHS Port Service`.',
    'PORT_SERVICE_STOPPED':
        'The NHS Port Service is not running.',
    'PORT_SERVICE_NOT_AUTOMATIC':
        'The NHS Port Service start mode is not Automatic.',
    'PORT_SERVICE_NOT_LISTENING': (
        'The NHS Port Service runs but nothing listens on 43487, 44213, 45031, 46478 or 48853 and '
        'no probe of `/PRS/GetPortNumber` answers.'
    ),
    'CM_NOT_RUNNING': (
        "An interactive session has no CM process (an image under CM's install folder, other than "
        'the Port Service).'
    ),
    'CM_REBOOT_PENDING':
        'CM is installed and Windows reports a pending reboot.',
    'THIRD_PARTY_COOKIES_BLOCKED': (
        'The effective `BlockThirdPartyCookies` is 1 and no effective `CookiesAllowedForUrls` entry'
        ' matches `http://localhost` on every port.'
    ),
    'COOKIES_BLOCKED_BY_DEFAULT':
        'The effective `DefaultCookiesSetting` is 2 and no allow entry matches localhost.',
    'LOCALHOST_COOKIES_BLOCKED':
        'A `CookiesBlockedForUrls` entry matches localhost.',
    'LOCALHOST_ACCESS_BLOCKED': (
        'Chrome 142+ or Edge 143+ is installed and, for `https://ers.nhs.uk` or '
        '`https://am.nhsidentity.spineservices.nhs.uk`, the first Local Network Access list the version reads '
        'with a matching entry is a block list (`LoopbackNetworkBlockedForUrls` > `LoopbackNetworkAllowedForUrls` '
        '> `LocalNetworkAccessBlockedForUrls` > `LocalNetworkAccessAllowedForUrls`), and '
        '`LocalNetworkAccessRestrictionsTemporaryOptOut` is not 1.'
    ),
    'LOCALHOST_ACCESS_NOT_ALLOWED': (
        'Chrome 142+ or Edge 143+ is installed and no Local Network Access list the version reads has an entry '
        'matching an NHS site (so the user is asked), no other allow list names it, and the opt-out policy is '
        'not 1.'
    ),
    'LOCALHOST_ACCESS_POLICY_NOT_HONOURED': (
        'As `LOCALHOST_ACCESS_NOT_ALLOWED`, but an allow list the installed version does not apply to localhost '
        'matches the site: `LoopbackNetworkAllowedForUrls` before 146, `LocalNetworkAllowedForUrls` (local '
        'network endpoints only), `InsecurePrivateNetworkRequestsAllowedForUrls` (obsolete after 137).'
    ),
    'LOCALHOST_ACCESS_USER_BLOCKED': (
        'Chrome 142+ or Edge 143+ is installed, no Local Network Access policy the version reads decides for an '
        'NHS site (the user is asked) and the opt-out policy is not 1, and a browser profile of the user keeps '
        'Block for that site: the most specific entry matching it in `profile.content_settings.exceptions.'
        'local_network_access` or `.loopback_network` of the profile\'s `Preferences` has `setting` 2. A '
        '`Local State` or `Preferences` that cannot be read or is malformed makes the check unknown for that '
        'user.'
    ),
    'IA_NOT_INSTALLED':
        'CM 1.x is installed and no NHS Identity Agent is.',
    'IA_NOT_RUNNING':
        'CM 1.x runs in a session where `IdentityAgent.exe` is not running.',
    'IA_VERSION_RETIRED':
        'The Identity Agent is older than 2.4.10.0 (retired and blocked by NHS).',
    'CM_NOT_CONNECTED': (
        'Fault 2 was reported (`ers_report`) while CM and the Identity Agent both run in the '
        'session.'
    ),
    'SMARTCARD_SERVICE_STOPPED':
        'The Smart Card service (`SCardSvr`) is not running on a CM 1.x host.',
    'NO_SMARTCARD_READER':
        'No reader is registered under `HKLM\\SOFTWARE\\Microsoft\\Cryptography\\Calais\\Readers`.',
    'USER_NOT_LOGGED_IN': (
        'Fault 3 was reported (`ers_report`) and the Identity Agent runs: the login state cannot be'
        ' read remotely.'
    ),
    'INTRANET_AUTODETECT_ON':
        'The effective ZoneMap `AutoDetect` is not 0.',
    'INTRANET_LOCAL_SITES_OFF':
        'The effective ZoneMap `IntranetName` is not 1.',
    'INTRANET_PROXY_BYPASS_OFF':
        'The effective ZoneMap `ProxyBypass` is not 1.',
    'INTRANET_UNC_OFF':
        'The effective ZoneMap `UNCAsIntranet` is not 1.',
    'INTRANET_LOGON_NOT_AUTOMATIC':
        'The effective Local intranet `Zones\\1` `1A00` is not 0x00000 or 0x20000.',
    'LOCALHOST_MAPPED_OUTSIDE_INTRANET': (
        '`localhost` or `127.0.0.1` is mapped to zone 2, 3 or 4 (ZoneMap `Domains`, `Ranges`, '
        'policy `ZoneMapKey`).'
    ),
    'AUTH_ALLOWLIST_EXCLUDES_LOCALHOST':
        'Chromium `AuthServerAllowlist` is set and no entry matches `localhost`.',
}

#: A short plain-English name for each finding id, in a desk engineer's words (one line): what the
#: HTML report, findings.csv and the console show next to the id.
TITLES: dict[str, str] = {
    "CM_NOT_INSTALLED": "Credential Management is not installed",
    "CM_LEGACY_IDENTITY_HUB": "Old Identity Hub instead of Credential Management",
    "CM_MULTIPLE_VERSIONS": "More than one Credential Management version installed",
    "DOTNET48_MISSING": ".NET Framework 4.8 is missing",
    "PORT_SERVICE_MISSING": "NHS Port Service is missing",
    "PORT_SERVICE_STOPPED": "NHS Port Service is stopped",
    "PORT_SERVICE_NOT_AUTOMATIC": "NHS Port Service does not start with Windows",
    "PORT_SERVICE_NOT_LISTENING": "NHS Port Service runs but does not answer",
    "CM_NOT_RUNNING": "Credential Management is not running for a user",
    "CM_REBOOT_PENDING": "Restart needed after an install or update",
    "THIRD_PARTY_COOKIES_BLOCKED": "Browser blocks third-party cookies for localhost",
    "COOKIES_BLOCKED_BY_DEFAULT": "Browser blocks all cookies, localhost not allowed",
    "LOCALHOST_COOKIES_BLOCKED": "Browser cookie block list includes localhost",
    "LOCALHOST_ACCESS_BLOCKED": "Browser stops NHS sites reaching Credential Management",
    "LOCALHOST_ACCESS_NOT_ALLOWED": "Browser asks each user before NHS sites reach CM",
    "LOCALHOST_ACCESS_POLICY_NOT_HONOURED": "Browser version ignores the trust's localhost allow policy",
    "LOCALHOST_ACCESS_USER_BLOCKED": "The user blocked NHS sites from reaching Credential Management",
    "IA_NOT_INSTALLED": "Identity Agent is not installed",
    "IA_NOT_RUNNING": "Identity Agent is not running for a user",
    "IA_VERSION_RETIRED": "Identity Agent is too old (retired by NHS)",
    "CM_NOT_CONNECTED": "Credential Management is not connected to the Identity Agent",
    "SMARTCARD_SERVICE_STOPPED": "Smart Card service is stopped",
    "NO_SMARTCARD_READER": "No smartcard reader connected",
    "USER_NOT_LOGGED_IN": "User may not be logged in with their smartcard",
    "INTRANET_AUTODETECT_ON": "Intranet auto-detection is on",
    "INTRANET_LOCAL_SITES_OFF": "Local sites are not in the Local intranet zone",
    "INTRANET_PROXY_BYPASS_OFF": "Proxy-bypass sites are not in the Local intranet zone",
    "INTRANET_UNC_OFF": "Network paths are not in the Local intranet zone",
    "INTRANET_LOGON_NOT_AUTOMATIC": "Local intranet zone does not sign in automatically",
    "LOCALHOST_MAPPED_OUTSIDE_INTRANET": "localhost is in the wrong Internet Options zone",
    "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST": "Browser sign-in allow list leaves out localhost",
}

#: Every catalogue entry, keyed by id, in catalogue order.
CATALOGUE: dict[str, Entry] = {entry.id: entry for entry in _ENTRIES}

#: Attribute access to the ids: ``ID.CM_NOT_RUNNING == "CM_NOT_RUNNING"``.
ID: t.Any = types.SimpleNamespace(**{entry.id: entry.id for entry in _ENTRIES})

#: Catalogue order, for sorting findings.
ORDER: dict[str, int] = {entry.id: index for index, entry in enumerate(_ENTRIES)}

if set(TITLES) != set(CATALOGUE) or any("\n" in title or not title.strip() for title in TITLES.values()):
    raise ValueError("every catalogue id needs exactly one TITLES entry, one non-empty line")


def title_of(id: str) -> str:
    """The plain-English title of a finding id; the id itself for an id the catalogue lacks."""
    return TITLES.get(id, id)


def machine_scope() -> dict[str, t.Any]:
    return {"kind": "machine"}


def user_scope(user: str | None, sid: str | None, session: int | None) -> dict[str, t.Any]:
    return {"kind": "user", "user": user, "sid": sid, "session": session}


def make_finding(
    id: str,
    scope: dict[str, t.Any],
    evidence: list[dict[str, t.Any]],
    browser: str | None = None,
    summary: str | None = None,
    managed_by_gpo: bool = False,
    action: str | None = None,
    port: int | None = None,
) -> dict[str, t.Any]:
    """Return one finding in the exact shape of findings.md (every field present).

    ``summary`` and ``action`` default to the catalogue text; ``port`` replaces ``<port>`` in the
    e-RS message of faults 2 and 3 when the port is known.
    """
    try:
        entry = CATALOGUE[id]
    except KeyError:
        raise ValueError(f"unknown finding id {id!r}") from None
    if browser is not None and browser not in BROWSERS:
        raise ValueError(f"browser must be one of {', '.join(BROWSERS)} or None, not {browser!r}")
    if scope.get("kind") not in ("machine", "user"):
        raise ValueError(f"scope kind must be 'machine' or 'user', not {scope.get('kind')!r}")
    ers_message = entry.ers_message
    if ers_message is not None and port is not None:
        ers_message = ers_message.replace("<port>", str(port))
    escalation = None
    if entry.escalation is not None:
        escalation = {"to": entry.escalation.to, "phone": entry.escalation.phone, "why": entry.escalation.why}
    return {
        "id": entry.id,
        "fault": entry.fault,
        "ers_message": ers_message,
        "severity": entry.severity,
        "scope": dict(scope),
        "browser": browser,
        "summary": summary or entry.summary,
        "evidence": list(evidence),
        "remedy": {
            "automatic": entry.remedy.automatic,
            "role": entry.remedy.role,
            "action": action or entry.remedy.action,
            "managed_by_gpo": bool(managed_by_gpo),
        },
        "escalation": escalation,
    }
