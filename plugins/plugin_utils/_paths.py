# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What counts as an absolute Windows path, written once for the whole collection.

``ABSOLUTE_PATH``: on a drive (``C:\\...``) or on a share (``\\\\server\\share\\...``), what the
runner protocol accepts for a path (``_runner.request``), diagnose's ``ia_paths`` (``_diagnose.options``)
and a DisplayIcon (``_diagnose.product``). ``DRIVE_PATH``: on a drive only, what a
program the remediation modules start must be (``_remediate.cm_service``, option
``ia_executable``; the runner's programs.ps1 refuses any other). Both match the start of a path.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re

DRIVE_PATH = re.compile(r"^[A-Za-z]:\\")
ABSOLUTE_PATH = re.compile(r"^(?:[A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")
