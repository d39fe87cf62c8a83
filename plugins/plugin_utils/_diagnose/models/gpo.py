# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which Group Policy setting writes a registry value, and whether domain Group Policy owns it.

``gpo_policy(key, name)`` names the administrative-template policy that writes a value, as the
Group Policy editor shows it (``Google Chrome > Content settings > Block third party cookies``);
``gpo_policy_path`` adds the editor's root (``Computer Configuration > Administrative
Templates > ...`` for HKLM, ``User Configuration > ...`` for a user's hive).
``gpo_owner(facts, key, name)`` returns the entry of ``facts["gpo"]["settings"]`` (the
resultant set of policy read from the host) that sets that value, or None. A value owned by a
GPO is put back at the next Group Policy refresh, so the findings say which policy to change.

Policy names: Chrome from chrome.admx, Edge from MSEdge.admx (Microsoft's Edge policy pages),
Firefox from Mozilla's policy templates, Internet Explorer zone settings from inetres.admx
(reference nhs-cm-domain.md 5.2-5.4). The intranet "Logon options" policy's exact ADMX name was
not confirmed (reference: open question 10); the editor shows it under "Intranet Zone".
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t

CHROME_KEY = "SOFTWARE\\Policies\\Google\\Chrome"
EDGE_KEY = "SOFTWARE\\Policies\\Microsoft\\Edge"
FIREFOX_KEY = "SOFTWARE\\Policies\\Mozilla\\Firefox"
IE_POLICY_KEY = "SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"

_CHROME = "Google Chrome"
_CHROME_REC = "Google Chrome - Default Settings (users can override)"
_EDGE = "Microsoft Edge"
_EDGE_REC = "Microsoft Edge - Default Settings (users can override)"
#: The Local Network Access policies' categories (Chromium's policy group caption; Microsoft's
#: policy index lists Edge's under Network settings).
_CHROME_LNA = f"{_CHROME} > Local Network Access settings"
_EDGE_LNA = f"{_EDGE} > Network settings"
_IE_SECURITY = "Windows Components > Internet Explorer > Internet Control Panel > Security Page"

#: (key below the hive, value name or "*" for every value of a list key) -> policy as the GPO editor shows it.
GPO_EDITOR_NAMES: dict[tuple[str, str], str] = {
    (CHROME_KEY, "BlockThirdPartyCookies"): f"{_CHROME} > Content settings > Block third party cookies",
    (CHROME_KEY + "\\Recommended", "BlockThirdPartyCookies"): (
        f"{_CHROME_REC} > Content settings > "
        "Block third party cookies"
    ),
    (CHROME_KEY, "DefaultCookiesSetting"): f"{_CHROME} > Content settings > Default cookies setting",
    (CHROME_KEY + "\\CookiesAllowedForUrls", "*"): f"{_CHROME} > Content settings > Allow cookies on these sites",
    (CHROME_KEY + "\\CookiesBlockedForUrls", "*"): f"{_CHROME} > Content settings > Block cookies on these sites",
    (CHROME_KEY + "\\CookiesSessionOnlyForUrls", "*"): (
        f"{_CHROME} > Content settings > "
        "Limit cookies from matching URLs to the current session"
    ),
    (CHROME_KEY, "AuthServerAllowlist"): f"{_CHROME} > HTTP authentication > Authentication server allowlist",
    (CHROME_KEY, "AuthServerWhitelist"): (
        f"{_CHROME} > HTTP authentication > Authentication server whitelist "
        "(deprecated)"
    ),
    (EDGE_KEY, "BlockThirdPartyCookies"): f"{_EDGE} > Content settings > Block third party cookies",
    (EDGE_KEY + "\\Recommended", "BlockThirdPartyCookies"): (
        f"{_EDGE_REC} > Content settings > "
        "Block third party cookies"
    ),
    (EDGE_KEY, "DefaultCookiesSetting"): f"{_EDGE} > Content settings > Configure cookies",
    (EDGE_KEY + "\\CookiesAllowedForUrls", "*"): f"{_EDGE} > Content settings > Allow cookies on specific sites",
    (EDGE_KEY + "\\CookiesBlockedForUrls", "*"): f"{_EDGE} > Content settings > Block cookies on specific sites",
    (EDGE_KEY + "\\CookiesSessionOnlyForUrls", "*"): (
        f"{_EDGE} > Content settings > "
        "Limit cookies from specific websites to the current session"
    ),
    (EDGE_KEY, "AuthServerAllowlist"): (
        f"{_EDGE} > HTTP authentication > "
        "Configure list of allowed authentication servers"
    ),
    (EDGE_KEY, "AuthServerWhitelist"): (
        f"{_EDGE} > HTTP authentication > "
        "Configure list of allowed authentication servers (deprecated name)"
    ),
    (CHROME_KEY + "\\LoopbackNetworkAllowedForUrls", "*"): (
        f"{_CHROME_LNA} > Allow sites to make network requests to "
        "the local device."
    ),
    (CHROME_KEY + "\\LoopbackNetworkBlockedForUrls", "*"): (
        f"{_CHROME_LNA} > Block sites from making network requests "
        "to the local device."
    ),
    (CHROME_KEY + "\\LocalNetworkAccessAllowedForUrls", "*"): (
        f"{_CHROME_LNA} > Allow sites to make requests to local "
        "network endpoints."
    ),
    (CHROME_KEY + "\\LocalNetworkAccessBlockedForUrls", "*"): (
        f"{_CHROME_LNA} > Block sites from making requests to "
        "local network endpoints."
    ),
    (CHROME_KEY + "\\LocalNetworkAllowedForUrls", "*"): (
        f"{_CHROME_LNA} > Allow sites to make network requests to "
        "local network endpoints."
    ),
    (CHROME_KEY, "LocalNetworkAccessRestrictionsTemporaryOptOut"): (
        f"{_CHROME_LNA} > Specifies whether to "
        "(temporarily) opt out of Local Network Access "
        "restrictions"
    ),
    (EDGE_KEY + "\\LoopbackNetworkAllowedForUrls", "*"): (
        f"{_EDGE_LNA} > Allow sites to make network requests to the "
        "local device."
    ),
    (EDGE_KEY + "\\LoopbackNetworkBlockedForUrls", "*"): (
        f"{_EDGE_LNA} > Block sites from making network requests to "
        "the local device."
    ),
    (EDGE_KEY + "\\LocalNetworkAccessAllowedForUrls", "*"): (
        f"{_EDGE_LNA} > Allow sites to make network requests to "
        "local devices and local network endpoints."
    ),
    (EDGE_KEY + "\\LocalNetworkAccessBlockedForUrls", "*"): (
        f"{_EDGE_LNA} > Block sites from making network requests "
        "to local devices and local network endpoints."
    ),
    (EDGE_KEY + "\\LocalNetworkAllowedForUrls", "*"): (
        f"{_EDGE_LNA} > Allow sites to make network requests to local "
        "network endpoints."
    ),
    (EDGE_KEY, "LocalNetworkAccessRestrictionsTemporaryOptOut"): (
        f"{_EDGE_LNA} > Specifies whether to opt out of Local "
        "Network Access restrictions"
    ),
    (FIREFOX_KEY + "\\Cookies", "Behavior"): "Firefox > Cookies > Cookie Behavior",
    (FIREFOX_KEY + "\\Cookies", "Default"): "Firefox > Cookies > Accept cookies from websites (Deprecated)",
    (FIREFOX_KEY + "\\Cookies", "AcceptThirdParty"): "Firefox > Cookies > Accept third-party cookies (Deprecated)",
    (FIREFOX_KEY + "\\Cookies\\Allow", "*"): "Firefox > Cookies > Allowed Sites",
    (FIREFOX_KEY + "\\Cookies\\AllowSession", "*"): "Firefox > Cookies > Allowed Sites (Session Only)",
    (FIREFOX_KEY + "\\Cookies\\Block", "*"): "Firefox > Cookies > Blocked Sites",
    (IE_POLICY_KEY + "\\ZoneMap", "AutoDetect"): f"{_IE_SECURITY} > Turn on automatic detection of intranet",
    (IE_POLICY_KEY + "\\ZoneMap", "IntranetName"): (
        f"{_IE_SECURITY} > Intranet Sites: Include all local (intranet) "
        "sites not listed in other zones"
    ),
    (IE_POLICY_KEY + "\\ZoneMap", "ProxyBypass"): (
        f"{_IE_SECURITY} > Intranet Sites: Include all sites that bypass "
        "the proxy server"
    ),
    (IE_POLICY_KEY + "\\ZoneMap", "UNCAsIntranet"): (
        f"{_IE_SECURITY} > Intranet Sites: Include all network paths "
        "(UNCs)"
    ),
    (IE_POLICY_KEY + "\\ZoneMapKey", "*"): f"{_IE_SECURITY} > Site to Zone Assignment List",
    (IE_POLICY_KEY + "\\Zones\\1", "1A00"): f"{_IE_SECURITY} > Intranet Zone > Logon options",
    (IE_POLICY_KEY, "Security_HKLM_only"): (
        "Windows Components > Internet Explorer > "
        "Security Zones: Use only machine settings"
    ),
}

_ROOTS = {"HKLM": "Computer Configuration > Administrative Templates > ",
          "HKU": "User Configuration > Administrative Templates > "}


def split_hive(path: str) -> tuple[str, str]:
    """``HKLM\\SOFTWARE\\X`` -> (``HKLM``, ``SOFTWARE\\X``); ``HKU\\<sid>\\Software\\X`` ->
    (``HKU``, ``Software\\X``). Long hive names are accepted."""
    parts = path.replace("/", "\\").strip("\\").split("\\")
    hive = parts[0].upper()
    hive = {"HKEY_LOCAL_MACHINE": "HKLM", "HKEY_USERS": "HKU"}.get(hive, hive)
    rest = parts[2:] if hive == "HKU" else parts[1:]
    return hive, "\\".join(rest)


def normalise_key(path: str) -> str:
    """A key path for comparison: short hive name, backslashes, no doubled or trailing
    separators, case folded."""
    parts = [part for part in path.replace("/", "\\").split("\\") if part]
    if parts:
        parts[0] = {"HKEY_LOCAL_MACHINE": "HKLM", "HKEY_USERS": "HKU"}.get(parts[0].upper(), parts[0].upper())
    return "\\".join(parts).casefold()


def gpo_policy(key: str, name: str) -> str | None:
    """The administrative-template policy that writes value ``name`` of ``key`` (a full path),
    or None when the table has none."""
    _hive, relative = split_hive(key)
    folded = relative.casefold()
    for (policy_key, policy_name), policy in GPO_EDITOR_NAMES.items():
        if policy_key.casefold() != folded:
            continue
        if policy_name == "*" or policy_name.casefold() == name.casefold():
            return policy
    return None


def gpo_policy_path(key: str, name: str) -> str | None:
    """``gpo_policy`` with the Group Policy editor's root for the key's hive."""
    policy = gpo_policy(key, name)
    if policy is None:
        return None
    hive, _relative = split_hive(key)
    return _ROOTS.get(hive, "") + policy


def _is_delete_marker(name: str) -> bool:
    """Registry.pol markers that make a GPO own a whole key (``**delvals.``, ``**del.<name>``)."""
    return bool(re.match(r"^\*\*del(vals\.|\.)", name, re.IGNORECASE))


def gpo_owner(facts: dict[str, t.Any], key: str, name: str) -> dict[str, t.Any] | None:
    """The Group Policy setting (an entry of ``facts["gpo"]["settings"]``) that sets value
    ``name`` of ``key``, or None when no GPO sets it or Group Policy could not be read."""
    gpo = facts.get("gpo") or {}
    if not gpo.get("available"):
        return None
    wanted_key, wanted_name = normalise_key(key), name.casefold()
    for setting in gpo.get("settings") or []:
        if normalise_key(str(setting.get("key") or "")) != wanted_key:
            continue
        setting_name = str(setting.get("name") or "")
        if setting_name.casefold() == wanted_name or _is_delete_marker(setting_name):
            return setting
    return None


def gpo_action(facts: dict[str, t.Any], values: list[tuple[str, str]]) -> tuple[bool, str | None]:
    """(managed by GPO, what to change) for the registry values that decided a finding: the
    first value a GPO sets names the GPO and the policy to change; None when no GPO sets any."""
    for key, name in values:
        owner = gpo_owner(facts, key, name)
        if owner is None:
            continue
        policy = gpo_policy_path(key, name) or f"the Group Policy item that writes {key} {name}"
        return True, (f"domain Group Policy sets {key} {name} (GPO {owner.get('gpo')!r}): change '{policy}' "
                      "in that GPO; a local change is undone at the next Group Policy refresh")
    return False, None
