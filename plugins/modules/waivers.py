# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This module is implemented by the action plugin plugins/action/waivers.py; this file only
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: waivers
short_description: Check the waivers of NHS Credential Management findings for the hosts of a play
version_added: 0.1.0
description:
  - A trust can accept (waive) a finding id on a host or a group for a while, with a reason, who
    agreed it and an expiry date, in inventory variables. This module checks them on the
    controller, for every host of the play at once, before any host is contacted, and returns
    per host the waivers that apply today.
  - Waivers are read from the variable C(nhs_cm_waivers) and from every variable named
    C(nhs_cm_waivers__<suffix>) (for example C(nhs_cm_waivers__radiology) in a group's
    variables); all the lists a host sees are used together.
  - Each waiver is a mapping with the keys C(id) (a finding id of the catalogue),
    C(justification), C(approved_by) and C(expires) (the last day it applies, C(YYYY-MM-DD)).
  - The task fails, with one message naming the host, the variable, the entry and the field of
    every problem, when a waiver is malformed (missing or empty key, unknown key, unknown id, a
    date that is not C(YYYY-MM-DD)) or, with O(expired=error), when its date is in the past.
  - A waiver whose date has passed no longer applies, so its finding comes back by itself.
  - Runs on the controller only; no host is contacted. Run it once per play (C(run_once=true)), as
    it reads each host's variables once.
  - In a play that changes hosts, stop the hosts listed in RV(hosts_with_problems) before any
    change (for example with M(ansible.builtin.fail) and C(when) on
    C(inventory_hostname in result.hosts_with_problems)).
author:
  - NHS CM remediation maintainers (!UNKNOWN)
options:
  hosts:
    description:
      - The hosts whose waivers to check. Defaults to every host of the play
        (C(ansible_play_hosts_all)).
    type: list
    elements: str
  today:
    description:
      - The date to compare expiry dates with, C(YYYY-MM-DD). Defaults to the controller's local
        date. Set it to see which waivers a later run will still apply, or in tests.
    type: str
  expired:
    description:
      - What a waiver whose date has passed is.
      - V(error) makes it a problem of its host, with a message saying to renew or remove it
        (its finding comes back in the report all the same).
      - V(lapse) only stops applying it; it is listed in RV(hosts) as expired.
    type: str
    choices: [error, lapse]
    default: error
attributes:
  check_mode:
    support: full
    description: Only reads variables; runs the same in check mode.
extends_documentation_fragment:
  - nhs_cm.remediation.controller
seealso:
  - module: nhs_cm.remediation.report
notes:
  - The audit playbook runs this module first and hands its result to M(nhs_cm.remediation.report),
    which reports waived findings apart (not counted as faults).
"""

EXAMPLES = r"""
# group_vars/radiology.yml
# nhs_cm_waivers__radiology:
#   - id: NO_SMARTCARD_READER
#     justification: Radiology viewing stations have no smartcard reader by design (CAB-1234)
#     approved_by: J Smith, IG lead
#     expires: "2027-03-31"

- name: Check the waivers of every host of the play
  nhs_cm.remediation.waivers:
  run_once: true
  register: nhs_cm_waiver_check

- name: Which waivers would still apply on 1 April 2027
  nhs_cm.remediation.waivers:
    today: "2027-04-01"
    expired: lapse
  run_once: true
  register: later
"""

RETURN = r"""
hosts:
  description:
    - Per host - C(waivers) (the waivers that apply today, each with the variable and entry it
      came from as C(source)), C(expired) (well-formed waivers whose date has passed), C(errors)
      (one message per problem, naming the variable, the entry and the field) and C(today).
  returned: success
  type: dict
  sample:
    rad-0001:
      waivers:
        - id: NO_SMARTCARD_READER
          justification: Radiology viewing stations have no smartcard reader by design (CAB-1234)
          approved_by: J Smith, IG lead
          expires: "2027-03-31"
          source: nhs_cm_waivers__radiology[0]
      expired: []
      errors: []
      today: "2026-11-25"
errors:
  description: Every problem, each prefixed with its host.
  returned: success
  type: list
  elements: str
  sample:
    - "pc-0012: nhs_cm_waivers[0].justification is missing: give why the trust accepts this finding"
hosts_with_problems:
  description: The hosts with at least one problem.
  returned: success
  type: list
  elements: str
today:
  description: The date the expiry dates were compared with.
  returned: success
  type: str
  sample: "2026-11-25"
"""
