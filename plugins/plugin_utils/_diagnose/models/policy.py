# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the browser-policy and intranet-zone checks read, and small accessors for the facts.

``MACHINE_READS`` (full HKLM key path, depth) and ``USER_READS`` (path below a user's hive
root, depth) are the registry keys the checks need; ``reads.plan_reads`` reads each machine
key once and each user key in every user's hive. ``READ_VALUE_NAMES`` gives, for some of those
keys, the only value names the checks use: a reader may pass them as the ``names`` filter of
``reg_read`` to keep the reply small (the checks work without the filter too).

The reads are kept small on purpose: the browser keys are read without depth (their list
subkeys are read one by one) because a policy key may hold large unrelated lists such as
``URLBlocklist``; ``Zones\\1`` is read for ``1A00`` only; ``ZoneMap\\Domains`` only for
``localhost`` and ``127.0.0.1``.

Facts shape (built by ``facts.build_facts``):
``facts["policy_keys"][<machine path as declared>]`` and
``facts["users"][i]["keys"][<user path as declared>]`` are nodes
``{"exists", "values": {name: {"type", "data"}}, "subkeys": {name: node|None}, "error"}``.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import (
    machine_scope,
    make_finding,
    user_scope,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.gpo import gpo_action
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.product import installed

#: A registry key as read: ``{exists, values: {name: {type, data}}, subkeys: {name: node or
#: null}, error: null or the error kind}`` at every level.
Node = dict[str, t.Any]
#: The facts of ``facts.build_facts`` as the models and checks read them (``facts.DiagnoseFacts``
#: gives their shape); any dict with the keys a check reads will do.
Facts = dict[str, t.Any]

# -- browser policy keys (relative to a hive root) --------------------------------------------
CHROMIUM_KEYS: dict[str, str] = {
    "chrome": "SOFTWARE\\Policies\\Google\\Chrome",
    "edge": "SOFTWARE\\Policies\\Microsoft\\Edge",
}
BROWSER_NAMES = {"chrome": "Chrome", "edge": "Edge", "firefox": "Firefox"}
COOKIE_LISTS = ("CookiesAllowedForUrls", "CookiesBlockedForUrls", "CookiesSessionOnlyForUrls")
#: The Local Network Access lists read for requests from the NHS sites to localhost (``models.local_network``):
#: the four the browsers apply to loopback, and two allow lists that never apply to it from a version
#: that enforces Local Network Access (read to say so).
LNA_LISTS = ("LoopbackNetworkBlockedForUrls", "LoopbackNetworkAllowedForUrls", "LocalNetworkAccessBlockedForUrls",
             "LocalNetworkAccessAllowedForUrls", "LocalNetworkAllowedForUrls",
             "InsecurePrivateNetworkRequestsAllowedForUrls")
LNA_OPT_OUT = "LocalNetworkAccessRestrictionsTemporaryOptOut"
#: Every list policy read as a subkey of the browser's policy key.
LIST_POLICIES = COOKIE_LISTS + LNA_LISTS
CHROMIUM_VALUES = ["BlockThirdPartyCookies", "DefaultCookiesSetting", "AuthServerAllowlist", "AuthServerWhitelist",
                   LNA_OPT_OUT, *LIST_POLICIES]
RECOMMENDED = "Recommended"
#: Of the policies read, the only one Chrome and Edge accept at the recommended level.
RECOMMENDABLE = ("BlockThirdPartyCookies",)
FIREFOX_COOKIES_KEY = "SOFTWARE\\Policies\\Mozilla\\Firefox\\Cookies"

# -- Internet Settings (relative to a hive root) --------------------------------------------
INTERNET_SETTINGS = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
INTERNET_SETTINGS_POLICY = "SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
ZONEMAP = INTERNET_SETTINGS + "\\ZoneMap"
ZONEMAP_POLICY = INTERNET_SETTINGS_POLICY + "\\ZoneMap"
ZONEMAPKEY_POLICY = INTERNET_SETTINGS_POLICY + "\\ZoneMapKey"
INTRANET_ZONE = INTERNET_SETTINGS + "\\Zones\\1"
INTRANET_ZONE_POLICY = INTERNET_SETTINGS_POLICY + "\\Zones\\1"
DOMAINS = ZONEMAP + "\\Domains"
RANGES = ZONEMAP + "\\Ranges"
#: Hosts whose zone mapping is checked, as ZoneMap\\Domains keys.
MAPPED_HOSTS = ("localhost", "127.0.0.1")
ZONEMAP_FLAGS = ["AutoDetect", "IntranetName", "ProxyBypass", "UNCAsIntranet"]
LOGON_ACTION = "1A00"
HKLM_ONLY = "Security_HKLM_only"


def _chromium_reads() -> list[tuple[str, int]]:
    reads = []
    for key in CHROMIUM_KEYS.values():
        reads.append((key, 0))
        reads.extend((f"{key}\\{policy}", 0) for policy in LIST_POLICIES)
        reads.append((f"{key}\\{RECOMMENDED}", 0))
    reads.append((FIREFOX_COOKIES_KEY, 1))
    return reads


def _zone_reads(machine: bool) -> list[tuple[str, int]]:
    reads = [(INTERNET_SETTINGS_POLICY, 0)] if machine else []
    reads += [(ZONEMAP_POLICY, 0), (ZONEMAPKEY_POLICY, 0), (INTRANET_ZONE_POLICY, 0), (ZONEMAP, 0)]
    reads += [(f"{DOMAINS}\\{host}", 0) for host in MAPPED_HOSTS]
    reads += [(RANGES, 1), (INTRANET_ZONE, 0)]
    return reads


def _user_path(path: str) -> str:
    """User keys are written ``Software\\...`` (as in the brief's facts shape)."""
    return "Software" + path[len("SOFTWARE"):] if path.startswith("SOFTWARE\\") else path


#: (full HKLM key path, depth) read once per host.
MACHINE_READS: list[tuple[str, int]] = [(f"HKLM\\{path}", depth) for path, depth in
                                        _chromium_reads() + _zone_reads(machine=True)]
#: (key path below a user's hive root, depth) read in every user's hive.
USER_READS: list[tuple[str, int]] = [(_user_path(path), depth) for path, depth in
                                     _chromium_reads() + _zone_reads(machine=False)]


def _names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for key in CHROMIUM_KEYS.values():
        names[key] = list(CHROMIUM_VALUES)
        names[f"{key}\\{RECOMMENDED}"] = list(RECOMMENDABLE)
    names[INTERNET_SETTINGS_POLICY] = [HKLM_ONLY]
    names[ZONEMAP_POLICY] = list(ZONEMAP_FLAGS)
    names[ZONEMAP] = list(ZONEMAP_FLAGS)
    names[INTRANET_ZONE_POLICY] = [LOGON_ACTION]
    names[INTRANET_ZONE] = [LOGON_ACTION]
    result = {}
    for path, value_names in names.items():
        result[f"HKLM\\{path}"] = value_names
        result[_user_path(path)] = value_names
    return result


#: Optional ``names`` filter per declared path (machine paths and user paths alike).
READ_VALUE_NAMES: dict[str, list[str]] = _names()


# -- accessors ----------------------------------------------------------------------------

def _lookup(mapping: t.Mapping[str, t.Any] | None, name: str) -> t.Any:
    if not mapping:
        return None
    if name in mapping:
        return mapping[name]
    folded = name.casefold()
    for key, value in mapping.items():
        if key.casefold() == folded:
            return value
    return None


@dataclass(frozen=True)
class Hive:
    """Where keys are read from: the machine, or one user's hive."""

    kind: str  # "machine" | "user"
    user: dict[str, t.Any] | None = None

    @property
    def root(self) -> str:
        if self.kind == "machine":
            return "HKLM"
        return f"HKU\\{(self.user or {}).get('sid') or '<user>'}"

    def path(self, relative: str) -> str:
        return f"{self.root}\\{relative if self.kind == 'machine' else _user_path(relative)}"

    def node(self, facts: Facts, relative: str) -> tuple[Node | None, str | None]:
        """(node, None) or (None, why it cannot be used)."""
        if self.kind == "machine":
            table = facts.get("policy_keys")
            node = _lookup(table, self.path(relative))
        else:
            table = (self.user or {}).get("keys")
            node = _lookup(table, _user_path(relative))
        if table is None:
            return None, f"the policy keys of {self.root} were not read"
        if not isinstance(node, dict):
            return None, f"{self.path(relative)} was not read"
        if node.get("error"):
            return None, f"cannot read {self.path(relative)}: {node['error']}"
        return node, None


def exists(node: Node | None) -> bool:
    return isinstance(node, dict) and bool(node.get("exists", True)) and not node.get("error")


def value(node: Node | None, name: str) -> tuple[str, dict[str, t.Any]] | None:
    """(name as stored, {type, data}) of a value, compared without case, or None."""
    if not exists(node):
        return None
    values = (node or {}).get("values") or {}
    if name in values and isinstance(values[name], dict):
        return name, values[name]
    folded = name.casefold()
    for stored, item in values.items():
        if stored.casefold() == folded and isinstance(item, dict):
            return stored, item
    return None


def subkey(node: Node | None, name: str) -> Node | None:
    if not exists(node):
        return None
    child = _lookup((node or {}).get("subkeys"), name)
    return child if isinstance(child, dict) else None


def users(facts: Facts) -> list[dict[str, t.Any]]:
    """People's hives (facts["users"]); [] when the facts have none."""
    return [user for user in facts.get("users") or [] if isinstance(user, dict)]


def hive_unavailable(user: dict[str, t.Any]) -> str | None:
    """Why a user's hive cannot be read, or None when it can."""
    if user.get("hive") == "unavailable" or user.get("error"):
        return user.get("error") or "hive not available"
    return None


def user_label(user: dict[str, t.Any]) -> str:
    session = user.get("session")
    where = f"session {session}" if session is not None else "not logged on"
    return f"{user.get('user') or user.get('sid')} ({where})"


@dataclass(frozen=True)
class RegRead:
    """A registry value as read, with the policy source it belongs to."""

    path: str
    name: str
    type: str | None
    data: t.Any
    source: str

    def evidence(self, **extra: t.Any) -> dict[str, t.Any]:
        item = {"path": self.path, "name": self.name, "type": self.type, "data": self.data, "source": self.source}
        item.update(extra)
        return item


def absent(path: str, name: str, source: str, **extra: t.Any) -> dict[str, t.Any]:
    item: dict[str, t.Any] = {"path": path, "name": name, "exists": False, "source": source}
    item.update(extra)
    return item


# -- one finding per machine, or per user -----------------------------------------------------

@dataclass
class Verdict:
    """A check that fires for one view (the machine alone, or one user): what to report, the
    registry values that decided it (for the Group Policy lookup) and whether anything in the
    user's own hive decided it (``user_decided``)."""

    summary: str
    evidence: list[dict[str, t.Any]]
    action: str
    deciding: list[tuple[str, str]]
    user_decided: bool


Judge = t.Callable[[dict[str, t.Any] | None], "Verdict | None"]
ErrorsOf = t.Callable[[dict[str, t.Any] | None], list[str]]


def user_entry_scope(user: dict[str, t.Any]) -> dict[str, t.Any]:
    """The finding scope of one ``facts["users"]`` entry (``catalogue.user_scope``)."""
    return user_scope(user.get("user"), user.get("sid"), user.get("session"))


def judge_scopes(facts: Facts, judge: Judge, errors_of: ErrorsOf
                 ) -> tuple[list[tuple[dict[str, t.Any], Verdict]], list[str]]:
    """Run ``judge`` for the machine alone (``None``: as for a user whose hive sets nothing) and
    for every user, and decide the scope of what fires:

    - ONE finding with scope ``{kind: machine}`` when the machine view fires, nothing in a user's
      hive decided it, and every user whose hive was read gets the very same result (the machine's
      settings decide it for everybody, including a host with nobody to check);
    - otherwise one finding per user for whom it fires, scope ``{kind: user, user, sid, session}``.

    Returns (findings as (scope, verdict), reasons the check could not be made)."""
    problems = errors_of(None)
    if problems:
        return [], ["; ".join(dict.fromkeys(problems))]
    machine = judge(None)
    results: list[tuple[dict[str, t.Any], Verdict | None]] = []
    reasons: list[str] = []
    for user in users(facts):
        why = hive_unavailable(user)
        if why is None:
            user_problems = errors_of(user)
            why = "; ".join(dict.fromkeys(user_problems)) if user_problems else None
        if why is not None:
            reasons.append(f"{user_label(user)}: {why}")
            continue
        results.append((user_entry_scope(user), judge(user)))
    if machine is not None and not machine.user_decided and all(
            verdict is not None and not verdict.user_decided for _scope, verdict in results):
        return [(machine_scope(), machine)], reasons
    return [(scope, verdict) for scope, verdict in results if verdict is not None], reasons


def cm_applies(facts: Facts, options: dict[str, t.Any]) -> bool:
    """The browser and zone checks matter where CM is installed, or wanted (``cm_required``)."""
    return bool(options.get("cm_required", True)) or bool(installed(facts, "cm", "identity_hub"))


def report_scopes(facts: Facts, check_id: str, browser: str | None, judge: Judge, errors_of: ErrorsOf
                  ) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """(findings, unknown checks) of one check (and browser), at machine or user scope
    (``judge_scopes``), each remedy saying when domain Group Policy owns a deciding value."""
    results, reasons = judge_scopes(facts, judge, errors_of)
    prefix = f"{BROWSER_NAMES[browser]}: " if browser else ""
    unknown = [{"check": check_id, "reason": prefix + reason} for reason in reasons]
    findings = []
    for scope, verdict in results:
        managed, gpo_text = gpo_action(facts, verdict.deciding)
        action = verdict.action + (f"; {gpo_text}" if gpo_text else "")
        findings.append(make_finding(check_id, scope, verdict.evidence, browser=browser, summary=verdict.summary,
                                     managed_by_gpo=managed, action=action))
    return findings, unknown
