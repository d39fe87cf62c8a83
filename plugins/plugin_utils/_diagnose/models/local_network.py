# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Local Network Access (LNA) in Chrome and Edge, for the NHS sites' requests to NHS Credential
Management on ``http://localhost``: which version is installed, which policies that version
honours, and what they decide for each site. Pure functions over the facts; no I/O. The facts
and their sources are in docs/browser-policy.md ("Local Network Access").

- From Chrome 142 and Edge 143 a public site's request to loopback is a Local Network Access
  request: the browser asks the user (the user's own answer is then kept), unless a policy
  decides for the requesting site.
- For a request to loopback the policies take precedence in this order (the vendors' pages):
  ``LoopbackNetworkBlockedForUrls`` > ``LoopbackNetworkAllowedForUrls`` >
  ``LocalNetworkAccessBlockedForUrls`` > ``LocalNetworkAccessAllowedForUrls``; the first policy
  with an entry matching the requesting site decides. The ``Loopback*`` pair is read from
  version 146, the ``LocalNetworkAccess*`` pair from Chrome 139 / Edge 140; an older browser
  ignores a policy it does not know.
- Two allow lists never apply to loopback from a version that enforces LNA and are read only to
  say so: ``LocalNetworkAllowedForUrls`` (local network endpoints, not loopback) and
  ``InsecurePrivateNetworkRequestsAllowedForUrls`` (Private Network Access, obsolete after 137).
- ``LocalNetworkAccessRestrictionsTemporaryOptOut`` = true turns the checks into warnings: no
  prompt and no block (Chrome 142+; Edge lists it, from the version that enforces LNA: inference).
- The lists are content-settings patterns of the *requesting* site (``url_patterns``), read as
  ``browser_policy.effective_list`` reads any list: mandatory only, the machine's list hides the
  user's whole.

The version is the file version of the browser's executable in its system-level install folder
(``facts["browser_files"]``), or, when none is installed there, the newest running process of
that browser; a browser found in neither place is not checked.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import ntpath
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import (
    NHS_TOP_LEVEL_SITES,
    ChromiumPolicy,
    Effective,
    ListEntry,
    effective_list,
    effective_scalar,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    BROWSER_NAMES,
    LNA_OPT_OUT,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    pair_applies,
    pair_precedence_key,
    parse_pattern_pair,
    parse_url,
)

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_DIGITS = re.compile(r"\d+")
_MAJOR_VERSION = re.compile(r"^\s*(\d+)\.\d+")

LOOPBACK_BLOCKED = "LoopbackNetworkBlockedForUrls"
LOOPBACK_ALLOWED = "LoopbackNetworkAllowedForUrls"
LNA_BLOCKED = "LocalNetworkAccessBlockedForUrls"
LNA_ALLOWED = "LocalNetworkAccessAllowedForUrls"
LOCAL_ALLOWED = "LocalNetworkAllowedForUrls"
PNA_ALLOWED = "InsecurePrivateNetworkRequestsAllowedForUrls"

#: The first version that asks (or blocks) when a public site calls localhost.
ENFORCED_FROM: dict[str, int] = {"chrome": 142, "edge": 143}
#: Executable names, for running processes.
EXE_NAMES: dict[str, str] = {"chrome": "chrome.exe", "edge": "msedge.exe"}
#: The NHS sites whose pages call CM (inference, as for cookies: e-RS and CIS2 Authentication).
SITES = NHS_TOP_LEVEL_SITES


@dataclass(frozen=True)
class ListPolicy:
    """One LNA list policy: its setting, whether it applies to requests to loopback, and the
    versions that read it (``until`` None: still read)."""

    name: str
    setting: str  # "allow" | "block"
    loopback: bool
    since: dict[str, int]
    until: dict[str, int] = field(default_factory=dict)


#: The loopback policies in precedence order, then the allow lists that never apply to loopback.
LNA_POLICIES: tuple[ListPolicy, ...] = (
    ListPolicy(LOOPBACK_BLOCKED, "block", True, {"chrome": 146, "edge": 146}),
    ListPolicy(LOOPBACK_ALLOWED, "allow", True, {"chrome": 146, "edge": 146}),
    ListPolicy(LNA_BLOCKED, "block", True, {"chrome": 139, "edge": 140}),
    ListPolicy(LNA_ALLOWED, "allow", True, {"chrome": 139, "edge": 140}),
    ListPolicy(LOCAL_ALLOWED, "allow", False, {"chrome": 146, "edge": 146}),
    ListPolicy(PNA_ALLOWED, "allow", True, {"chrome": 92, "edge": 92}, {"chrome": 137, "edge": 137}),
)
BY_NAME: dict[str, ListPolicy] = {policy.name: policy for policy in LNA_POLICIES}
#: Versions that read ``LocalNetworkAccessRestrictionsTemporaryOptOut`` (its announced removal is
#: not modelled: docs/browser-policy.md).
OPT_OUT_SINCE: dict[str, int] = {"chrome": 142, "edge": 143}


def not_honoured(policy: ListPolicy, browser: str, major: int) -> str | None:
    """Why ``browser`` ``major`` does not apply ``policy`` to a request to localhost, or None."""
    name = f"{BROWSER_NAMES[browser]} {major}"
    if not policy.loopback:
        return f"{policy.name} applies to local network endpoints, not to localhost"
    until = policy.until.get(browser)
    if until is not None and major > until:
        return f"{policy.name} is obsolete after {BROWSER_NAMES[browser]} {until}; {name} ignores it"
    since = policy.since[browser]
    if major < since:
        return f"{policy.name} is read from {BROWSER_NAMES[browser]} {since}; {name} ignores it"
    return None


def allow_policy_for(browser: str, major: int) -> str:
    """The allow list to add the NHS sites to: the loopback one where the browser reads it (it
    also outranks ``LocalNetworkAccessBlockedForUrls``), else ``LocalNetworkAccessAllowedForUrls``
    (still read, below the loopback pair, by later versions)."""
    return LOOPBACK_ALLOWED if major >= BY_NAME[LOOPBACK_ALLOWED].since[browser] else LNA_ALLOWED


# ---------------------------------------------------------------------------------------------
# The installed version

@dataclass
class BrowserVersion:
    browser: str
    version: str | None = None
    major: int | None = None
    evidence: list[dict[str, t.Any]] = field(default_factory=list)
    error: str | None = None  # why it could not be read (the check is then unknown)


def _major(text: t.Any) -> int | None:
    match = _MAJOR_VERSION.match(str(text or ""))
    return int(match.group(1)) if match else None


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in _DIGITS.findall(text))


def browser_version(facts: dict[str, t.Any], browser: str) -> BrowserVersion:
    """The version of ``browser`` that the checks go by (module docstring), with its evidence."""
    result = BrowserVersion(browser)
    files = facts.get("browser_files")
    if files is None:
        reason = (facts.get("read_errors") or {}).get("browser_files") or "not read"
        result.error = f"the browser's file version could not be read ({reason})"
        return result
    installed = [item for item in files if item.get("browser") == browser and item.get("exists")
                 and _major(item.get("version")) is not None]
    exe = EXE_NAMES[browser]
    running = [proc for proc in facts.get("processes") or [] if isinstance(proc, dict)
               and ntpath.basename(str(proc.get("image") or proc.get("name") or "")).casefold() == exe
               and _major(proc.get("version")) is not None]
    if installed:
        chosen = max(installed, key=lambda item: _version_key(item["version"]))
        result.version = chosen["version"]
        result.evidence.append({"path": chosen["path"], "version": chosen["version"],
                                "source": "file version of the installed browser"})
    elif running:
        chosen = max(running, key=lambda proc: _version_key(proc["version"]))
        result.version = chosen["version"]
        result.evidence.append({"path": chosen.get("image"), "version": chosen["version"],
                                "source": "file version of a running process (not in the system-level folder)"})
    else:
        return result
    result.major = _major(result.version)
    others = sorted({proc["version"] for proc in running if _major(proc["version"]) != result.major})
    for version in others:
        result.evidence.append({"process": exe, "version": version,
                                "note": "a process of another version runs until the browser restarts"})
    return result


# ---------------------------------------------------------------------------------------------
# What the policies decide for each NHS site

@dataclass(frozen=True)
class Match:
    """A list entry that matches an NHS site."""

    policy: str
    entry: ListEntry
    reason: str | None = None  # why the browser does not apply it (None: it does)

    @property
    def setting(self) -> str:
        return BY_NAME[self.policy].setting


@dataclass
class SiteDecision:
    site: str
    setting: str  # "block" | "allow" | "ask" (no policy decides: the user is asked)
    decider: Match | None = None
    ignored: list[Match] = field(default_factory=list)  # allow entries that match but do not apply


@dataclass
class LoopbackAccess:
    browser: str
    major: int
    lists: dict[str, Effective]
    opt_out: Effective
    sites: list[SiteDecision]

    @property
    def opted_out(self) -> bool:
        return self.opt_out.value is True and self.major >= OPT_OUT_SINCE[self.browser]

    def with_setting(self, setting: str) -> list[SiteDecision]:
        return [decision for decision in self.sites if decision.setting == setting]


def _matches(effective: Effective, site: str) -> list[ListEntry]:
    url = parse_url(site)
    return [entry for entry in effective.entries if entry.pair.valid and pair_applies(entry.pair, url, url)]


def decide(lists: dict[str, Effective], browser: str, major: int, site: str) -> SiteDecision:
    """What the lists decide for a request from ``site`` to localhost in ``browser`` ``major``."""
    decision = SiteDecision(site, "ask")
    for policy in LNA_POLICIES:
        effective = lists.get(policy.name)
        if effective is None:
            continue
        found = _matches(effective, site)
        if not found:
            continue
        reason = not_honoured(policy, browser, major)
        if reason is not None:
            if policy.setting == "allow":
                decision.ignored += [Match(policy.name, entry, reason) for entry in found]
            continue
        if decision.decider is None:
            decision.decider = Match(policy.name, found[0])
            decision.setting = policy.setting
    return decision


def loopback_access(view: ChromiumPolicy, major: int, sites: tuple[str, ...] = SITES) -> LoopbackAccess:
    """The LNA policies of one view (the machine alone, or a user) and their decision per site."""
    lists = {policy.name: effective_list(view, policy.name) for policy in LNA_POLICIES}
    opt_out = effective_scalar(view, LNA_OPT_OUT, "bool")
    decisions = [decide(lists, view.browser, major, site) for site in sites]
    return LoopbackAccess(view.browser, major, lists, opt_out, decisions)


def entry_note(match: Match, site: str) -> str:
    """What a matching entry does to ``site``'s requests to localhost."""
    if match.reason is not None:
        return f"matches {site}, but {match.reason}"
    verb = "blocks" if match.setting == "block" else "allows"
    return f"matches {site}: {verb} its requests to localhost ({match.policy})"


# ---------------------------------------------------------------------------------------------
# The user's own answer, kept in the browser profile (Preferences)

#: The types of ``reads.SITE_SETTING_TYPES`` that can hold the answer for a request to localhost
#: (``local_network`` is for other local network endpoints).
LOOPBACK_SETTING_TYPES = ("local_network_access", "loopback_network")
#: ContentSetting values (components/content_settings/core/common/content_settings.h).
SETTING_NAMES = {1: "allow", 2: "block", 3: "ask"}


class MalformedSettings(ValueError):
    """A Preferences subtree that is not what Chromium writes: the check is unknown."""


@dataclass(frozen=True)
class StoredAnswer:
    """The user's kept answer of one type for one NHS site: the most specific exception that matches."""

    type: str
    site: str
    pattern: str
    setting: str  # allow | block | ask | <the value, when not one of these>
    last_modified: str | None

    def evidence(self, path: str, modified: str | None) -> dict[str, t.Any]:
        return {"path": path, "modified": modified,
                "setting": f"profile.content_settings.exceptions.{self.type}[{self.pattern!r}]",
                "value": self.setting, "last_modified": self.last_modified,
                "note": f"matches {self.site}: the user's answer for its requests to localhost"}


def stored_answers(exceptions: t.Any, site: str) -> list[StoredAnswer]:
    """The user's answers for ``site`` in one Preferences' ``exceptions`` (type -> {pattern pair:
    {setting, last_modified}}), the most specific per type; raises ``MalformedSettings``."""
    if not isinstance(exceptions, dict):
        raise MalformedSettings("the exceptions were not read")
    url = parse_url(site)
    answers = []
    for kind in LOOPBACK_SETTING_TYPES:
        entries = exceptions.get(kind)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise MalformedSettings(f"profile.content_settings.exceptions.{kind} is not an object")
        matching = []
        for pattern, value in entries.items():
            pair = parse_pattern_pair(str(pattern))
            if not pair.valid or not pair_applies(pair, url, url):
                continue
            if not isinstance(value, dict) or isinstance(value.get("setting"), bool) \
                    or not isinstance(value.get("setting"), int):
                raise MalformedSettings(f"profile.content_settings.exceptions.{kind}[{pattern!r}] has no setting")
            matching.append((pair, value))
        if matching:
            pair, value = min(matching, key=lambda item: pair_precedence_key(item[0]))
            modified = value.get("last_modified") if isinstance(value.get("last_modified"), str) else None
            setting = SETTING_NAMES.get(value["setting"], str(value["setting"]))
            answers.append(StoredAnswer(kind, site, pair.text, setting, modified))
    return answers


def site_settings_url(browser: str, site: str) -> str:
    """The page of a site's settings (where the user changes the answer)."""
    return f"{'edge' if browser == 'edge' else 'chrome'}://settings/content/siteDetails?site={site}"
