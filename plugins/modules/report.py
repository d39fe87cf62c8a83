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
notes:
  - The files and the schema of C(report.json) are described in the collection's C(docs/report.md).
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
"""
