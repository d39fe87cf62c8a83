# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Text from hosts made safe to keep: used by the reply parser and by the reports."""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re
import typing as t

_SURROGATES = re.compile("[\ud800-\udfff]")


def fix_text(text: str) -> str:
    """``text`` with every surrogate code point replaced by U+FFFD."""
    return text if text.isascii() else _SURROGATES.sub("\ufffd", text)


def replace_surrogates(data: t.Any) -> t.Any:
    """``data`` (JSON data) with every surrogate code point of its texts replaced by U+FFFD.

    A name on NTFS may hold an unpaired surrogate, and JSON can carry one (``\\ud800``), but no
    UTF-8 file can: one odd folder name must not stop the reports of every host. Dicts and lists
    are changed in place (keys too; the order is kept) and walked without recursion, however deep.
    """
    if isinstance(data, str):
        return fix_text(data)
    stack = [data] if isinstance(data, (dict, list)) else []
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for index, value in enumerate(item):
                if isinstance(value, str):
                    item[index] = fix_text(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
            continue
        for key, value in item.items():
            if isinstance(value, str):
                item[key] = fix_text(value)
            elif isinstance(value, (dict, list)):
                stack.append(value)
        if any(isinstance(key, str) and fix_text(key) != key for key in item):
            fixed = {fix_text(key) if isinstance(key, str) else key: value for key, value in item.items()}
            item.clear()
            item.update(fixed)
    return data
