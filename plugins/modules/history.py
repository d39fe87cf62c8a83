# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/history.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: history
short_description: Ask the NHS Credential Management results store about the estate's history
version_added: 0.1.0
description:
  - Reads the results store that M(nhs_cm.remediation.report) records every audit and
    remediation run in (a SQLite file or a PostgreSQL database; docs/history.md), and answers
    as data - the estate report of a run, an AWX job with all its slices, or a time window; the
    trend; what is new or fixed since each host's last run; which hosts regressed (a finding
    fixed by this collection or seen healthy, then back); one host's timeline; the runs.
  - With O(query=report) and O(dest), writes the estate report files (C(report.json),
    C(findings.csv), C(junit.xml), C(report.html)) - what C(playbooks/estate_report.yml) does.
  - O(query=prune) deletes the runs older than O(keep_days) with all their rows
    (C(playbooks/store_retention.yml)); in check mode it only counts them.
  - O(query=record_rollback) records the rollback the play just did (C(playbooks/rollback.yml)).
  - Runs on the controller only; no host is contacted.
author:
  - NHS CM remediation maintainers (!UNKNOWN)
options:
  store:
    description:
      - The results store - a SQLite file (a path, or V(sqlite:////absolute/path)) or a
        PostgreSQL URL (V(postgresql://user@host:port/database)). A password in the URL is never
        shown; prefer O(store_password) or C(PGPASSWORD).
    type: str
    required: true
  store_password:
    description:
      - The PostgreSQL password. Without it, the URL's password or C(PGPASSWORD) is used.
    type: str
  query:
    description:
      - V(report) - the estate report (per host its newest result in the selected runs, with the
        trend and each host's C(since_last_run) and C(regressed)); with O(dest) also its files.
      - V(runs) - the runs selected, oldest first.
      - V(trend) - per run (oldest first, up to 30, ending with the selection) hosts per fault and
        per finding id.
      - V(new), V(fixed) - per host, the finding ids new or fixed since its last run.
      - V(regressed) - per host, the findings back after being fixed; with a time window, only
        those back within it (for example O(days=7) - hosts regressed in the last 7 days).
      - V(host) - one host's timeline (O(host)).
      - V(rollbacks) - the rollbacks recorded (in the window, if one is given).
      - V(prune) - delete the runs started more than O(keep_days) days ago.
      - V(record_rollback) - record the results of M(nhs_cm.remediation.restore) registered in
        O(result_var) by the play's hosts.
    type: str
    choices: [report, runs, trend, new, fixed, regressed, host, rollbacks, prune, record_rollback]
    default: report
  run:
    description:
      - Selects one run - V(latest) (the default when nothing else is selected), a run id, or a
        run group as in C(trend[].run) of C(report.json) (all slices of one AWX sliced job).
    type: str
  awx_job:
    description:
      - Selects one AWX job - its runs, or for a sliced job (its workflow job id) the runs of all
        its slices.
    type: int
  since:
    description:
      - Start of a time window (V(YYYY-MM-DD) or an ISO 8601 time; UTC when no zone is given).
        Per host, its newest result of the runs started in the window counts.
    type: str
  up_to:
    description:
      - End of the time window (V(YYYY-MM-DD) - the end of that day - or an ISO 8601 time); default now.
    type: str
  days:
    description:
      - A window of the last O(days) days (ending at O(up_to)); instead of O(since).
    type: int
  hosts:
    description:
      - Only these hosts in the answer of O(query=report), V(new), V(fixed) and V(regressed);
        the hosts to record for O(query=record_rollback) (default every host of the play).
    type: list
    elements: str
  host:
    description:
      - The host of O(query=host).
    type: str
  dest:
    description:
      - With O(query=report) - directory to write the report files into; created if missing.
    type: path
  formats:
    description:
      - Which report files to write, as for M(nhs_cm.remediation.report).
    type: list
    elements: str
    choices: [json, csv, junit, html]
    default: [json, csv, junit, html]
  keep_days:
    description:
      - With O(query=prune) - keep the runs started in the last O(keep_days) days.
    type: int
    default: 90
  result_var:
    description:
      - With O(query=record_rollback) - the variable each host registered its
        M(nhs_cm.remediation.restore) result in.
    type: str
    default: nhs_cm_restore
attributes:
  check_mode:
    support: full
    description:
      - Reads and writes report files as usual; O(query=prune) only counts what it would delete,
        and O(query=record_rollback) records nothing.
extends_documentation_fragment:
  - nhs_cm.remediation.controller
seealso:
  - module: nhs_cm.remediation.report
  - module: nhs_cm.remediation.report_merge
notes:
  - Give at most one selection - O(run), O(awx_job), or a window (O(since), O(up_to), O(days)).
    A selection that matches no recorded run is an error.
  - The store's schema is migrated forward when this module or M(nhs_cm.remediation.report)
    opens it; a store written by a newer collection is refused with a message saying so.
  - The store, its tables and the meaning of each answer are described in the collection's
    C(docs/history.md).
requirements:
  - SQLAlchemy >= 2.0, alembic >= 1.13 and, for PostgreSQL, psycopg >= 3.1.
"""

EXAMPLES = r"""
- name: Hosts regressed in the last 7 days
  nhs_cm.remediation.history:
    store: postgresql://nhs_cm@db.example.nhs.uk/nhs_cm
    query: regressed
    days: 7
  register: regressed
  delegate_to: localhost
  run_once: true

- name: Re-fix them
  ansible.builtin.include_role:
    name: nhs_cm.remediation.cm_service
  when: inventory_hostname in regressed.hosts

- name: The estate report of last night's sliced audit (AWX job 4711), as files
  nhs_cm.remediation.history:
    store: postgresql://nhs_cm@db.example.nhs.uk/nhs_cm
    awx_job: 4711
    dest: /var/lib/nhs_cm/reports/estate

- name: Hosts per fault over the last 30 runs
  nhs_cm.remediation.history:
    store: ~/.local/share/nhs_cm/history.sqlite
    query: trend
  register: trend

- name: Delete the runs older than 90 days
  nhs_cm.remediation.history:
    store: ~/.local/share/nhs_cm/history.sqlite
    query: prune
    keep_days: 90
"""

RETURN = r"""
store:
  description: Where the store is, without a password.
  returned: always
  type: str
selected:
  description: The runs the answer is about, in words (for example V(AWX job 4711)).
  returned: for every query but prune, record_rollback, rollbacks and runs
  type: str
trend:
  description:
    - Per run group, oldest first - C(run) (the group), C(time), C(playbook), C(check_mode),
      C(hosts) (audited), C(per_fault) and C(per_finding) (hosts per e-RS fault and per finding id).
  returned: query is report or trend
  type: list
  elements: dict
report:
  description: The estate report document, as C(report.json) (without O(dest)).
  returned: query is report and no dest
  type: dict
changes_since_last_run:
  description: C(new), C(fixed) and C(regressed) - each finding id with the hosts it applies to.
  returned: query is report
  type: dict
path:
  description: Absolute path of C(report.json) (or of the first file written).
  returned: query is report with dest
  type: str
files:
  description: Absolute path of each file written, by format.
  returned: query is report with dest
  type: dict
summary:
  description: One line per host, then lines for the estate and the history.
  returned: query is report with dest
  type: list
  elements: str
estate:
  description: Counts for the estate, as in C(report.json).
  returned: query is report
  type: dict
hosts:
  description:
    - Per host - the new or fixed finding ids, or its regressions (C(id), C(fixed), C(fixed_by)
      - V(remediation) or V(seen healthy) -, C(back)).
  returned: query is new, fixed or regressed
  type: dict
ids:
  description: The same, per finding id - the hosts.
  returned: query is new, fixed or regressed
  type: dict
count:
  description: How many hosts are in RV(hosts).
  returned: query is new, fixed or regressed
  type: int
runs:
  description: The runs (C(run_id), C(grp), C(started), C(ended), C(playbook), C(check_mode), C(awx_job_id),
    C(awx_workflow_job_id), C(awx_slice), C(hosts)).
  returned: query is runs
  type: list
  elements: dict
timeline:
  description: Every recorded result of O(host), oldest first (C(time), C(run), C(group), C(playbook), C(status),
    C(faults), C(problems), C(changed), C(error)).
  returned: query is host
  type: list
  elements: dict
rollbacks:
  description: The rollbacks recorded (C(run_id), C(host), C(backup_id), C(status), C(restored), C(detail)).
  returned: query is rollbacks
  type: list
  elements: dict
pruned:
  description: Rows deleted (or, in check mode, that would be) per table.
  returned: query is prune
  type: dict
recorded:
  description: How many hosts' rollbacks were recorded.
  returned: query is record_rollback
  type: int
"""
