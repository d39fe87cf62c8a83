# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/report_merge.py; this file
# only carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: report_merge
short_description: Merge NHS Credential Management audit reports of several runs or job slices
version_added: 0.1.0
description:
  - Reads the C(report.json) files of several audit runs (or of the slices of an AWX sliced
    job) and writes one report of the whole estate into O(dest) - the same files
    M(nhs_cm.remediation.report) writes.
  - Per host, the newest result wins (the host's C(audited) time). Two results of the same
    time are decided by their content, so the merged report does not depend on the order or
    grouping of the files.
  - Reads reports of schema 1 (collection 0.1.0) and 2.
  - Checks every report before merging anything, and fails naming the file and the field when one
    is not a report this collection wrote - for example a finding id that is not in the catalogue,
    a fault other than 1 to 4, an unknown status or severity, a time that is not ISO 8601, or a
    host name with a control character. Nothing is written then.
  - Runs on the controller only.
author:
  - NHS CM remediation maintainers (!UNKNOWN)
options:
  src:
    description:
      - The reports to merge. Each entry is a C(report.json) file, a folder that holds one, or a
        glob pattern of either (for example V(/var/lib/nhs_cm/reports/job-*)).
      - An entry that names no report is an error.
    type: list
    elements: path
    required: true
  dest:
    description:
      - Directory to write the merged report files into; created if missing. It may be one of
        the folders in O(src).
    type: path
    default: reports
  formats:
    description:
      - Which files to write, as for M(nhs_cm.remediation.report).
    type: list
    elements: str
    choices: [json, csv, junit, html]
    default: [json, csv, junit, html]
attributes:
  check_mode:
    support: full
    description: Writes the merged report on the controller in check mode too.
extends_documentation_fragment:
  - nhs_cm.remediation.controller
seealso:
  - module: nhs_cm.remediation.report
notes:
  - The playbook C(nhs_cm.remediation.merge_reports) runs this module with variables.
"""

EXAMPLES = r"""
- name: Merge the reports of the slices of last night's audit
  nhs_cm.remediation.report_merge:
    src:
      - /var/lib/nhs_cm/reports/job-*
    dest: /var/lib/nhs_cm/reports/estate
  register: merged

- name: Merge yesterday's and today's runs, HTML only
  nhs_cm.remediation.report_merge:
    src: [reports/monday, reports/tuesday/report.json]
    dest: reports/latest
    formats: [html]
"""

RETURN = r"""
path:
  description:
    - Absolute path of the merged C(report.json), or of the first file written when V(json) is
      not among O(formats).
  returned: success
  type: str
files:
  description: Absolute path of each file written, by format.
  returned: success
  type: dict
sources:
  description: The C(report.json) files merged, in the order read.
  returned: success
  type: list
  elements: str
summary:
  description: One line per host, waiver problems, then lines for the estate.
  returned: success
  type: list
  elements: str
estate:
  description: Counts for the estate, as in the C(estate) object of C(report.json).
  returned: success
  type: dict
hosts_failed:
  description: Hosts whose newest result says they could not be audited.
  returned: success
  type: list
  elements: str
hosts_with_waiver_problems:
  description: Hosts with a waiver that is malformed or past its date.
  returned: success
  type: list
  elements: str
"""
