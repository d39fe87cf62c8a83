# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Effective browser policy, policy by policy, as Chrome, Edge and Firefox apply it.

Pure functions over the facts (see ``models.policy``); no I/O.

Chrome and Edge (after Chromium ``components/policy``):
- Sources, highest first: mandatory machine (``HKLM\\SOFTWARE\\Policies\\<browser>``),
  mandatory user (the user's hive, same path), recommended machine (``...\\Recommended``),
  recommended user. Mandatory beats recommended first, then machine beats user
  (``PolicyMap`` priority: level, then scope). Only ``BlockThirdPartyCookies`` of the policies
  read may be recommended; Chromium ignores the others at the recommended level.
- A value counts only when Chromium can convert it: a boolean from REG_DWORD (non-zero is true)
  or a REG_SZ holding an integer; an integer from REG_DWORD or a REG_SZ integer; a string from
  REG_SZ or REG_EXPAND_SZ (environment variables are not expanded here). A value that cannot be
  converted is skipped and the next source decides; it is listed as ignored in the evidence.
- A list policy is the subkey named after the policy; EVERY value whose name is an integer
  counts (``1..n``, 0-based, gaps), whatever the numbering; values with non-numeric names are
  ignored, as Chromium's ``registry_dict.cc`` ignores them ("non-numerical keys are ignored").
  A REG_SZ value named after the policy holding a JSON list is accepted too. A list comes whole
  from the winning source: an existing (even empty) subkey of a higher source hides every
  lower source.
- ``PolicyListMultipleSourceMergeList`` is not read: Chromium merges list values only between
  sources of the same level AND scope (``policy_merger.cc``, ``ConflictCanBeMerged``), so a
  machine (HKLM) list and a user-hive list are never merged, whatever that policy names.
- ``AuthServerAllowlist`` wins over its deprecated name ``AuthServerWhitelist``.

Cookies for ``http://localhost:<port>`` (CM's port differs per session, so every port counts):
the allow, block and session-only lists become rules; for each port, the most specific
matching rule wins (``ContentSettingsPattern::Compare``: host, then port, then scheme), and for
identical patterns the list read last wins (session-only, then blocked, then allowed, in
Chromium's policy provider order). An entry ``primary,secondary`` applies only under top-level
sites its second pattern matches; the sites used are ``NHS_TOP_LEVEL_SITES`` (e-RS and CIS2
Authentication; inference: the pages that call CM). localhost is "covered" when, for every port
and site, the winning rule allows cookies (allow or session-only) AND is explicit, i.e. does
not match every host (Chromium lifts third-party blocking only for explicit rules, so ``*`` or
``http://*`` do not count), or is a block entry: a port where a block entry wins is
``LOCALHOST_COOKIES_BLOCKED``'s finding, not a missing allow entry (adding ``[*.]localhost``
would not fix it).

Firefox (``SOFTWARE\\Policies\\Mozilla\\Firefox\\Cookies``): machine then user per field (Firefox
reads the user's policies first and lets the machine's overwrite them); ``Behavior``
``reject-foreign`` blocks third-party cookies and ``reject`` all cookies; when ``Behavior`` is
unset, the deprecated ``AcceptThirdParty`` = ``never`` and ``Default`` = 0 mean the same. The
``Allow``, ``AllowSession`` and ``Block`` lists hold origins (every value counts); an origin
covers one port only (the scheme's default when it names none: Firefox keys a cookie permission
by the principal's origin, port included; ``url_patterns``), so no Allow list covers CM's
per-session port and a Behavior that rejects third-party cookies is reported whatever it holds. The other
behaviours (``accept``, ``reject-tracker``, ``reject-tracker-and-partition-foreign``,
``limit-foreign``) are not reported: localhost is no tracker, partitioned cookies still reach it,
and whether ``limit-foreign`` blocks it is not known.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    CHROMIUM_KEYS,
    COOKIE_LISTS,
    FIREFOX_COOKIES_KEY,
    LIST_POLICIES,
    RECOMMENDABLE,
    RECOMMENDED,
    Facts,
    Hive,
    Node,
    RegRead,
    exists,
    subkey,
    value,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    AuthRule,
    FirefoxOrigin,
    PatternPair,
    auth_covers_localhost_any_port,
    auth_rule_matches_localhost,
    firefox_localhost_port,
    firefox_matches_localhost_some_port,
    is_explicit,
    localhost_ports_named,
    localhost_url,
    pair_applies,
    pair_precedence_key,
    parse_auth_allowlist,
    parse_firefox_origin,
    parse_pattern_pair,
    parse_url,
    representative_ports,
)

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_INT_TEXT = re.compile(r"\s*-?\d+\s*")
_SIGNED_INT = re.compile(r"[+-]?\d+")

#: Top-level sites under which CM is called (e-RS; CIS2 Authentication). Inference: used only for
#: ``primary,secondary`` cookie entries, whose rule applies under the secondary's sites alone.
NHS_TOP_LEVEL_SITES = ("https://ers.nhs.uk", "https://am.nhsidentity.spineservices.nhs.uk")

_STRING_TYPES = ("REG_SZ", "REG_EXPAND_SZ")
LEVELS = ("mandatory", "recommended")


@dataclass(frozen=True)
class Source:
    """One place Chromium reads policy from."""

    level: str  # mandatory | recommended
    hive: Hive
    key: str  # key below the hive root

    @property
    def scope(self) -> str:
        return self.hive.kind

    @property
    def label(self) -> str:
        return f"{self.scope} {self.level} policy"

    @property
    def path(self) -> str:
        return self.hive.path(self.key)


@dataclass(frozen=True)
class ListEntry:
    value: RegRead
    pair: PatternPair


@dataclass
class Effective:
    """The effective value of one policy: ``value`` None when unset; ``winner`` the registry
    value that set it (a list's entries are in ``entries``); ``ignored`` evidence of values seen
    and ignored."""

    policy: str
    value: t.Any = None
    winner: RegRead | None = None
    source: Source | None = None
    entries: list[ListEntry] = field(default_factory=list)
    list_key: str | None = None
    ignored: list[dict[str, t.Any]] = field(default_factory=list)

    @property
    def is_set(self) -> bool:
        return self.source is not None

    @property
    def from_user(self) -> bool:
        return self.source is not None and self.source.scope == "user"


@dataclass
class ChromiumPolicy:
    """The policy sources of one browser for one hive view (the machine alone, or a user)."""

    browser: str
    sources: list[Source]
    nodes: dict[tuple[str, str], Node | None]  # (source path, subkey or "") -> node
    errors: list[str]


# ---------------------------------------------------------------------------------------------
# Reading the sources

#: The policies read from the last facts asked about: every check of one host asks for the same
#: browser and user several times (about 50 times per host), and the facts do not change while
#: they are judged. Held for one facts object at a time (a fork judges one host at a time).
_READ: dict[str, t.Any] = {"facts": None, "policies": {}, "cookies": {}}


def chromium_policy(facts: Facts, browser: str, user: dict[str, t.Any] | None) -> ChromiumPolicy:
    """The sources of ``browser`` (chrome|edge) as they apply to ``user`` (None: the machine
    alone, as for a user whose hive sets nothing)."""
    if _READ["facts"] is not facts:
        _READ.update(facts=facts, policies={}, cookies={})
    cache_key = (browser, None if user is None else id(user), None if user is None else user.get("sid"))
    if cache_key not in _READ["policies"]:
        _READ["policies"][cache_key] = _read_chromium_policy(facts, browser, user)
    return _READ["policies"][cache_key]


def _read_chromium_policy(facts: Facts, browser: str, user: dict[str, t.Any] | None) -> ChromiumPolicy:
    key = CHROMIUM_KEYS[browser]
    hives = [Hive("machine")] + ([Hive("user", user)] if user is not None else [])
    sources = [Source("mandatory", hive, key) for hive in hives]
    sources += [Source("recommended", hive, f"{key}\\{RECOMMENDED}") for hive in hives]
    nodes: dict[tuple[str, str], Node | None] = {}
    errors: list[str] = []
    for source in sources:
        node, error = source.hive.node(facts, source.key)
        nodes[(source.path, "")] = node
        if error:
            errors.append(error)
        if source.level != "mandatory":
            continue
        for policy in LIST_POLICIES:
            list_node, list_error = source.hive.node(facts, f"{source.key}\\{policy}")
            nodes[(source.path, policy)] = list_node
            if list_error:
                errors.append(list_error)
    return ChromiumPolicy(browser, sources, nodes, errors)


def _int(text: str) -> int | None:
    return int(text) if _INT_TEXT.fullmatch(text) else None


def convert(kind: str, item: dict[str, t.Any]) -> tuple[bool, t.Any]:
    """(converted, value) of a registry value for a policy of ``kind`` (bool|int|str)."""
    reg_type, data = item.get("type"), item.get("data")
    if reg_type == "REG_DWORD" and isinstance(data, int):
        if kind == "bool":
            return True, data != 0
        if kind == "int":
            return True, data - (1 << 32) if data >= 1 << 31 else data
    if reg_type in _STRING_TYPES and isinstance(data, str):
        if kind == "str":
            return True, data
        number = _int(data)
        if number is not None and kind in ("bool", "int"):
            return True, number != 0 if kind == "bool" else number
    return False, None


def _type_reason(kind: str, item: dict[str, t.Any]) -> str:
    wanted = {"bool": "REG_DWORD (or REG_SZ holding a number)", "int": "REG_DWORD (or REG_SZ holding a number)",
              "str": "REG_SZ or REG_EXPAND_SZ"}[kind]
    return f"ignored: {item.get('type')} {item.get('data')!r} cannot be read as {wanted}"


def effective_scalar(view: ChromiumPolicy, policy: str, kind: str) -> Effective:
    result = Effective(policy)
    for source in view.sources:
        if source.level == "recommended" and policy not in RECOMMENDABLE:
            continue
        found = value(view.nodes.get((source.path, "")), policy)
        if found is None:
            continue
        name, item = found
        ok, converted = convert(kind, item)
        reg = RegRead(source.path, name, item.get("type"), item.get("data"), source.label)
        if not ok:
            result.ignored.append(reg.evidence(note=_type_reason(kind, item)))
            continue
        result.value, result.winner, result.source = converted, reg, source
        return result
    return result


def _is_numeric_name(name: str) -> bool:
    return _SIGNED_INT.fullmatch(name) is not None and -(2 ** 31) <= int(name) < 2 ** 31


def _list_from_key(source: Source, policy: str, node: Node) -> tuple[list[ListEntry], list[dict[str, t.Any]]]:
    entries, ignored = [], []
    path = f"{source.path}\\{policy}"
    values = node.get("values") or {}
    names = sorted(values, key=lambda n: (not _is_numeric_name(n), int(n) if _is_numeric_name(n) else 0, n))
    for name in names:
        item = values[name]
        if not isinstance(item, dict):
            continue
        reg = RegRead(path, name, item.get("type"), item.get("data"), source.label)
        if not _is_numeric_name(name):
            ignored.append(reg.evidence(note="ignored: the value name is not a number (Chromium reads only "
                                             "numbered values of a list policy)"))
        elif item.get("type") not in _STRING_TYPES or not isinstance(item.get("data"), str):
            ignored.append(reg.evidence(note=f"ignored: a list entry must be REG_SZ, not {item.get('type')}"))
        else:
            entries.append(ListEntry(reg, parse_pattern_pair(item["data"])))
    return entries, ignored


def _list_from_json(source: Source, policy: str, item: tuple[str, dict[str, t.Any]] | None
                    ) -> list[ListEntry] | None:
    if item is None:
        return None
    name, reg_item = item
    if reg_item.get("type") not in _STRING_TYPES or not isinstance(reg_item.get("data"), str):
        return None
    try:
        parsed = json.loads(reg_item["data"])
    except ValueError:
        return None
    if not isinstance(parsed, list):
        return None
    reg = RegRead(source.path, name, reg_item.get("type"), reg_item.get("data"), source.label)
    return [ListEntry(reg, parse_pattern_pair(entry)) for entry in parsed if isinstance(entry, str)]


def effective_list(view: ChromiumPolicy, policy: str) -> Effective:
    """A list policy from the highest mandatory source that sets it (lists are never recommended)."""
    result = Effective(policy)
    for source in view.sources:
        if source.level != "mandatory":
            continue
        node = view.nodes.get((source.path, policy))
        if exists(node):
            entries, ignored = _list_from_key(source, policy, node or {})
            result.ignored.extend(ignored)
            result.entries, result.source, result.list_key = entries, source, f"{source.path}\\{policy}"
            result.value = [entry.pair.text for entry in entries]
            return result
        from_json = _list_from_json(source, policy, value(view.nodes.get((source.path, "")), policy))
        if from_json is not None:
            result.entries, result.source, result.list_key = from_json, source, source.path
            result.value = [entry.pair.text for entry in from_json]
            return result
    return result


def auth_allowlist(view: ChromiumPolicy) -> Effective:
    current = effective_scalar(view, "AuthServerAllowlist", "str")
    if current.is_set:
        return current
    legacy = effective_scalar(view, "AuthServerWhitelist", "str")
    legacy.ignored = current.ignored + legacy.ignored
    return legacy if legacy.is_set else current


def auth_rules(allowlist: Effective) -> list[AuthRule]:
    return parse_auth_allowlist(allowlist.value or "") if allowlist.is_set else []


def auth_covers_localhost(allowlist: Effective) -> bool:
    return auth_covers_localhost_any_port(auth_rules(allowlist))


def auth_localhost_rules(allowlist: Effective) -> list[AuthRule]:
    """Rules that would on their own let credentials go to localhost on some port."""
    return [rule for rule in auth_rules(allowlist) if auth_rule_matches_localhost(rule)]


# ---------------------------------------------------------------------------------------------
# Cookies for http://localhost

_SETTINGS = {"CookiesAllowedForUrls": "allow", "CookiesSessionOnlyForUrls": "session_only",
             "CookiesBlockedForUrls": "block"}
#: Chromium's policy provider reads allowed, then blocked, then session-only: with identical
#: patterns the later list overwrites the earlier.
_READ_ORDER = {"CookiesAllowedForUrls": 0, "CookiesBlockedForUrls": 1, "CookiesSessionOnlyForUrls": 2}


@dataclass(frozen=True)
class Rule:
    policy: str
    entry: ListEntry

    @property
    def setting(self) -> str:
        return _SETTINGS[self.policy]


@dataclass
class LocalhostCookies:
    """How cookie rules treat ``http://localhost:<port>`` under the NHS sites."""

    covered: bool  # no port or site is left without an explicit allowing rule (ports where a block wins aside)
    allowing: list[Rule]  # the rules that win with "allow" or "session only" somewhere
    blocking: list[Rule]  # the block rules that win for some port and site (LOCALHOST_COOKIES_BLOCKED)
    uncovered_ports: list[str]  # e.g. "43485", or "any port not named in a pattern": no rule, or a non-explicit one
    covered_ports: list[str] = field(default_factory=list)  # ports where an allowing rule wins


def _rules(lists: dict[str, Effective]) -> list[Rule]:
    return [Rule(policy, entry) for policy, effective in lists.items() for entry in effective.entries
            if entry.pair.valid]


def localhost_cookies(lists: dict[str, Effective], sites: tuple[str, ...] = NHS_TOP_LEVEL_SITES) -> LocalhostCookies:
    rules = _rules(lists)
    named = localhost_ports_named([rule.entry.pair.primary for rule in rules])
    ports = representative_ports(named)
    tops = [parse_url(site) for site in sites]
    allowing: list[Rule] = []
    blocking: list[Rule] = []
    uncovered: list[str] = []
    covered: list[str] = []
    for port in ports:
        url = localhost_url(port)
        port_ok, port_allowed = True, True
        for top in tops:
            matching = [rule for rule in rules if pair_applies(rule.entry.pair, url, top)]
            winner = min(matching, key=lambda r: (pair_precedence_key(r.entry.pair), -_READ_ORDER[r.policy]),
                         default=None)
            if winner is None or (winner.setting != "block" and not is_explicit(winner.entry.pair)):
                port_ok = False
            if winner is None or winner.setting == "block" or not is_explicit(winner.entry.pair):
                port_allowed = False
            if winner is not None and winner.setting == "block" and winner not in blocking:
                blocking.append(winner)
            if winner is not None and winner.setting != "block" and is_explicit(winner.entry.pair) \
                    and winner not in allowing:
                allowing.append(winner)
        label = str(port) if port in named else "any port not named in a pattern"
        if not port_ok:
            uncovered.append(label)
        elif port_allowed:
            covered.append(label)
    return LocalhostCookies(not uncovered, allowing, blocking, uncovered, covered)


@dataclass
class ChromiumCookies:
    block_third_party: Effective
    default_setting: Effective
    lists: dict[str, Effective]
    localhost: LocalhostCookies


def chromium_cookies(view: ChromiumPolicy) -> ChromiumCookies:
    """The cookie policies of ``view``; worked out once per view of the facts being judged (three
    checks ask for each view)."""
    kept = _READ["cookies"].get(id(view))
    if kept is not None and kept[0] is view:
        return kept[1]
    cookies = _chromium_cookies(view)
    _READ["cookies"][id(view)] = (view, cookies)
    return cookies


def _chromium_cookies(view: ChromiumPolicy) -> ChromiumCookies:
    lists = {policy: effective_list(view, policy) for policy in COOKIE_LISTS}
    return ChromiumCookies(effective_scalar(view, "BlockThirdPartyCookies", "bool"),
                           effective_scalar(view, "DefaultCookiesSetting", "int"),
                           lists, localhost_cookies(lists))


# ---------------------------------------------------------------------------------------------
# Firefox

@dataclass(frozen=True)
class FirefoxEntry:
    value: RegRead
    origin: FirefoxOrigin


@dataclass
class FirefoxCookies:
    present: bool  # some Cookies policy is set for this view
    behavior: RegRead | None  # the value that decides the cookie behaviour (Behavior or a legacy value)
    rejects: str | None  # "foreign" | "all" | None
    allow: list[FirefoxEntry]
    block: list[FirefoxEntry]
    errors: list[str]

    @property
    def covering(self) -> list[FirefoxEntry]:
        """Allow entries that cover ``http://localhost`` on one port each (an origin names one
        port, the scheme's default when none is written): never every port."""
        return [entry for entry in self.allow if firefox_localhost_port(entry.origin) is not None]

    @property
    def covered_ports(self) -> list[int]:
        return sorted({port for entry in self.allow if (port := firefox_localhost_port(entry.origin)) is not None})

    @property
    def blocking(self) -> list[FirefoxEntry]:
        return [entry for entry in self.block if firefox_matches_localhost_some_port(entry.origin)]


def _firefox_list(hive: Hive, node: Node | None, name: str) -> list[FirefoxEntry] | None:
    child = subkey(node, name)
    if child is None:
        return None
    path = f"{hive.path(FIREFOX_COOKIES_KEY)}\\{name}"
    entries = []
    for value_name, item in sorted((child.get("values") or {}).items()):
        if isinstance(item, dict) and item.get("type") in _STRING_TYPES and isinstance(item.get("data"), str):
            reg = RegRead(path, value_name, item["type"], item["data"], f"{hive.kind} policy")
            entries.append(FirefoxEntry(reg, parse_firefox_origin(item["data"])))
    return entries


def _firefox_value(hive: Hive, node: Node | None, name: str) -> RegRead | None:
    found = value(node, name)
    if found is None:
        return None
    stored, item = found
    return RegRead(hive.path(FIREFOX_COOKIES_KEY), stored, item.get("type"), item.get("data"), f"{hive.kind} policy")


def _firefox_rejects(behavior: RegRead | None, default: RegRead | None,
                     third_party: RegRead | None) -> tuple[RegRead | None, str | None]:
    if behavior is not None:
        text = str(behavior.data).strip().casefold()
        return behavior, {"reject-foreign": "foreign", "reject": "all"}.get(text)
    if default is not None and default.data in (0, "0", "false"):
        return default, "all"
    if third_party is not None and str(third_party.data).strip().casefold() == "never":
        return third_party, "foreign"
    return None, None


def firefox_cookies(facts: Facts, user: dict[str, t.Any] | None) -> FirefoxCookies:
    """Firefox's Cookies policy for ``user`` (None: the machine alone): per field, the machine's
    value if it sets one, else the user's."""
    hives = [Hive("machine")] + ([Hive("user", user)] if user is not None else [])
    nodes, errors = [], []
    for hive in hives:
        node, error = hive.node(facts, FIREFOX_COOKIES_KEY)
        if error:
            errors.append(error)
        nodes.append((hive, node))

    def first_value(name: str) -> RegRead | None:
        return next((found for hive, node in nodes if (found := _firefox_value(hive, node, name)) is not None), None)

    def first_list(name: str) -> list[FirefoxEntry]:
        return next((found for hive, node in nodes if (found := _firefox_list(hive, node, name)) is not None), [])

    decider, rejects = _firefox_rejects(first_value("Behavior"), first_value("Default"),
                                        first_value("AcceptThirdParty"))
    present = any(exists(node) for _hive, node in nodes)
    allow = first_list("Allow") + first_list("AllowSession")
    return FirefoxCookies(present, decider, rejects, allow, first_list("Block"), errors)
