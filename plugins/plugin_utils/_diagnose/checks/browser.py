# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Browser-policy checks of diagnose (fault 1 cookies and Local Network Access; fault 4 AuthServerAllowlist).

Each check runs for Chrome and Edge (and Firefox for the cookie checks, only where a Firefox
Cookies policy exists), for the machine and for every user (``models.policy.judge_scopes``):
a problem the machine's policy decides for everybody is reported once with scope
``{kind: machine}``; one that a user's own hive decides (or that does not hit every user) is
reported per user. Effective values follow ``models.browser_policy``; URL matching ``models.url_patterns``.
A value set by domain Group Policy (``facts["gpo"]``) gives ``managed_by_gpo: true`` and the
policy to change in the remedy.

The Local Network Access checks (``LOCALHOST_ACCESS_*``) run for Chrome and Edge where the
browser is found (``models.local_network.browser_version``) in a version that enforces Local Network
Access, with the policies that version reads (``models.local_network``).

The checks apply where NHS Credential Management is installed, or wanted (option
``cm_required``).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ID, make_finding
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import (
    CheckResult,
    Facts,
    Options,
    evaluator,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.browser_policy import (
    ChromiumCookies,
    ChromiumPolicy,
    Effective,
    FirefoxCookies,
    ListEntry,
    Rule,
    auth_allowlist,
    auth_covers_localhost,
    auth_localhost_rules,
    auth_rules,
    chromium_cookies,
    chromium_policy,
    firefox_cookies,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.gpo import gpo_action, gpo_owner
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.local_network import (
    BY_NAME,
    ENFORCED_FROM,
    LNA_BLOCKED,
    LNA_POLICIES,
    LOOPBACK_ALLOWED,
    BrowserVersion,
    LoopbackAccess,
    MalformedSettings,
    Match,
    SiteDecision,
    StoredAnswer,
    allow_policy_for,
    browser_version,
    loopback_access,
    not_honoured,
    site_settings_url,
    stored_answers,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    BROWSER_NAMES,
    CHROMIUM_KEYS,
    ErrorsOf,
    Judge,
    Verdict,
    cm_applies,
    hive_unavailable,
    report_scopes,
    user_entry_scope,
    user_label,
    users,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.url_patterns import (
    covers_localhost_any_port,
    firefox_localhost_port,
    matches_localhost_some_port,
    pair_applies,
    parse_url,
)

CHROMIUM = tuple(CHROMIUM_KEYS)
LOCALHOST_ALLOW_ENTRY = "[*.]localhost"


def scoped_result(facts: Facts, check_id: str, browser: str | None, judge: Judge,
                  errors_of: ErrorsOf) -> CheckResult:
    """The result of one check (and browser) at machine or user scope (``models.policy.report_scopes``)."""
    findings, unknown = report_scopes(facts, check_id, browser, judge, errors_of)
    return CheckResult(findings=findings, unknown=unknown)


def _merge(*results: CheckResult) -> CheckResult:
    merged = CheckResult()
    for result in results:
        merged.findings.extend(result.findings)
        merged.unknown.extend(result.unknown)
    return merged


# ---------------------------------------------------------------------------------------------
# Evidence

def _pattern_note(pattern: str) -> str:
    if covers_localhost_any_port(pattern):
        return "covers http://localhost on every port"
    if matches_localhost_some_port(pattern):
        return "matches http://localhost on one port only"
    return "does not match http://localhost"


def _entry_note(entry: ListEntry) -> str:
    pair = entry.pair
    if not pair.valid:
        return f"invalid pattern, matches nothing: {pair.primary.error or pair.error}"
    note = _pattern_note(pair.primary.text)
    if pair.secondary is not None:
        note += f"; only under top-level sites matching {pair.secondary.text}"
    if pair.primary.matches_all_hosts:
        note += "; matches every host, so it does not lift third-party blocking"
    return note


def _list_evidence(view: ChromiumPolicy, effective: Effective) -> list[dict[str, t.Any]]:
    """Every entry of the effective list (with what it matches), what was ignored, or where the
    list was looked for when no source sets it."""
    items: list[dict[str, t.Any]] = []
    if effective.is_set:
        items += [entry.value.evidence(note=_entry_note(entry)) for entry in effective.entries]
        if not effective.entries:
            items.append({"path": effective.list_key, "exists": True, "entries": 0, "source": effective.source.label
                          if effective.source else None})
    else:
        items += [{"path": f"{source.path}\\{effective.policy}", "exists": False, "source": source.label}
                  for source in view.sources if source.level == "mandatory"]
    items += effective.ignored
    items += _hidden(view, effective)
    return items


def _hidden(view: ChromiumPolicy, effective: Effective) -> list[dict[str, t.Any]]:
    """Entries of lower sources hidden by the winning source (a list comes whole from one source)."""
    if effective.source is None:
        return []
    items = []
    below = False
    for source in view.sources:
        if source.level != "mandatory":
            continue
        if source == effective.source:
            below = True
            continue
        if not below:
            continue
        node = view.nodes.get((source.path, effective.policy)) or {}
        for name, item in sorted((node.get("values") or {}).items()):
            if isinstance(item, dict):
                items.append({"path": f"{source.path}\\{effective.policy}", "name": name, "type": item.get("type"),
                              "data": item.get("data"), "source": source.label,
                              "note": f"ignored: the {effective.source.label} list wins whole (lists from "
                                      "machine and user policy are never merged)"})
    return items


def _cookie_lists_evidence(view: ChromiumPolicy, cookies: ChromiumCookies) -> list[dict[str, t.Any]]:
    items = _list_evidence(view, cookies.lists["CookiesAllowedForUrls"])
    for policy in ("CookiesSessionOnlyForUrls", "CookiesBlockedForUrls"):
        effective = cookies.lists[policy]
        if effective.is_set:
            items += _list_evidence(view, effective)
    return items


def _lists_from_user(cookies: ChromiumCookies) -> bool:
    return any(effective.from_user for effective in cookies.lists.values())


def _list_keys(cookies: ChromiumCookies) -> list[tuple[str, str]]:
    return [(entry.value.path, entry.value.name) for effective in cookies.lists.values() for entry in effective.entries]


def _where(effective: Effective) -> str:
    return f"{effective.source.label}, {effective.winner.path}" if effective.source and effective.winner else "unset"


# ---------------------------------------------------------------------------------------------
# Chrome and Edge

def _chromium_errors(facts: Facts, browser: str) -> t.Callable[[dict[str, t.Any] | None], list[str]]:
    def errors_of(user: dict[str, t.Any] | None) -> list[str]:
        view = chromium_policy(facts, browser, user)
        if user is None:
            return view.errors
        root = f"HKU\\{user.get('sid')}"
        return [error for error in view.errors if root.casefold() in error.casefold()]
    return errors_of


def _uncovered_text(cookies: ChromiumCookies) -> str:
    covered = cookies.localhost.covered_ports
    if not covered:
        return "no allow-list entry covers http://localhost"
    return f"no allow-list entry covers http://localhost on every port (only on {', '.join(covered)})"


def _cookie_setting_verdict(name: str, view: ChromiumPolicy, cookies: ChromiumCookies, setting: Effective,
                            winner_evidence: dict[str, t.Any], blocks: str, value_text: str) -> Verdict:
    """The verdict on a cookie setting of browser ``name`` that blocks localhost's cookies (no
    allow-list entry covers localhost); the fix is the same allow-list entry."""
    return Verdict(
        summary=f"{name} policy {blocks} and {_uncovered_text(cookies)} ({value_text} from {_where(setting)})",
        evidence=[winner_evidence, *setting.ignored, *_cookie_lists_evidence(view, cookies)],
        action=f"Add {LOCALHOST_ALLOW_ENTRY} to {name}'s CookiesAllowedForUrls "
               f"({_allow_target(view, cookies)}), then restart {name}",
        deciding=[(setting.winner.path, setting.winner.name), *_list_keys(cookies)],
        user_decided=setting.from_user or _lists_from_user(cookies))


def _third_party_judge(facts: Facts, browser: str) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    name = BROWSER_NAMES[browser]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        view = chromium_policy(facts, browser, user)
        cookies = chromium_cookies(view)
        block = cookies.block_third_party
        if block.value is not True or cookies.localhost.covered or block.winner is None:
            return None
        level = " (recommended: the user may have changed it)" if block.source and block.source.level == \
            "recommended" else ""
        return _cookie_setting_verdict(name, view, cookies, block, block.winner.evidence(),
                                       f"blocks third-party cookies{level}", "BlockThirdPartyCookies=1")
    return judge


def _allow_target(view: ChromiumPolicy, cookies: ChromiumCookies) -> str:
    allowed = cookies.lists["CookiesAllowedForUrls"]
    if allowed.is_set and allowed.list_key:
        return allowed.list_key
    return f"{view.sources[0].path}\\CookiesAllowedForUrls"


def _default_judge(facts: Facts, browser: str) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    name = BROWSER_NAMES[browser]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        view = chromium_policy(facts, browser, user)
        cookies = chromium_cookies(view)
        default = cookies.default_setting
        if default.value != 2 or cookies.localhost.covered or default.winner is None:
            return None
        return _cookie_setting_verdict(name, view, cookies, default,
                                       default.winner.evidence(note="2 = block all cookies"),
                                       "blocks all cookies by default", "DefaultCookiesSetting=2")
    return judge


def _blocked_judge(facts: Facts, browser: str) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    name = BROWSER_NAMES[browser]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        view = chromium_policy(facts, browser, user)
        cookies = chromium_cookies(view)
        blocking: list[Rule] = cookies.localhost.blocking
        if not blocking:
            return None
        entries = ", ".join(f"'{rule.entry.pair.text}' ({rule.entry.value.path} value {rule.entry.value.name})"
                            for rule in blocking)
        evidence = [rule.entry.value.evidence(note=_entry_note(rule.entry) + "; wins over every allow entry")
                    for rule in blocking]
        evidence += [item for policy in ("CookiesAllowedForUrls", "CookiesSessionOnlyForUrls")
                     if cookies.lists[policy].is_set for item in _list_evidence(view, cookies.lists[policy])]
        return Verdict(
            summary=f"{name} policy blocks cookies for http://localhost: CookiesBlockedForUrls {entries}",
            evidence=evidence,
            action=f"Remove {entries} from {name}'s CookiesBlockedForUrls (only when the play opts in), "
                   f"then restart {name}",
            deciding=[(rule.entry.value.path, rule.entry.value.name) for rule in blocking],
            user_decided=any(rule.entry.value.source.startswith("user") for rule in blocking)
            or _lists_from_user(cookies))
    return judge


def _auth_judge(facts: Facts, browser: str) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    name = BROWSER_NAMES[browser]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        view = chromium_policy(facts, browser, user)
        allowlist = auth_allowlist(view)
        if not allowlist.is_set or allowlist.winner is None or auth_covers_localhost(allowlist):
            return None
        partial = [rule.text for rule in auth_localhost_rules(allowlist)]
        invalid = [f"{rule.text} ({rule.error})" for rule in auth_rules(allowlist) if rule.kind == "invalid"]
        note = "no entry matches http://localhost on every port"
        if partial:
            note += f"; only some ports: {', '.join(partial)}"
        if invalid:
            note += f"; ignored as invalid: {', '.join(invalid)}"
        return Verdict(
            summary=f"{name}'s AuthServerAllowlist is set and no entry matches localhost, so {name} never sends "
                    f"Windows credentials to NHS Credential Management ({_where(allowlist)})",
            evidence=[allowlist.winner.evidence(note=note), *allowlist.ignored],
            action=f"Add localhost to {name}'s {allowlist.policy} ({allowlist.winner.path}), then restart {name}",
            deciding=[(allowlist.winner.path, allowlist.winner.name)],
            user_decided=allowlist.from_user)
    return judge


# ---------------------------------------------------------------------------------------------
# Firefox

def _firefox_errors(facts: Facts) -> t.Callable[[dict[str, t.Any] | None], list[str]]:
    def errors_of(user: dict[str, t.Any] | None) -> list[str]:
        errors = firefox_cookies(facts, user).errors
        if user is None:
            return errors
        root = f"HKU\\{user.get('sid')}"
        return [error for error in errors if root.casefold() in error.casefold()]
    return errors_of


def _firefox_list_evidence(cookies: FirefoxCookies) -> list[dict[str, t.Any]]:
    items = []
    for entry in cookies.allow + cookies.block:
        if not entry.origin.valid:
            note = f"invalid origin, ignored: {entry.origin.error}"
        elif (port := firefox_localhost_port(entry.origin)) is not None:
            note = (f"covers http://localhost on port {port} only (an origin names one port; "
                    f"{'none written means the default, ' if entry.origin.port is None else ''}"
                    "CM's port differs per session)")
        else:
            note = "does not match http://localhost"
        items.append(entry.value.evidence(note=note))
    return items


def _firefox_user_decided(cookies: FirefoxCookies) -> bool:
    values = [cookies.behavior] + [entry.value for entry in cookies.allow + cookies.block]
    return any(item is not None and item.source.startswith("user") for item in values)


def _firefox_reject_judge(facts: Facts, rejects: str) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    what = "third-party cookies" if rejects == "foreign" else "all cookies"

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        cookies = firefox_cookies(facts, user)
        if not cookies.present or cookies.rejects != rejects or cookies.behavior is None:
            return None
        decider = cookies.behavior
        ports = cookies.covered_ports
        covered = f"only on port {', '.join(map(str, ports))}" if ports else "on no port"
        return Verdict(
            summary=f"Firefox policy blocks {what} ({decider.name}={decider.data!r}, {decider.source}); its "
                    f"Cookies Allow list covers http://localhost {covered}, and an origin covers one port, so CM's "
                    "per-session port is not covered",
            evidence=[decider.evidence(), *_firefox_list_evidence(cookies)],
            action=f"Set Firefox's Cookies > Behavior to a value that does not block {what} "
                   "(reject-tracker, Firefox's default, or accept); an Allow entry (http://localhost:<port>) covers "
                   "one port only, the NHS Port Service's five fixed ports can be listed but CM's own port differs "
                   "per session; then restart Firefox",
            deciding=[(decider.path, decider.name)],
            user_decided=_firefox_user_decided(cookies))
    return judge


def _firefox_blocked_judge(facts: Facts) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        cookies = firefox_cookies(facts, user)
        blocking = cookies.blocking
        if not cookies.present or not blocking:
            return None
        entries = ", ".join(f"'{entry.value.data}' ({entry.value.path} value {entry.value.name})"
                            for entry in blocking)
        return Verdict(
            summary=f"Firefox policy blocks cookies for http://localhost: Cookies Block {entries}",
            evidence=[entry.value.evidence(note="matches http://localhost") for entry in blocking],
            action=f"Remove {entries} from Firefox's Cookies > Block list (only when the play opts in), then "
                   "restart Firefox",
            deciding=[(entry.value.path, entry.value.name) for entry in blocking],
            user_decided=any(entry.value.source.startswith("user") for entry in blocking))
    return judge


# ---------------------------------------------------------------------------------------------
# Local Network Access (Chrome and Edge): the NHS sites' requests to localhost

LnaJudge = t.Callable[[Facts, str, BrowserVersion], t.Callable[[dict[str, t.Any] | None], Verdict | None]]


def _lna_errors(facts: Facts, browser: str, version: BrowserVersion) -> ErrorsOf:
    chromium = _chromium_errors(facts, browser)

    def errors_of(user: dict[str, t.Any] | None) -> list[str]:
        errors = chromium(user)
        return [*errors, version.error] if user is None and version.error else errors
    return errors_of


def _lna_access(facts: Facts, browser: str, version: BrowserVersion, user: dict[str, t.Any] | None
                ) -> tuple[ChromiumPolicy, LoopbackAccess] | None:
    """The view and its decisions, or None where Local Network Access is not in force."""
    if version.major is None or version.major < ENFORCED_FROM[browser]:
        return None
    view = chromium_policy(facts, browser, user)
    access = loopback_access(view, version.major)
    return None if access.opted_out else (view, access)


def _lna_entry_note(access: LoopbackAccess, policy: str, entry: ListEntry) -> str:
    if not entry.pair.valid:
        return f"invalid pattern, matches nothing: {entry.pair.primary.error or entry.pair.error}"
    sites = [d.site for d in access.sites
             if pair_applies(entry.pair, parse_url(d.site), parse_url(d.site))]
    note = f"matches {', '.join(sites)}" if sites else "matches no NHS site"
    reason = not_honoured(BY_NAME[policy], access.browser, access.major)
    if reason is not None:
        return f"{note}; ignored: {reason}"
    decides = [d.site for d in access.sites if d.decider is not None and d.decider.entry == entry]
    if decides:
        verb = "blocks" if BY_NAME[policy].setting == "block" else "allows"
        note += f"; decides for {', '.join(decides)}: {verb} {'its' if len(decides) == 1 else 'their'} requests " \
            "to localhost"
    return note


def _gpo_of(facts: Facts, path: str, name: str) -> dict[str, t.Any]:
    """``{"gpo": <display name>}`` when domain Group Policy writes the value, else nothing."""
    owner = gpo_owner(facts, path, name)
    return {"gpo": owner.get("gpo") or "a domain GPO"} if owner is not None else {}


def _lna_evidence(facts: Facts, view: ChromiumPolicy, access: LoopbackAccess, version: BrowserVersion
                  ) -> list[dict[str, t.Any]]:
    """The version, then every Local Network Access list (each entry with what it matches, whether
    the version applies it and the GPO that writes it), or where a list the version reads was
    looked for."""
    items = list(version.evidence)
    if access.opt_out.winner is not None:
        items.append(access.opt_out.winner.evidence(note="not 1: Local Network Access checks are in force"))
    for policy in LNA_POLICIES:
        effective = access.lists[policy.name]
        if effective.is_set:
            items += [entry.value.evidence(note=_lna_entry_note(access, policy.name, entry),
                                           **_gpo_of(facts, entry.value.path, entry.value.name))
                      for entry in effective.entries]
            if not effective.entries:
                items.append({"path": effective.list_key, "exists": True, "entries": 0,
                              "source": effective.source.label if effective.source else None})
            items += effective.ignored + _hidden(view, effective)
        elif not_honoured(policy, access.browser, access.major) is None:
            items += [{"path": f"{source.path}\\{policy.name}", "exists": False, "source": source.label}
                      for source in view.sources if source.level == "mandatory"]
    return items


def _lna_deciding(access: LoopbackAccess, target: str) -> list[tuple[str, str]]:
    """The values that decide (for the Group Policy lookup): matching entries and the target list's."""
    matches = [m for d in access.sites for m in ([d.decider] if d.decider else []) + d.ignored]
    values = [(m.entry.value.path, m.entry.value.name) for m in matches]
    values += [(e.value.path, e.value.name) for e in access.lists[target].entries]
    return list(dict.fromkeys(values))


def _lna_user_decided(access: LoopbackAccess) -> bool:
    return access.opt_out.from_user or any(effective.from_user for effective in access.lists.values())


def _target_key(view: ChromiumPolicy, access: LoopbackAccess, target: str) -> str:
    effective = access.lists[target]
    return effective.list_key if effective.is_set and effective.list_key else f"{view.sources[0].path}\\{target}"


def _sites(decisions: list[SiteDecision]) -> str:
    return ", ".join(decision.site for decision in decisions)


def _add_action(name: str, view: ChromiumPolicy, access: LoopbackAccess, sites: str) -> str:
    target = allow_policy_for(access.browser, access.major)
    return f"Add {sites} to {name}'s {target} ({_target_key(view, access, target)}), then restart {name}"


def _where_entry(match: Match) -> str:
    value = match.entry.value
    return f"{match.policy} '{match.entry.pair.text}' ({value.source}, {value.path} value {value.name})"


def _lna_blocked_judge(facts: Facts, browser: str, version: BrowserVersion
                       ) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    name = BROWSER_NAMES[browser]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        found = _lna_access(facts, browser, version, user)
        if found is None:
            return None
        view, access = found
        blocked = access.with_setting("block")
        if not blocked:
            return None
        matches = list({(d.decider.entry.value.path, d.decider.entry.value.name): d.decider
                        for d in blocked if d.decider is not None}.values())
        entries = "; ".join(_where_entry(match) for match in matches)
        outranked = all(match.policy == LNA_BLOCKED for match in matches) and \
            allow_policy_for(browser, access.major) == LOOPBACK_ALLOWED
        if outranked:
            action = (_add_action(name, view, access, _sites(blocked))
                      + f" ({LOOPBACK_ALLOWED} outranks {LNA_BLOCKED})")
        else:
            action = (f"Remove {entries} (no allow list {name} {access.major} reads outranks it: a decision for "
                      f"the trust), then restart {name}")
        return Verdict(
            summary=f"{name} {access.major} blocks the requests of {_sites(blocked)} to NHS Credential Management "
                    f"on localhost (Local Network Access): {entries}",
            evidence=_lna_evidence(facts, view, access, version),
            action=action,
            deciding=_lna_deciding(access, allow_policy_for(browser, access.major)),
            user_decided=_lna_user_decided(access))
    return judge


def _lna_ask_judge(facts: Facts, browser: str, version: BrowserVersion, ignored: bool
                   ) -> t.Callable[[dict[str, t.Any] | None], Verdict | None]:
    """The user is asked for some NHS site: with (``ignored``) or without an allow entry the
    version does not apply to localhost."""
    name = BROWSER_NAMES[browser]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        found = _lna_access(facts, browser, version, user)
        if found is None:
            return None
        view, access = found
        asked = [d for d in access.with_setting("ask") if bool(d.ignored) == ignored]
        if not asked:
            return None
        if ignored:
            reasons = "; ".join(dict.fromkeys(match.reason or "" for d in asked for match in d.ignored))
            summary = (f"{name} {access.major} does not apply the policy that allows {_sites(asked)} to reach NHS "
                       f"Credential Management on localhost ({reasons}), so each user is asked (Local Network "
                       "Access)")
        else:
            summary = (f"No policy {name} {access.major} reads allows {_sites(asked)} to reach NHS Credential "
                       "Management on localhost, so each user is asked (Local Network Access); a user who answers "
                       "Block gets 'NHS Credential Management cannot be found'")
        return Verdict(summary=summary, evidence=_lna_evidence(facts, view, access, version),
                       action=_add_action(name, view, access, _sites(asked)),
                       deciding=_lna_deciding(access, allow_policy_for(browser, access.major)),
                       user_decided=_lna_user_decided(access))
    return judge


def _lna_run(facts: Facts, options: Options, check_id: str, make_judge: LnaJudge) -> CheckResult:
    if not cm_applies(facts, options):
        return CheckResult()
    results = []
    for browser in CHROMIUM:
        version = browser_version(facts, browser)
        if version.major is None and version.error is None:
            continue  # not installed in its system-level folder, not running: nothing to check
        results.append(scoped_result(facts, check_id, browser, make_judge(facts, browser, version),
                                     _lna_errors(facts, browser, version)))
    return _merge(*results)


# ---------------------------------------------------------------------------------------------
# Local Network Access: the user's own answer, kept in a browser profile

def _profile_files(facts: Facts, browser: str, user: dict[str, t.Any]
                   ) -> tuple[list[dict[str, t.Any]], str | None]:
    """The Preferences files (read) of ``user``'s ``browser`` profiles, or why they are not known."""
    files = facts.get("browser_site_settings")
    if files is None:
        reason = (facts.get("read_errors") or {}).get("browser_site_settings") or "not read"
        return [], f"the browser profiles could not be read ({reason})"
    sid = str(user.get("sid") or "").upper()
    mine = [item for item in files if str(item.get("sid") or "").upper() == sid and item.get("browser") == browser]
    state = next((item for item in mine if item.get("profile") is None), None)
    if state is None:
        return [], "its profile folder was not read (no ProfileImagePath in ProfileList)"
    if state.get("error"):
        return [], f"{state.get('path')}: {state['error']}"
    return [item for item in mine if item.get("profile") is not None], None


def _user_blocked(facts: Facts, browser: str, version: BrowserVersion, user: dict[str, t.Any]
                  ) -> tuple[list[dict[str, t.Any]], list[str]]:
    """(findings, reasons unknown) for one user and browser: each profile that keeps Block for an
    NHS site no policy decides for."""
    name = BROWSER_NAMES[browser]
    found = _lna_access(facts, browser, version, user)
    if found is None:
        return [], []
    view, access = found
    asked = access.with_setting("ask")
    if not asked:
        return [], []  # a policy decides for every NHS site, whatever the user answered
    files, why = _profile_files(facts, browser, user)
    if why is not None:
        return [], [why]
    findings, reasons = [], []
    for item in files:
        if not item.get("exists"):
            continue
        if item.get("error"):
            reasons.append(f"profile {item.get('profile')!r}: {item.get('path')}: {item['error']}")
            continue
        try:
            answers: list[StoredAnswer] = [answer for decision in asked
                                           for answer in stored_answers(item.get("exceptions"), decision.site)]
        except MalformedSettings as exc:
            reasons.append(f"profile {item.get('profile')!r}: {item.get('path')}: {exc}")
            continue
        blocks = [answer for answer in answers if answer.setting == "block"]
        if not blocks:
            continue
        sites = ", ".join(dict.fromkeys(answer.site for answer in blocks))
        target = allow_policy_for(browser, access.major)
        pages = " or ".join(dict.fromkeys(site_settings_url(browser, answer.site) for answer in blocks))
        action = (f"{user_label(user)} opens {pages} in {name} profile '{item.get('profile')}' and sets Local network "
                  f"access to Allow (or resets the permission); or the trust adds {sites} to {name}'s {target} "
                  f"({_target_key(view, access, target)}), which overrides a user's Block, then restarts {name}. "
                  "The collection never edits a browser profile")
        managed, gpo_text = gpo_action(facts, _lna_deciding(access, target))
        stored = [answer.evidence(str(item.get("path")), item.get("modified")) for answer in blocks]
        evidence = list(version.evidence) + stored
        findings.append(make_finding(
            ID.LOCALHOST_ACCESS_USER_BLOCKED, {**user_entry_scope(user), "browser_profile": item.get("profile")},
            evidence, browser=browser, managed_by_gpo=managed, action=action + (f"; {gpo_text}" if gpo_text else ""),
            summary=f"{user_label(user)} blocked {sites} from reaching NHS Credential Management on localhost in "
                    f"{name} {access.major} (profile '{item.get('profile')}'): no policy decides, so the user's kept "
                    "answer does (Local Network Access)"))
    return findings, reasons


# ---------------------------------------------------------------------------------------------
# The evaluators

def _run(facts: Facts, options: Options, check_id: str,
         chromium_judge: t.Callable[[Facts, str], t.Callable[[dict[str, t.Any] | None], Verdict | None]],
         firefox_judge: t.Callable[[dict[str, t.Any] | None], Verdict | None] | None) -> CheckResult:
    if not cm_applies(facts, options):
        return CheckResult()
    results = [scoped_result(facts, check_id, browser, chromium_judge(facts, browser), _chromium_errors(facts, browser))
               for browser in CHROMIUM]
    if firefox_judge is not None:
        results.append(scoped_result(facts, check_id, "firefox", firefox_judge, _firefox_errors(facts)))
    return _merge(*results)


@evaluator(ID.THIRD_PARTY_COOKIES_BLOCKED)
def check_third_party_cookies_blocked(facts: Facts, options: Options) -> CheckResult:
    return _run(facts, options, ID.THIRD_PARTY_COOKIES_BLOCKED, _third_party_judge,
                _firefox_reject_judge(facts, "foreign"))


@evaluator(ID.COOKIES_BLOCKED_BY_DEFAULT)
def check_cookies_blocked_by_default(facts: Facts, options: Options) -> CheckResult:
    return _run(facts, options, ID.COOKIES_BLOCKED_BY_DEFAULT, _default_judge, _firefox_reject_judge(facts, "all"))


@evaluator(ID.LOCALHOST_COOKIES_BLOCKED)
def check_localhost_cookies_blocked(facts: Facts, options: Options) -> CheckResult:
    return _run(facts, options, ID.LOCALHOST_COOKIES_BLOCKED, _blocked_judge, _firefox_blocked_judge(facts))


@evaluator(ID.AUTH_ALLOWLIST_EXCLUDES_LOCALHOST)
def check_auth_allowlist_excludes_localhost(facts: Facts, options: Options) -> CheckResult:
    return _run(facts, options, ID.AUTH_ALLOWLIST_EXCLUDES_LOCALHOST, _auth_judge, None)


@evaluator(ID.LOCALHOST_ACCESS_BLOCKED)
def check_localhost_access_blocked(facts: Facts, options: Options) -> CheckResult:
    return _lna_run(facts, options, ID.LOCALHOST_ACCESS_BLOCKED, _lna_blocked_judge)


@evaluator(ID.LOCALHOST_ACCESS_NOT_ALLOWED)
def check_localhost_access_not_allowed(facts: Facts, options: Options) -> CheckResult:
    return _lna_run(facts, options, ID.LOCALHOST_ACCESS_NOT_ALLOWED,
                    lambda f, b, v: _lna_ask_judge(f, b, v, ignored=False))


@evaluator(ID.LOCALHOST_ACCESS_POLICY_NOT_HONOURED)
def check_localhost_access_policy_not_honoured(facts: Facts, options: Options) -> CheckResult:
    return _lna_run(facts, options, ID.LOCALHOST_ACCESS_POLICY_NOT_HONOURED,
                    lambda f, b, v: _lna_ask_judge(f, b, v, ignored=True))


@evaluator(ID.LOCALHOST_ACCESS_USER_BLOCKED)
def check_localhost_access_user_blocked(facts: Facts, options: Options) -> CheckResult:
    """Per user and browser profile; a profile that cannot be read is unknown, never healthy."""
    if not cm_applies(facts, options):
        return CheckResult()
    result = CheckResult()
    for browser in CHROMIUM:
        version = browser_version(facts, browser)
        prefix = f"{BROWSER_NAMES[browser]}: "
        if version.major is None:
            if version.error is not None:
                result.unknown.append({"check": ID.LOCALHOST_ACCESS_USER_BLOCKED, "reason": prefix + version.error})
            continue
        problems = _chromium_errors(facts, browser)(None)
        if problems:
            result.unknown.append({"check": ID.LOCALHOST_ACCESS_USER_BLOCKED,
                                   "reason": prefix + "; ".join(dict.fromkeys(problems))})
            continue
        for user in users(facts):
            why = hive_unavailable(user) or "; ".join(dict.fromkeys(_chromium_errors(facts, browser)(user))) or None
            if why is not None:
                result.unknown.append({"check": ID.LOCALHOST_ACCESS_USER_BLOCKED,
                                       "reason": f"{prefix}{user_label(user)}: {why}"})
                continue
            findings, reasons = _user_blocked(facts, browser, version, user)
            result.findings.extend(findings)
            result.unknown.extend({"check": ID.LOCALHOST_ACCESS_USER_BLOCKED,
                                   "reason": f"{prefix}{user_label(user)}: {reason}"} for reason in reasons)
    return result
