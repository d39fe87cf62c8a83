# Copyright: contributors to nhs_cm.remediation
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for nhs_cm.remediation.report_merge: merge report.json files into one report."""

from __future__ import annotations

import glob
import os
from typing import Any

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.build import report_result
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.formats import (
    FORMATS,
    write_reports,
)
from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._report.merge import (
    ReportError,
    load_report,
    merge_reports,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "src": {"type": "list", "elements": "path", "required": True},
    "dest": {"type": "path", "default": "reports"},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
}


def report_files(sources: list[str]) -> list[str]:
    """report.json files named by ``sources``: files, folders holding one, or glob patterns."""
    files: list[str] = []
    for source in sources:
        matches = sorted(glob.glob(source)) if glob.has_magic(source) else [source]
        found = [m for m in (os.path.join(p, FORMATS["json"]) if os.path.isdir(p) else p for p in matches)
                 if os.path.isfile(m)]
        if not found:
            raise ReportError(f"src entry {source!r} names no report.json file (give a file, a folder that holds "
                              "report.json, or a glob pattern)")
        files += [os.path.abspath(f) for f in found if os.path.abspath(f) not in files]
    return files


class ActionModule(ControllerAction):
    """Read report.json files, keep the newest result per host, write the merged report."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            files = report_files(args["src"])
            report = merge_reports([load_report(path) for path in files])
            written = write_reports(report, args["dest"], args["formats"])
        except ReportError as exc:
            return dict(result, failed=True, msg=f"nhs_cm.remediation.report_merge: {exc}")
        except OSError as exc:
            return dict(result, failed=True, msg=f"nhs_cm.remediation.report_merge: cannot write into dest "
                                                 f"{args['dest']}: {exc.strerror or exc}")
        result.update(report_result(report, written), sources=files)
        return result
