# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: report
short_description: Write the estate report of an NHS Credential Management audit
version_added: 0.1.0
description:
  - Collects the registered result of M(nhs_cm.remediation.diagnose) from every host of the play
    and writes C(report.json) into O(dest) on the controller.
  - Hosts that could not be audited (unreachable, wrong password, a reply that is not JSON, ...)
    are listed with C(status=failed) and a one-line reason; every other host is reported in full.
  - Runs on the controller only; nothing is written on the managed hosts. The report is also
    written in check mode, because an audit in check mode exists to produce it.
  - Use it once per play, with C(run_once=true).
author:
  - NHS CM remediation maintainers
options:
  dest:
    description:
      - Directory to write C(report.json) into; created if missing. Relative paths are relative
        to the directory C(ansible-playbook) runs in.
    type: path
    default: reports
  result_var:
    description:
      - Name of the variable each host registered the M(nhs_cm.remediation.diagnose) result in.
    type: str
    default: nhs_cm_diagnose
  hosts:
    description:
      - Hosts to report on. Defaults to every host of the play (C(ansible_play_hosts_all)),
        including hosts that failed or were unreachable.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: Writes the report on the controller in check mode too; changes nothing on hosts.
  diff_mode:
    support: none
    description: Nothing to show as a diff.
  platform:
    platforms: all
    description: Runs on the controller.
extends_documentation_fragment: []
seealso:
  - module: nhs_cm.remediation.diagnose
notes:
  - The report's schema is described in the collection's C(docs/report.md).
"""

EXAMPLES = r"""
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

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ nhs_cm_report.summary }}"
  run_once: true
"""

RETURN = r"""
path:
  description: Absolute path of the report written.
  returned: always
  type: str
  sample: /home/me/nhs_cm/reports/report.json
summary:
  description: One line per host (its e-RS fault and why, or why it could not be audited), then lines for the estate.
  returned: always
  type: list
  elements: str
  sample:
    - "pc-0002: e-RS fault 1 - PORT_SERVICE_STOPPED: NHS Port Service is not running"
    - "Estate: 20 host(s) - 12 with no fault or warning, 8 with findings, 0 could not be audited"
hosts_failed:
  description: Hosts that could not be audited.
  returned: always
  type: list
  elements: str
"""
