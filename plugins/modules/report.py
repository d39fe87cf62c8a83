# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/report.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: report
short_description: Write the estate report of an NHS Credential Management audit
version_added: 0.1.0
description:
  - Collects the registered results of M(nhs_cm.remediation.diagnose) and
    M(nhs_cm.remediation.waivers) from every host of the play and writes the report files into
    O(dest) on the controller - C(report.json) (the full result per host), C(findings.csv) (one
    row per host and finding), C(junit.xml) (one test case per host and check) and
    C(report.html) (one self-contained page with charts and a filterable table per host).
  - Hosts that could not be audited (unreachable, wrong password, a reply that is not JSON, ...)
    are listed with C(status=failed) and a one-line reason; every other host is reported in full.
  - Findings covered by a waiver that applies are reported apart (C(waived)) and are not counted
    as faults.
  - Every file is UTF-8. Text that UTF-8 cannot hold (an unpaired surrogate, which a folder name
    on NTFS may contain) is written as U+FFFD, so one odd name never stops the report of every
    host; C(junit.xml) also replaces the control characters that XML cannot hold.
  - Runs on the controller only; nothing is written on the managed hosts. The report is also
    written in check mode, because an audit in check mode exists to produce it.
  - Reads each host's variables once, so it stays cheap on estates of thousands of hosts.
  - Use it once per play, with C(run_once=true).
author:
  - NHS CM remediation maintainers (!UNKNOWN)
options:
  dest:
    description:
      - Directory to write the report files into; created if missing. Relative paths are
        relative to the directory C(ansible-playbook) runs in. Files are replaced atomically.
    type: path
    default: reports
  formats:
    description:
      - Which files to write - V(json) for C(report.json), V(csv) for C(findings.csv), V(junit)
        for C(junit.xml), V(html) for C(report.html).
    type: list
    elements: str
    choices: [json, csv, junit, html]
    default: [json, csv, junit, html]
  result_var:
    description:
      - Name of the variable each host registered the M(nhs_cm.remediation.diagnose) result in.
    type: str
    default: nhs_cm_diagnose
  waivers_var:
    description:
      - Name of the variable each host registered the M(nhs_cm.remediation.waivers) result in.
        A host without it has no waiver.
    type: str
    default: nhs_cm_waiver_check
  changes_var:
    description:
      - Name of a host variable holding the changes made on the host (a list), reported as
        C(changes). For the remediation playbooks; the audit makes none.
    type: str
    default: nhs_cm_changes
  backups_var:
    description:
      - Name of a host variable holding the backup ids taken on the host (a list), reported as
        C(backups). For the remediation playbooks; the audit takes none.
    type: str
    default: nhs_cm_backups
  hosts:
    description:
      - Hosts to report on. Defaults to every host of the play (C(ansible_play_hosts_all)),
        including hosts that failed or were unreachable.
    type: list
    elements: str
  include_facts:
    description:
      - Also copy what M(nhs_cm.remediation.diagnose) read (its C(facts)) into each host's entry
        of C(report.json). Makes the file several times larger.
      - diagnose returns C(facts) only with its option C(return_facts=true); a host whose diagnose ran
        without it gets C(facts) null.
    type: bool
    default: false
  store:
    description:
      - The results store to record this run in (docs/history.md) - a SQLite file (a path, or
        V(sqlite:////absolute/path)) or a PostgreSQL URL (V(postgresql://user@host:port/database)).
        Not given - nothing is recorded and the report has no history.
      - After recording, C(report.json) gains C(trend) (hosts per fault and per finding id for the
        last 30 runs) and each host C(since_last_run) and C(regressed), read from the store.
      - When the store cannot be used (unreachable, wrong password, a newer schema, a URL that is
        not a store), the report files are still written, the run is kept in a spool file in
        O(spool_dir) and recorded by the next run that reaches the store, and the C(failure) of RV(store)
        says why in one line. The task itself does not fail; the playbooks end failed with that line.
      - A password in the URL is never shown; prefer O(store_password) or C(PGPASSWORD).
    type: str
  store_password:
    description:
      - The PostgreSQL password of O(store). Without it, the password of the URL or the
        C(PGPASSWORD) environment variable is used. Never shown or written anywhere.
    type: str
  spool_dir:
    description:
      - Folder where a run waits when O(store) cannot be used, as
        C(nhs_cm-store-spool-<run id>.json); every spool file found there is recorded (then
        removed) by the next run that reaches the store. Defaults to O(dest).
    type: path
  run:
    description:
      - The run to record - C(id) (default a new random id; the same id in every batch of a
        C(serial) play records one run), C(started) (ISO 8601; default now), C(playbook) (a
        short name such as V(audit) or V(remediate); default V(audit)) and C(slice) (a slice
        number, if known).
      - AWX's C(awx_job_id) and C(awx_workflow_job_id) and the check mode are read from the
        task's variables.
    type: dict
  before_var:
    description:
      - For a remediation, the name of the variable holding each host's registered
        M(nhs_cm.remediation.diagnose) result from B(before) the fix (C(result_var) holds the one
        after it). Each host's entry in C(report.json) then has C(remediation), before and after
        per finding with its outcome (C(fixed), C(still failing), C(needs a person), C(not verified)),
        and the estate their totals; C(report.html), the summary lines and C(findings.csv) show them.
      - Not set (an audit), no host entry has C(remediation).
    type: str
attributes:
  check_mode:
    support: full
    description: Writes the report on the controller in check mode too; changes nothing on hosts.
extends_documentation_fragment:
  - nhs_cm.remediation.controller
seealso:
  - module: nhs_cm.remediation.diagnose
  - module: nhs_cm.remediation.waivers
  - module: nhs_cm.remediation.report_merge
  - module: nhs_cm.remediation.history
notes:
  - The files and the schema of C(report.json) are described in the collection's C(docs/report.md);
    the results store in C(docs/history.md).
  - The store needs SQLAlchemy and Alembic (and psycopg for PostgreSQL) on the controller.
requirements:
  - SQLAlchemy >= 2.0, alembic >= 1.13 and, for PostgreSQL, psycopg >= 3.1 - only with O(store).
"""

EXAMPLES = r"""
- name: Check the waivers
  nhs_cm.remediation.waivers:
  register: nhs_cm_waiver_check
  ignore_errors: true

- name: Diagnose every desktop
  nhs_cm.remediation.diagnose:
  register: nhs_cm_diagnose
  ignore_errors: true
  ignore_unreachable: true

- name: Write the estate report
  nhs_cm.remediation.report:
    dest: /var/lib/nhs_cm/reports
  run_once: true
  register: nhs_cm_report

- name: Write only the spreadsheet and the CI test results
  nhs_cm.remediation.report:
    dest: /var/lib/nhs_cm/ci
    formats: [csv, junit]
  run_once: true

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ nhs_cm_report.summary }}"
  run_once: true
