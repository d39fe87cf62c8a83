# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The text of an e-RS configuration check report, as a user or the service desk pastes it.

``parse_ers_report(text)`` finds which of the four e-RS faults (findings.md, "The four e-RS
faults") the text names, and the port and CM version when the message carries them. It accepts
any layout: the message alone or inside a longer paste, with or without the
``NHS Identity Hub/Credential Management (v1.4.2.0)`` product prefix, broken over lines,
HTML-escaped, with typographic quotes, non-breaking spaces or full-width punctuation. Fault 4 has
no fixed message; it is recognised from the words people use for it ("Windows Security",
"credential prompt", "keeps asking for my password", "NTLM prompt").

Decisions:
- When a text names several faults, the configuration check's own messages win over the free
  words of fault 4, and among those the furthest stage wins (3 over 2 over 1): a text that says
  CM "is running on port 43485 but is not connected" has found CM, whatever else it says.
- Text that names no fault gives ``None``; ``diagnose`` then warns (``unknown_report_warning``)
  and lists the findings in catalogue order rather than failing the host, so one odd paste
  does not hide what was found on the host.
- ``order_findings`` puts the findings that explain the reported fault first; both groups keep
  catalogue order.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import html
import re
import typing as t
import unicodedata
from dataclasses import dataclass

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._diagnose.catalogue import FAULT_MESSAGES

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_TAG = re.compile(r"<[^<>]{0,200}>")

#: Longest text diagnose accepts in option ``ers_report``.
MAX_REPORT_CHARS = 20000

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2039": '"', "\u203a": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
})

_CM = r"(?:credential\s*management|identity\s*hub|\bcm\b)"
_CANNOT = r"(?:cannot|can\s*not|can'?t|could\s*not|couldn'?t|unable\s+to|is\s+unable\s+to|fails?\s+to)"
_LOGIN = r"(?:log\s*-?\s*(?:in|on)|sign\s*-?\s*in)"

#: (fault, pattern) in priority order: the first pattern that matches names the fault.
_FAULT_PATTERNS: tuple[tuple[int, re.Pattern[str]], ...] = (
    (3, re.compile(rf"\bconnected\s*,?\s*(?:but|yet)\s+(?:it\s+)?{_CANNOT}\s+{_LOGIN}\b", re.IGNORECASE)),
    (2, re.compile(rf"(?:{_CM}|\brunning\b).{{0,160}}?\bnot\s+connected\b", re.IGNORECASE)),
    (1, re.compile(rf"{_CM}.{{0,80}}?\b(?:{_CANNOT}\s+be|not\s+(?:be\s+)?)\s*(?:found|located|detected)\b"
                   rf"|\bnot\s+installed\s+or\s+running\b", re.IGNORECASE)),
    (4, re.compile(
        r"\bwindows\s+security\b"
        r"|\bntlm\b"
        r"|\bcredentials?\s+(?:prompt|dialog(?:ue)?|pop\s*-?\s*up|box|window|request)s?\b"
        r"|\b(?:(?:log\s*-?\s*(?:in|on)|sign\s*-?\s*in|authentication|password)\s+"
        r"(?:prompt|dialog(?:ue)?|pop\s*-?\s*up|box|window)s?)\b"
        r"|\b(?:asks?|asking|asked|keeps?\s+asking|prompts?|prompting|prompted|requests?|requesting)\s+"
        r"(?:me\s+|us\s+|them\s+|the\s+users?\s+|users?\s+)?(?:for|to\s+enter)\s+"
        r"(?:a\s+|my\s+|the\s+|their\s+|your\s+|his\s+|her\s+|our\s+)?(?:windows\s+)?"
        r"(?:user\s*-?\s*name|password|credentials|log\s*-?\s*in|login\s+details)"
        r"|\benter\s+(?:your|my|their|his|her|our)\s+(?:windows\s+)?(?:credentials|password|user\s*-?\s*name)",
        re.IGNORECASE)),
)
_PORT = re.compile(r"\bport\s*(?:number|no\.?|#)?\s*[:=]?\s*[\"'(\[]?\s*(\d{1,5})\b", re.IGNORECASE)
_VERSION = re.compile(r"\(\s*v(?:ersion)?\s*\.?\s*(\d+(?:\.\d+){1,3})\s*\)"
                      r"|\bv(?:ersion)?\s*\.?\s*(\d+\.\d+(?:\.\d+){0,2})\b", re.IGNORECASE)


@dataclass(frozen=True)
class ErsReport:
    """What a report text names: the fault, and the port and CM version when given."""

    fault: int
    port: int | None
    version: str | None
    matched: str

    @property
    def message(self) -> str:
        """The configuration check's message for the fault, with the port when known."""
        text = FAULT_MESSAGES[self.fault]
        return text.replace("<port>", str(self.port)) if self.port is not None else text

    def as_dict(self) -> dict[str, t.Any]:
        return {"fault": self.fault, "port": self.port, "version": self.version, "message": self.message,
                "matched": self.matched}


def normalise_text(text: str) -> str:
    """One line of plain text: entities decoded, compatibility forms folded (full-width
    letters, non-breaking spaces), typographic quotes and dashes made ASCII, whitespace collapsed."""
    decoded = html.unescape(_TAG.sub(" ", text))
    folded = unicodedata.normalize("NFKC", decoded).translate(_QUOTES)
    return " ".join(folded.split())


def _port(text: str, start: int) -> int | None:
    """The port named nearest after ``start`` (the messages put it before the fault words, so the
    search starts a little before the match), else anywhere in the text."""
    for match in [*_PORT.finditer(text, max(0, start - 120)), *_PORT.finditer(text)]:
        number = int(match.group(1))
        if 1 <= number <= 65535:
            return number
    return None


def _version(text: str) -> str | None:
    match = _VERSION.search(text)
    return (match.group(1) or match.group(2)) if match else None


def parse_ers_report(text: str | None) -> ErsReport | None:
    """The fault a report text names, or None when it names none (or is empty)."""
    if not text or not text.strip():
        return None
    plain = normalise_text(text)
    for fault, pattern in _FAULT_PATTERNS:
        match = pattern.search(plain)
        if match is None:
            continue
        port = _port(plain, match.start()) if fault in (2, 3) else None
        return ErsReport(fault, port, _version(plain) if fault in (1, 2, 3) else None, match.group(0))
    return None


def understood_messages() -> str:
    """The four messages diagnose understands, for people."""
    return "; ".join(f"fault {fault}: '{message}'" for fault, message in FAULT_MESSAGES.items())


def unknown_report_warning(text: str) -> str:
    """Why a report text was not used, naming the option and what it understands."""
    excerpt = normalise_text(text)
    excerpt = excerpt if len(excerpt) <= 80 else excerpt[:77] + "..."
    return (f"ers_report names none of the four e-RS configuration check faults ({excerpt!r}), so the findings "
            f"are in catalogue order. diagnose understands: {understood_messages()} (the product name, version "
            "and port may be included, in any layout).")


def order_findings(findings: list[dict[str, t.Any]], fault: int | None) -> list[dict[str, t.Any]]:
    """Findings that explain ``fault`` first, then the rest; each group keeps its order."""
    if fault is None:
        return list(findings)
    return [f for f in findings if f.get("fault") == fault] + [f for f in findings if f.get("fault") != fault]
