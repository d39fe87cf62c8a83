# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Local intranet zone checks of diagnose (fault 4: the Windows Security dialog in e-RS).

Effective values follow ``models.zones`` (policy keys machine then user, ``Security_HKLM_only``, then
the user's own values; documented defaults for absent values). Each check is made for the
machine and for every user (``models.policy.judge_scopes``): when the machine's settings decide
it for everybody (a machine policy value, or HKLM under ``Security_HKLM_only``), it is reported
once with scope ``{kind: machine}``; otherwise once per user whose settings are wrong (a value
absent from a user's hive is that user's problem: Windows would read it there).
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import ID
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.checks.base import (
    CheckResult,
    Facts,
    Options,
    evaluator,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.policy import (
    Judge,
    Verdict,
    cm_applies,
    report_scopes,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.models.zones import (
    LOGON_AUTOMATIC,
    OUTSIDE_INTRANET,
    ZONE_NAMES,
    ZoneValue,
    hklm_only,
    localhost_mappings,
    logon_action,
    logon_text,
    zone_flag,
    zone_read_errors,
)


def _zone_result(facts: Facts, check_id: str, judge: Judge) -> CheckResult:
    """The result of one zone check at machine or user scope (``models.policy.report_scopes``)."""
    findings, unknown = report_scopes(facts, check_id, None, judge, lambda user: zone_read_errors(facts, user))
    return CheckResult(findings=findings, unknown=unknown)


#: check id -> (ZoneMap value, the value NHS requires, what it means in the Sites dialog)
FLAG_CHECKS: dict[str, tuple[str, int, str]] = {
    ID.INTRANET_AUTODETECT_ON: ("AutoDetect", 0, "Automatically detect intranet network"),
    ID.INTRANET_LOCAL_SITES_OFF: ("IntranetName", 1, "Include all local (intranet) sites not listed in other zones"),
    ID.INTRANET_PROXY_BYPASS_OFF: ("ProxyBypass", 1, "Include all sites that bypass the proxy server"),
    ID.INTRANET_UNC_OFF: ("UNCAsIntranet", 1, "Include all network paths (UNCs)"),
}


_WHERE = {"machine policy": "the machine policy", "user policy": "the user's policy",
          "user": "the user's own settings", "machine": "the machine's settings",
          "machine (Security_HKLM_only)": "the machine's settings (Security_HKLM_only)"}
_DEFAULT_MEANING = {"AutoDetect": "Windows then detects the intranet automatically",
                    "IntranetName": "not 1", "ProxyBypass": "not 1", "UNCAsIntranet": "not 1"}


def _target(setting: ZoneValue) -> str:
    """Where a fix belongs: the value that won, else where Windows reads it for this view."""
    if setting.winner is not None:
        return setting.winner.path
    return next((item["path"] for item in reversed(setting.evidence) if "assumed" in item), "the ZoneMap key")


def _machine_only_evidence(facts: Facts) -> list[dict[str, t.Any]]:
    flag = hklm_only(facts)
    return [flag.evidence(note="only the machine's zone settings apply")] if flag is not None else []


def _shown(value: int | None) -> str:
    return "absent" if value is None else str(value)


def _zone_verdict(facts: Facts, setting: ZoneValue, summary: str, action: str) -> Verdict:
    """The verdict on one zone setting that is wrong: decided by the value that won, if any."""
    return Verdict(
        summary=summary,
        evidence=[*_machine_only_evidence(facts), *setting.evidence],
        action=action,
        deciding=[(setting.winner.path, setting.winner.name)] if setting.winner else [],
        user_decided=setting.decided_by == "user")


def _flag_judge(facts: Facts, check_id: str) -> Judge:
    name, required, label = FLAG_CHECKS[check_id]

    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        setting = zone_flag(facts, user, name)
        if setting.value == required:
            return None
        state = "ticked" if name == "AutoDetect" else "unticked"
        if setting.default_used:
            shown = f"is absent ({_DEFAULT_MEANING[name]})"
        else:
            where = _WHERE.get(setting.winner.source, setting.winner.source) if setting.winner else "the registry"
            shown = f"= {_shown(setting.value)} in {where}"
        return _zone_verdict(
            facts, setting,
            summary=f"Local intranet Sites: '{label}' is {state} (ZoneMap {name} {shown}; NHS requires {required})",
            action=f"Set {name} to {required} (REG_DWORD) in {_target(setting)}")
    return judge


def _logon_judge(facts: Facts) -> Judge:
    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        setting = logon_action(facts, user)
        if setting.value in LOGON_AUTOMATIC:
            return None
        return _zone_verdict(
            facts, setting,
            summary=f"Local intranet zone Logon is {logon_text(setting.value)}, not automatic (Zones\\1 1A00)",
            action=f"Set 1A00 to 0x20000 (automatic logon only in Intranet zone) in {_target(setting)}")
    return judge


def _mapping_judge(facts: Facts) -> Judge:
    def judge(user: dict[str, t.Any] | None) -> Verdict | None:
        mappings = localhost_mappings(facts, user)
        outside = [m for m in mappings.effective if m.zone in OUTSIDE_INTRANET]
        if not outside:
            return None
        described = "; ".join(f"{m.host} -> zone {m.zone} ({ZONE_NAMES.get(m.zone)}) by {m.via}" for m in outside)
        evidence = [m.value.evidence(zone=m.zone, host=m.host, via=m.via) for m in mappings.effective]
        evidence += mappings.shadowed
        fixes = "; ".join(f"map {m.host} to zone 1 in {m.value.path} (value {m.value.name})" for m in outside)
        return Verdict(
            summary=f"{described}: outside the Local intranet zone, so the browser will not log on silently",
            evidence=[*_machine_only_evidence(facts), *evidence],
            action=f"Map localhost to zone 1 (Local intranet): {fixes}; then restart the browser (urlmon reads zone "
                   "mappings when it starts)",
            deciding=[(m.value.path, m.value.name) for m in outside],
            user_decided=any(m.decided_by == "user" for m in outside))
    return judge


def _check(facts: Facts, options: Options, check_id: str, judge: Judge) -> CheckResult:
    if not cm_applies(facts, options):
        return CheckResult()
    return _zone_result(facts, check_id, judge)


@evaluator(ID.INTRANET_AUTODETECT_ON)
def check_intranet_autodetect_on(facts: Facts, options: Options) -> CheckResult:
    return _check(facts, options, ID.INTRANET_AUTODETECT_ON, _flag_judge(facts, ID.INTRANET_AUTODETECT_ON))


@evaluator(ID.INTRANET_LOCAL_SITES_OFF)
def check_intranet_local_sites_off(facts: Facts, options: Options) -> CheckResult:
    return _check(facts, options, ID.INTRANET_LOCAL_SITES_OFF, _flag_judge(facts, ID.INTRANET_LOCAL_SITES_OFF))


@evaluator(ID.INTRANET_PROXY_BYPASS_OFF)
def check_intranet_proxy_bypass_off(facts: Facts, options: Options) -> CheckResult:
    return _check(facts, options, ID.INTRANET_PROXY_BYPASS_OFF, _flag_judge(facts, ID.INTRANET_PROXY_BYPASS_OFF))


@evaluator(ID.INTRANET_UNC_OFF)
def check_intranet_unc_off(facts: Facts, options: Options) -> CheckResult:
    return _check(facts, options, ID.INTRANET_UNC_OFF, _flag_judge(facts, ID.INTRANET_UNC_OFF))


@evaluator(ID.INTRANET_LOGON_NOT_AUTOMATIC)
def check_intranet_logon_not_automatic(facts: Facts, options: Options) -> CheckResult:
    return _check(facts, options, ID.INTRANET_LOGON_NOT_AUTOMATIC, _logon_judge(facts))


@evaluator(ID.LOCALHOST_MAPPED_OUTSIDE_INTRANET)
def check_localhost_mapped_outside_intranet(facts: Facts, options: Options) -> CheckResult:
    return _check(facts, options, ID.LOCALHOST_MAPPED_OUTSIDE_INTRANET, _mapping_judge(facts))
