# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Estate history: pure functions over the runs a results store recorded (docs/history.md).

No database here: ``_store`` reads and writes the rows, these functions decide what they mean
(trend points, what is new or fixed since a host's last run, regressions), check the options
and keep the spool file's shape. Internal API of the nhs_cm.remediation collection: it may
change in any release.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

from __future__ import annotations

import datetime as _dt
import functools
import glob
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import CATALOGUE
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import PROBLEM_SEVERITIES

#: How many run groups ``report.json``'s ``trend`` shows at most (newest last).
TREND_RUNS = 30
#: How many of a host's results its ``timeline`` keeps (report.html draws them).
TIMELINE_POINTS = 10
#: Runs older than this many days are pruned by playbooks/store_retention.yml.
KEEP_DAYS_DEFAULT = 90
SPOOL_PREFIX = "nhs_cm-store-spool-"
SPOOL_VERSION = 1
FIXED_BY_REMEDIATION = "remediation"
FIXED_BY_HEALTHY = "seen healthy"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_URL_HELP = ("give a SQLite file path (for example ~/.local/share/nhs_cm/history.sqlite or sqlite:///path) "
             "or a postgresql://user@host:port/database URL")


class StoreError(Exception):
    """The store cannot be used; the message is one line and never holds a password."""


# ---------------------------------------------------------------------------------------------
# Store URLs

@dataclass(frozen=True)
class StoreUrl:
    """Where the store is: ``kind`` sqlite (``path``) or postgresql (``url``, password apart)."""

    kind: str
    path: str = ""
    url: str = ""
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """What messages and reports may show: never the password."""
        return self.path if self.kind == "sqlite" else mask_url(self.url)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (works on malformed URLs too)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, tail = rest.partition("/")
    if "@" not in netloc:
        return url
    userinfo, host = netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{slash}{tail}"


def hide(text: str, *secrets: str | None) -> str:
    """``text`` with every secret (and its URL-quoted form) replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
                text = text.replace(form, "***")
    return text


def parse_store_url(value: Any, password: str | None = None) -> StoreUrl:
    """Check the ``store`` option: a SQLite file (a path or ``sqlite:///path``) or a PostgreSQL URL.

    The password may be in the URL, in ``password`` (which wins), or in the ``PGPASSWORD``
    environment variable (read by the PostgreSQL client library itself).
    """
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"store must be text: {_URL_HELP}, not {value!r}")
    text = value.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not scheme:
        return StoreUrl("sqlite", path=os.path.abspath(os.path.expanduser(text)))
    if scheme == "sqlite":
        path = text.split("://", 1)[1]
        if not path.startswith("/") or path in ("/", "/:memory:"):
            raise StoreError(f"store {text!r} names no SQLite file: write sqlite:////absolute/path "
                             "(three slashes, then the path)")
        return StoreUrl("sqlite", path=os.path.abspath(os.path.expanduser(path[1:] if path.startswith("//") else path)))
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise StoreError(f"store {mask_url(text)!r} is not a store this collection can use: {_URL_HELP}")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise StoreError(f"store {mask_url(text)!r} is not a valid URL ({exc}): {_URL_HELP}") from None
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise StoreError(f"store {mask_url(text)!r} names no database: end the URL with /<database>, "
                         "for example postgresql://nhs_cm@db.example.nhs.uk:5432/nhs_cm")
    if not parts.hostname and "host=" not in parts.query:
        raise StoreError(f"store {mask_url(text)!r} names no server: {_URL_HELP}")
    user = urllib.parse.unquote(parts.username or "")
    secret = password if password else (urllib.parse.unquote(parts.password) if parts.password else None)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (urllib.parse.quote(user, safe="") + "@" if user else "") + host + (f":{port}" if port else "")
    clean = urllib.parse.urlunsplit(("postgresql", netloc, "/" + database, parts.query, ""))
    return StoreUrl("postgresql", url=clean, password=secret)


# ---------------------------------------------------------------------------------------------
# Runs

def utc(moment: _dt.datetime) -> _dt.datetime:
    """The time in UTC, aware (a naive time is taken as UTC, as the stores keep it)."""
    return moment.replace(tzinfo=_dt.UTC) if moment.tzinfo is None else moment.astimezone(_dt.UTC)


@functools.lru_cache(maxsize=4096)
def iso(moment: _dt.datetime | None) -> str | None:
    """ISO 8601 in UTC to the second, as in the report (``None`` stays ``None``); a run's time recurs on every host."""
    return None if moment is None else utc(moment).isoformat(timespec="seconds")


def parse_time_option(value: Any, name: str, end_of_day: bool = False) -> _dt.datetime:
    """A time option: ``YYYY-MM-DD`` (the start of that day, or its end) or an ISO 8601 time."""
    if isinstance(value, _dt.datetime):
        return utc(value)
    if isinstance(value, _dt.date):
        value = value.isoformat()
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.UTC)
            return day + _dt.timedelta(days=1) - _dt.timedelta(microseconds=1) if end_of_day else day
        return utc(_dt.datetime.fromisoformat(text))
    except ValueError:
        raise StoreError(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time such as "
                         f"2026-11-25T03:40:00+00:00, not {value!r}") from None


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise StoreError(f"{name} must be a whole number, not {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise StoreError(f"{name} must be a whole number, not {value!r}") from None


def group_key(playbook: str, run_id: str, awx_job_id: int | None, awx_workflow_job_id: int | None) -> str:
    """The run group a run belongs to: one point of the trend.

    The slices of an AWX sliced job are jobs of one workflow job (``awx_workflow_job_id``), so
    they make one group; an AWX job on its own is a group; any other run is its own group.
    """
    if awx_workflow_job_id is not None:
        return f"{playbook}:awx-workflow-{awx_workflow_job_id}"
    if awx_job_id is not None:
        return f"{playbook}:awx-job-{awx_job_id}"
    return f"{playbook}:{run_id}"


def run_info(given: Mapping[str, Any] | None, task_vars: Mapping[str, Any], now: _dt.datetime,
             new_id: str) -> dict[str, Any]:
    """The run a report records: from the ``run`` option, then AWX's job variables.

    ``given`` may hold ``id``, ``started``, ``playbook`` and ``slice``; AWX sets ``awx_job_id``
    (each slice its own) and ``awx_workflow_job_id`` (the sliced job, or the workflow).
    """
    given = dict(given or {})
    unknown = sorted(set(given) - {"id", "started", "playbook", "slice"})
    if unknown:
        raise StoreError(f"run.{unknown[0]} is not a run field: give id, started, playbook or slice")
    run_id = str(given.get("id") or new_id)
    if not _RUN_ID.match(run_id):
        raise StoreError(f"run.id must be 1 to 64 letters, digits, '.', '_', ':' or '-', not {run_id!r}")
    started = parse_time_option(given["started"], "run.started") if given.get("started") else now
    playbook = str(given.get("playbook") or "audit")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", playbook):
        raise StoreError(f"run.playbook must be a short lower-case name such as audit, not {playbook!r}")
    job = _optional_int(task_vars.get("awx_job_id") or task_vars.get("tower_job_id"), "awx_job_id")
    workflow = _optional_int(task_vars.get("awx_workflow_job_id") or task_vars.get("tower_workflow_job_id"),
                             "awx_workflow_job_id")
    return {
        "run_id": run_id, "started": started, "ended": now, "playbook": playbook,
        "check_mode": bool(task_vars.get("ansible_check_mode")), "awx_job_id": job,
        "awx_workflow_job_id": workflow, "awx_slice": _optional_int(given.get("slice"), "run.slice"),
        "grp": group_key(playbook, run_id, job, workflow),
    }


# ---------------------------------------------------------------------------------------------
# What a host's entry says, in the store's compact form

def problem_ids(entry: Mapping[str, Any]) -> list[str]:
    """Ids of the host's error and warning findings that are not waived, sorted, each once."""
    if entry.get("status") != "ok":
        return []
    return sorted({f["id"] for f in entry.get("findings") or [] if f.get("severity") in PROBLEM_SEVERITIES})


def since_last_run(previous: Iterable[str] | None, current: Iterable[str], last_run: _dt.datetime | None,
                   audited: bool = True) -> dict[str, Any]:
    """``{new, fixed, last_run}``: ids found now and not in the host's last audited result, and back.

    A host seen for the first time (or not audited now) has nothing new or fixed.
    """
    if previous is None or not audited:
        return {"new": [], "fixed": [], "last_run": iso(last_run)}
    before, now = set(previous), set(current)
    return {"new": sorted(now - before), "fixed": sorted(before - now), "last_run": iso(last_run)}


@dataclass(frozen=True)
class Point:
    """One audited result of a host: when, its problem ids, whether the run changed the host, which playbook."""

    time: _dt.datetime
    ids: frozenset[str]
    changed: bool = False
    playbook: str = "audit"


def regressions(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Problems back after being fixed: ids of the last point that an earlier point lacked after having them.

    ``points`` are one host's audited results, oldest first, the current one last. For each id
    of the current result: the latest earlier result without it is the gap; a result before the
    gap with it makes it a regression. ``fixed`` is when it first went (``fixed_by``: the run
    that changed the host, or seen healthy), ``back`` when it first came back.
    """
    if not points:
        return []
    found = []
    current = points[-1]
    for fid in sorted(current.ids):
        gap = next((i for i in range(len(points) - 2, -1, -1) if fid not in points[i].ids), None)
        if gap is None:
            continue
        last_seen = next((i for i in range(gap - 1, -1, -1) if fid in points[i].ids), None)
        if last_seen is None:
            continue
        fixed = points[last_seen + 1]
        found.append({"id": fid, "fixed": iso(fixed.time),
                      "fixed_by": FIXED_BY_REMEDIATION if fixed.changed else FIXED_BY_HEALTHY,
                      "back": iso(points[gap + 1].time)})
    return found


def host_history(points: Sequence[Point], current_ids: Iterable[str], audited: bool,
                 now: _dt.datetime, playbook: str = "audit") -> dict[str, Any]:
    """``since_last_run`` and ``regressed`` of one host: its earlier audited results (oldest first),
    then what it shows now (``current_ids``, at ``now``, from a run of ``playbook``).

    An audit compares with the host's last audit, so a remediation in between shows as fixed in
    the next audit; another run (a remediation's verify) compares with the host's last result.
    """
    comparable = [p for p in points if p.playbook == playbook] if playbook == "audit" else list(points)
    last = comparable[-1] if comparable else None
    current = Point(now, frozenset(current_ids), playbook=playbook)
    return {
        "since_last_run": since_last_run(last.ids if last else None, current.ids, last.time if last else None,
                                         audited),
        "regressed": regressions([*points, current]) if audited else [],
        "timeline": timeline([*points, current] if audited else list(points)),
    }


def timeline(points: Sequence[Point], size: int = TIMELINE_POINTS) -> list[dict[str, Any]]:
    """The host's last ``size`` audited results, oldest first: when, which playbook, faults and problem ids."""
    return [{"time": iso(p.time), "playbook": p.playbook, "faults": list(faults_of_ids(p.ids)),
             "problems": list(_sorted(p.ids))} for p in points[-size:]]


@functools.lru_cache(maxsize=4096)
def _sorted(ids: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(ids))


@functools.lru_cache(maxsize=4096)
def faults_of_ids(ids: frozenset[str]) -> tuple[int, ...]:
    """The e-RS faults of problem ids (their catalogue fault, for error findings); few sets recur on every host."""
    return tuple(sorted({CATALOGUE[i].fault for i in ids
                         if i in CATALOGUE and CATALOGUE[i].fault and CATALOGUE[i].severity == "error"}))


def trend_points(groups: Sequence[Mapping[str, Any]], per_fault: Iterable[tuple[str, int, int]],
                 per_finding: Iterable[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """The trend: per run group (oldest first) its time and hosts per fault and per finding id.

    ``groups`` rows: grp, time, playbook, check_mode, hosts (audited); ``per_fault`` rows
    (grp, fault, hosts) and ``per_finding`` rows (grp, finding id, hosts).
    """
    faults: dict[str, dict[str, int]] = {}
    for grp, fault, count in per_fault:
        faults.setdefault(grp, {})[str(fault)] = int(count)
    findings: dict[str, dict[str, int]] = {}
    for grp, fid, count in per_finding:
        findings.setdefault(grp, {})[fid] = int(count)
    points = []
    for group in sorted(groups, key=lambda g: (utc(g["time"]), g["grp"])):
        by_id = findings.get(group["grp"], {})
        points.append({
            "run": group["grp"], "time": iso(group["time"]), "playbook": group["playbook"],
            "check_mode": bool(group["check_mode"]), "hosts": int(group["hosts"]),
            "per_fault": {k: faults.get(group["grp"], {})[k] for k in sorted(faults.get(group["grp"], {}), key=int)},
            "per_finding": {k: by_id[k] for k in sorted(by_id, key=lambda i: (-by_id[i], i))},
        })
    return points


def add_history(report: dict[str, Any], trend: list[dict[str, Any]],
                per_host: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The report with ``trend`` and each host's ``since_last_run`` and ``regressed``."""
    report["trend"] = trend
    for name, entry in report["hosts"].items():
        found = per_host.get(name) or {"since_last_run": since_last_run(None, [], None), "regressed": []}
        entry["since_last_run"] = found["since_last_run"]
        entry["regressed"] = found["regressed"]
        entry["timeline"] = found.get("timeline", [])
    return report


def changes_since(report: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``{new: {id: [hosts]}, fixed: {...}, regressed: {...}}`` from a report with history."""
    out: dict[str, dict[str, list[str]]] = {"new": {}, "fixed": {}, "regressed": {}}
    for name in sorted(report["hosts"]):
        entry = report["hosts"][name]
        since = entry.get("since_last_run") or {}
        for kind in ("new", "fixed"):
            for fid in since.get(kind) or []:
                out[kind].setdefault(fid, []).append(name)
        for item in entry.get("regressed") or []:
            out["regressed"].setdefault(item["id"], []).append(name)
    return {kind: dict(sorted(ids.items())) for kind, ids in out.items()}


# ---------------------------------------------------------------------------------------------
# Which runs a question is about

SELECTION_KEYS = ("run", "awx_job", "since", "up_to", "days")


def selection(args: Mapping[str, Any], now: _dt.datetime) -> dict[str, Any]:
    """Check the selection options: one run group (``run``: latest or a run id/group), one AWX
    job with its slices (``awx_job``), or a time window (``since``/``up_to``, or the last ``days``)."""
    run, job = args.get("run"), _optional_int(args.get("awx_job"), "awx_job")
    window = {k: args.get(k) for k in ("since", "up_to", "days") if args.get(k) not in (None, "")}
    chosen = [name for name, value in (("run", run), ("awx_job", job)) if value not in (None, "")]
    if window:
        chosen.append("/".join(window))
    if len(chosen) > 1:
        raise StoreError(f"give one of run, awx_job or a time window (since, up_to, days), not {' and '.join(chosen)}")
    if job is not None:
        return {"kind": "awx_job", "awx_job": job}
    if window:
        days = _optional_int(window.get("days"), "days")
        if days is not None and days < 1:
            raise StoreError(f"days must be 1 or more, not {days}")
        if days is not None and "since" in window:
            raise StoreError("give since or days, not both")
        until = parse_time_option(window["up_to"], "up_to", end_of_day=True) if "up_to" in window else now
        since = (parse_time_option(window["since"], "since") if "since" in window
                 else until - _dt.timedelta(days=days) if days is not None else None)
        if since is not None and since > until:
            raise StoreError(f"since ({iso(since)}) is after up_to ({iso(until)})")
        return {"kind": "window", "since": since, "until": until}
    text = str(run or "latest").strip()
    if text != "latest" and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", text):
        raise StoreError(f"run must be latest, a run id or a run group (as in trend[].run), not {text!r}")
    return {"kind": "run", "run": text}


# ---------------------------------------------------------------------------------------------
# Spool: results kept beside the report when the store cannot be reached

def spool_path(directory: str, run_id: str) -> str:
    return os.path.join(directory, f"{SPOOL_PREFIX}{run_id}.json")


def spool_files(directory: str) -> list[str]:
    """Spool files waiting in ``directory``, oldest first."""
    found = glob.glob(os.path.join(glob.escape(directory), f"{SPOOL_PREFIX}*.json"))
    return sorted(found, key=lambda p: (os.path.getmtime(p), p))


def spool_document(run: Mapping[str, Any], hosts: Mapping[str, Any], checks: Iterable[str],
                   earlier: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a spool file holds: the run and its hosts' report entries (added to an earlier spool of the run)."""
    kept = dict((earlier or {}).get("hosts") or {})
    kept.update(hosts)
    plain_run = {k: (iso(v) if isinstance(v, _dt.datetime) else v) for k, v in run.items()}
    return {"spool": SPOOL_VERSION, "run": plain_run, "checks": sorted(set(checks)), "hosts": kept}


def read_spool(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run, hosts) from a spool file; a file that is not one is an error naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise StoreError(f"spool file {path} cannot be read: {exc}") from None
    if not isinstance(data, Mapping) or data.get("spool") != SPOOL_VERSION or not isinstance(data.get("run"), Mapping) \
            or not isinstance(data.get("hosts"), Mapping):
        raise StoreError(f"spool file {path} is not a spool file of this collection (spool: {SPOOL_VERSION})")
    run = dict(data["run"])
    for name in ("started", "ended"):
        if run.get(name):
            run[name] = parse_time_option(run[name], f"{path}: run.{name}")
    return run, dict(data["hosts"])
