# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base class of the collection's action plugins that run on the controller only (report,
report_merge, waivers): no connection to the host, nothing transferred, the same in check mode."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True


def play_hosts(requested: list[str] | None, task_vars: dict[str, t.Any]) -> list[str]:
    """The hosts of option ``hosts`` when given, else every host of the play (``ansible_play_hosts_all``)."""
    return requested or list(task_vars.get("ansible_play_hosts_all") or [])