"""

RETURN = r"""
path:
  description:
    - Absolute path of C(report.json), or of the first file written when V(json) is not among
      O(formats).
  returned: success
  type: str
  sample: /home/me/nhs_cm/reports/report.json
files:
  description: Absolute path of each file written, by format.
  returned: success
  type: dict
  sample:
    json: /home/me/nhs_cm/reports/report.json
    csv: /home/me/nhs_cm/reports/findings.csv
    junit: /home/me/nhs_cm/reports/junit.xml
    html: /home/me/nhs_cm/reports/report.html
summary:
  description:
    - One line per host (its e-RS fault and why, or why it could not be audited), the waiver
      problems, then lines for the estate.
  returned: success
  type: list
  elements: str
  sample:
    - "pc-0002: e-RS fault 1 - PORT_SERVICE_STOPPED: NHS Port Service is not running"
    - "Estate: 20 host(s) - 12 with no fault or warning, 8 with findings, 0 could not be audited"
estate:
  description:
    - Counts for the estate, as in the C(estate) object of C(report.json); with O(before_var) also
      C(remediation), the findings fixed, still failing, needing a person and not verified.
  returned: success
  type: dict
  sample:
    hosts: 20
    with_fault: 8
    per_fault: {"1": 8}
hosts_failed:
  description: Hosts that could not be audited.
  returned: success
  type: list
  elements: str
hosts_with_waiver_problems:
  description: Hosts with a waiver that is malformed or past its date.
  returned: success
  type: list
  elements: str
store:
  description:
    - What happened with the results store - C(store) (where, without a password), C(recorded),
      C(run) and C(group) (the run's id and its trend group), C(spooled_recorded) (runs recorded
      from spool files); when it could not be used, C(error) and C(failure) (one line each) and
      C(spool) (the spool file).
  returned: when O(store) is given
  type: dict
  sample:
    store: /home/me/.local/share/nhs_cm/history.sqlite
    recorded: true
    run: 6f1c2a9e-0f1e-5d7a-9a55-3f0c1b2d4e5f
    group: audit:6f1c2a9e-0f1e-5d7a-9a55-3f0c1b2d4e5f
    spooled_recorded: []
"""
