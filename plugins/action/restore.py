# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin of nhs_cm.remediation.restore (documentation: plugins/modules/restore.py).

Checks ``backup_id`` (``latest`` or a backup id, ``_protocol.BACKUP_ID_RE``), then puts back what
that backup saved on the host recorded (``_restore_action.RestoreAction``; what it reads and
writes: ``_remediate.restore``).
"""

from __future__ import annotations

import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import validate_args
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._remediate.restore_action import RestoreAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.protocol import BACKUP_ID_RE

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    "backup_id": {"type": "str", "required": True},
}


def _backup_id_problem(options: dict[str, t.Any]) -> str | None:
    backup_id = options["backup_id"]
    if backup_id != "latest" and not BACKUP_ID_RE.fullmatch(backup_id):
        return (f"backup_id must be 'latest' or a backup id as a remediation returned it (1 to 80 letters, "
                f"digits, '_' or '-'), not {backup_id!r}")
    return None


def validate_options(args: t.Mapping[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """({backup_id}, None) or (None, one message naming the field and what is allowed)."""
    return validate_args(ARGUMENT_SPEC, args, _backup_id_problem)


class ActionModule(RestoreAction):
    ROLE = "nhs_cm.remediation.restore"

    def validate(self, args: t.Mapping[str, t.Any]) -> tuple[t.Any, str | None]:
        return validate_options(args)
