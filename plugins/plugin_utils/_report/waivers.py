# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waivers: a trust accepts a finding on a host or group for a while, with a reason.

Inventory variables ``nhs_cm_waivers`` and ``nhs_cm_waivers__<anything>`` (lists, on a host or
a group; every such variable a host sees is used, so a group's list and a host's list add up)
hold entries ``{id, justification, approved_by, expires: YYYY-MM-DD}``. Pure functions: the
caller passes the variables and "today" (the controller's date, injectable for tests).

Internal API of the nhs_cm.remediation collection: it may change in any release.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import CATALOGUE

VARIABLE = "nhs_cm_waivers"
_VARIABLE_RE = re.compile(r"nhs_cm_waivers(__[A-Za-z0-9_]+)?")  # fullmatch: "$" would let a new line through
REQUIRED = ("id", "justification", "approved_by", "expires")
EXPIRED_POLICIES = ("error", "lapse")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fullmatch, ASCII digits only


def is_waiver_variable(name: str) -> bool:
    """True for ``nhs_cm_waivers`` and ``nhs_cm_waivers__<suffix>``."""
    return isinstance(name, str) and _VARIABLE_RE.fullmatch(name) is not None


def waiver_variables(names: Iterable[str]) -> list[str]:
    """The waiver variable names among ``names``, sorted (so the result does not depend on order)."""
    return sorted(name for name in names if is_waiver_variable(name))


def parse_today(value: Any, clock: _dt.date | None = None) -> _dt.date:
    """``value`` (YYYY-MM-DD or a date) or else ``clock`` or else the controller's local date."""
    if value in (None, ""):
        return clock or _dt.date.today()
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = str(value).strip()
    if not _DATE_RE.fullmatch(text):
        raise ValueError(f"today must be a date written YYYY-MM-DD, not {value!r}")
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"today must be a real date written YYYY-MM-DD, not {value!r}") from None


def _text_error(where: str, entry: Mapping[str, Any], name: str, what: str) -> str | None:
    if name not in entry or entry[name] is None:
        return f"{where}.{name} is missing: give {what}"
    value = entry[name]
    if not isinstance(value, str) or not value.strip():
        return f"{where}.{name} must be a non-empty text: {what}, not {value!r}"
    return None


def _expiry(where: str, value: Any) -> tuple[_dt.date | None, str | None]:
    if value is None:
        return None, f"{where}.expires is missing: give the last day the waiver applies, as YYYY-MM-DD"
    if isinstance(value, _dt.datetime):
        return value.date(), None
    if isinstance(value, _dt.date):
        return value, None
    text = str(value).strip()
    if not _DATE_RE.fullmatch(text):
        return None, f"{where}.expires must be a date written YYYY-MM-DD, not {value!r}"
    try:
        return _dt.date.fromisoformat(text), None
    except ValueError:
        return None, f"{where}.expires must be a real date written YYYY-MM-DD, not {value!r}"


def check_entry(where: str, entry: Any, today: _dt.date) -> tuple[dict[str, Any] | None, list[str], bool]:
    """(waiver in canonical form or None, errors, expired) for one entry of a waiver list.

    An expired waiver (``expires`` before ``today``) comes back in canonical form with
    ``expired=True``: it is well formed but no longer applies.
    """
    if not isinstance(entry, Mapping):
        return None, [f"{where} must be a mapping with the keys {', '.join(REQUIRED)}, not {entry!r}"], False
    errors = []
    unknown_keys = sorted(str(key) for key in entry if key not in REQUIRED)
    if unknown_keys:
        errors.append(f"{where} has unknown key(s) {', '.join(unknown_keys)}: allowed are {', '.join(REQUIRED)}")
    fid = entry.get("id")
    if fid is None:
        errors.append(f"{where}.id is missing: give a finding id of the catalogue, e.g. CM_NOT_INSTALLED")
    elif not isinstance(fid, str) or fid not in CATALOGUE:
        errors.append(f"{where}.id {fid!r} is not a finding id of the catalogue "
                      "(see docs/findings.md; ids are upper case, e.g. CM_NOT_INSTALLED)")
    for name, what in (("justification", "why the trust accepts this finding"),
                       ("approved_by", "who agreed the waiver")):
        error = _text_error(where, entry, name, what)
        if error:
            errors.append(error)
    expires, error = _expiry(where, entry.get("expires"))
    if error:
        errors.append(error)
    if errors or expires is None:
        return None, errors, False
    waiver = {"id": fid, "justification": entry["justification"].strip(),
              "approved_by": entry["approved_by"].strip(), "expires": expires.isoformat(), "source": where}
    return waiver, [], expires < today


def check_waivers(sources: Mapping[str, Any], today: _dt.date, expired: str = "error") -> dict[str, Any]:
    """Validate every waiver list of one host.

    ``sources`` maps a variable name to its value. Returns ``{waivers, expired, errors, today}``:
    ``waivers`` apply today, ``expired`` no longer apply (their findings come back), ``errors``
    name the variable, the entry and the field of every problem. With ``expired="error"`` an
    expired waiver is also an error; with ``"lapse"`` it only stops applying.
    """
    if expired not in EXPIRED_POLICIES:
        raise ValueError(f"expired must be one of {', '.join(EXPIRED_POLICIES)}, not {expired!r}")
    active: list[dict[str, Any]] = []
    lapsed: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in sorted(sources):
        value = sources[name]
        if value is None:
            continue
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            errors.append(f"{name} must be a list of waivers ({{id, justification, approved_by, expires}}), "
                          f"not {type(value).__name__}")
            continue
        for index, entry in enumerate(value):
            waiver, problems, is_expired = check_entry(f"{name}[{index}]", entry, today)
            errors.extend(problems)
            if waiver is None:
                continue
            if is_expired:
                lapsed.append(waiver)
                if expired == "error":
                    errors.append(f"{waiver['source']}.expires {waiver['expires']} is in the past (today is "
                                  f"{today.isoformat()}): the waiver of {waiver['id']} no longer applies; "
                                  "renew it with a new date or remove it")
            else:
                active.append(waiver)
    return {"waivers": active, "expired": lapsed, "errors": errors, "today": today.isoformat()}


def apply_waivers(findings: Iterable[Mapping[str, Any]],
                  waivers: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(findings still active, waived findings each with its ``waiver``), order kept.

    A waiver covers every finding with its id on the host (any user, session or browser). When
    several waivers name the same id, the one that lasts longest is shown.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for waiver in waivers:
        current = by_id.get(waiver["id"])
        if current is None or waiver["expires"] > current["expires"]:
            by_id[waiver["id"]] = waiver
    active: list[dict[str, Any]] = []
    waived: list[dict[str, Any]] = []
    for finding in findings:
        waiver = by_id.get(finding.get("id", ""))
        if waiver is None:
            active.append(dict(finding))
        else:
            waived.append(dict(finding, waiver=dict(waiver)))
    return active, waived
