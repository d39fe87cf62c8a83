# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What diagnose knows about NHS Credential Management and its companions, and how to find them in
the facts: the products' Uninstall names and kinds, where the Port Service answers, where the
Identity Agent and the browsers are installed, which generation a set-up is, and the helpers the
checks and the remediations share (installed entries, CM's folders and processes).

Pure functions, no I/O, no imports of the rest of ``_diagnose``: the read plan, the facts, the
models and the checks all import this module, never the other way round.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import ntpath
import re
import typing as t

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._paths import ABSOLUTE_PATH

#: Patterns compiled once, at import (in Ansible's main process, before the forks).
_EXE_PREFIX = re.compile(r"(?i)^(.*?\.exe)(?:\s|$)")
_ICON_INDEX = re.compile(r",\s*-?\d+$")
_VERSION_TEXT = re.compile(r"^\s*v?(\d+(?:\.\d+){0,3})(?:\s|$|[-+ (])")

PRS_PORTS = [43487, 44213, 45031, 46478, 48853]
PRS_PATH = "/PRS/GetPortNumber"
SMARTCARD_SERVICE = "SCardSvr"
IA_EXE = "IdentityAgent.exe"
#: Where the Identity Agent is usually installed (its folder is not public: an inference from
#: estates and its HSCIC heritage, hence option ``ia_paths``).
IA_PATHS = [
    "C:\\Program Files (x86)\\HSCIC\\Identity Agent\\IdentityAgent.exe",
    "C:\\Program Files\\HSCIC\\Identity Agent\\IdentityAgent.exe",
]
#: Every Identity Agent before this version is retired and blocked by NHS.
IA_MIN_VERSION = "2.4.10.0"
#: Chrome's and Edge's executables in their system-level install folders (inference: the folders
#: Chrome's enterprise MSI and Edge install to; docs/browser-policy.md), whose file version says
#: which Local Network Access policies the browser honours. A browser installed elsewhere is
#: seen only while it runs (``processes``).
BROWSER_EXES: dict[str, tuple[str, ...]] = {
    "chrome": ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
               "C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe"),
    "edge": ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
             "C:\\Program Files\\Microsoft\\Edge\\Application\\msedge.exe"),
}

#: Uninstall DisplayName prefixes (case-insensitive) -> product kind.
PRODUCT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("NHS Credential Management", "cm"),
    ("NHS Identity Hub", "identity_hub"),
    ("NHS Identity Agent", "identity_agent"),
    ("NHS Digital Identity Agent", "identity_agent"),
    ("HSCIC Identity Agent", "identity_agent"),
    ("NHS Port Service", "port_service"),
    ("NHS Smartcard Connect", "smartcard_connect"),
)
PRODUCT_KINDS = ("cm", "identity_hub", "identity_agent", "port_service", "smartcard_connect")
#: What ``facts["product"]["generation"]`` can be: CM 1.x or Identity Hub work with the legacy
#: Identity Agent; CM 3.x and later ship NHS Smartcard Connect and have no Identity Agent.
GENERATIONS = ("identity_hub", "cm1", "cm3plus", "none")
LEGACY_GENERATIONS = ("identity_hub", "cm1")


# ---------------------------------------------------------------------------------------------
# Names and versions

def product_kind(display_name: str | None) -> str | None:
    """The product kind of an Uninstall DisplayName, or None when it is not an NHS CM product."""
    if not display_name:
        return None
    folded = display_name.strip().casefold()
    for prefix, kind in PRODUCT_PREFIXES:
        if folded.startswith(prefix.casefold()):
            return kind
    return None


def parse_version(text: t.Any) -> tuple[int, ...] | None:
    """``"1.4.2.0"`` -> (1, 4, 2, 0); None when the text does not start with a version."""
    match = _VERSION_TEXT.match(str(text or "") + " ")
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _generation(name: str | None, version: str | None, generation: str | None,
                reason: str | None = None) -> dict[str, t.Any]:
    return {"generation": generation, "name": name, "version": version, "reason": reason}


def product_generation(products: dict[str, list[dict[str, t.Any]]], errors: list[str]) -> dict[str, t.Any]:
    """Which set-up the host has: ``{generation, name, version, reason}``.

    ``generation`` is ``cm3plus`` (CM 3.x or later, NHS Smartcard Connect, no Identity Agent),
    ``cm1`` (CM before 3.x, with the legacy Identity Agent), ``identity_hub`` (only NHS Identity
    Hub, also with the Identity Agent), ``none``, or null with ``reason`` when it cannot be told.
    With several CM versions installed, the newest decides. A CM entry without a readable
    version counts as ``cm3plus`` when NHS Smartcard Connect is installed and as ``cm1`` when
    the Identity Agent or Identity Hub is.
    """
    cm = products.get("cm") or []
    versioned = [(parse_version(entry["version"]), entry) for entry in cm]
    versioned = [(version, entry) for version, entry in versioned if version is not None]
    if versioned:
        version, entry = max(versioned, key=lambda item: item[0])
        return _generation(entry["name"], entry["version"], "cm3plus" if version[0] >= 3 else "cm1")
    if cm:
        entry = cm[0]
        if products.get("smartcard_connect"):
            return _generation(entry["name"], entry["version"], "cm3plus")
        if products.get("identity_agent") or products.get("identity_hub"):
            return _generation(entry["name"], entry["version"], "cm1")
        versions = ", ".join(repr(item["version"]) for item in cm)
        return _generation(entry["name"], entry["version"], None,
                           f"cannot tell which NHS Credential Management generation is installed: its "
                           f"DisplayVersion ({versions}) is not a version and neither NHS Smartcard Connect nor "
                           "the Identity Agent is installed")
    hubs = products.get("identity_hub") or []
    if hubs:
        return _generation(hubs[0]["name"], hubs[0]["version"], "identity_hub")
    if errors:
        return _generation(None, None, None, "cannot tell whether NHS Credential Management is installed: "
                           + "; ".join(errors))
    return _generation(None, None, "none")


# ---------------------------------------------------------------------------------------------
# Paths and names of files and processes

def service_binary(image: str | None) -> str | None:
    """The executable of a service command line (``"C:\\x y\\a.exe" -k`` -> ``C:\\x y\\a.exe``)."""
    if not image:
        return None
    text = image.strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        return text[1:end] if end > 0 else text[1:]
    match = _EXE_PREFIX.match(text)
    return match.group(1) if match else text.split(" ")[0]


def normalise_dir(path: str) -> str:
    """A Windows folder for prefix comparison: lower case, backslashes, one trailing backslash."""
    folded = ntpath.normpath(path.strip().strip('"').replace("/", "\\")).casefold()
    return folded.rstrip("\\") + "\\"


def icon_dir(display_icon: str | None) -> str | None:
    """The folder of an Uninstall DisplayIcon (``"C:\\x\\cm.exe",0`` -> ``C:\\x``)."""
    if not display_icon:
        return None
    path = display_icon.strip()
    path = _ICON_INDEX.sub("", path).strip().strip('"')
    if not ABSOLUTE_PATH.match(path) or "%" in path:
        return None
    folder = ntpath.dirname(path)
    return folder or None


def image_name(name: str | None) -> str:
    """A process or file name for comparison: lower case, without a trailing ``.exe``."""
    folded = ntpath.basename((name or "").strip()).casefold()
    return folded[:-4] if folded.endswith(".exe") else folded


# ---------------------------------------------------------------------------------------------
# The products in the facts

def installed(facts: dict[str, t.Any], *kinds: str) -> list[dict[str, t.Any]]:
    """Product entries of the given kinds (all views), or [] when the Uninstall keys were unread."""
    products = facts.get("products") or {}
    return [entry for kind in kinds for entry in products.get(kind, [])]


def uninstall_errors(facts: dict[str, t.Any]) -> list[str]:
    return [f"{item['path']}: {item['error']}" for item in facts.get("uninstall_keys", []) if "error" in item]


def cm_entries(facts: dict[str, t.Any], *kinds: str) -> tuple[list[dict[str, t.Any]], str | None]:
    """Installed entries of ``kinds`` and, when none was found and a view could not be read, why
    the answer is unknown."""
    entries = installed(facts, *kinds)
    errors = uninstall_errors(facts)
    if entries or not errors:
        return entries, None
    return [], "cannot tell whether NHS Credential Management is installed: " + "; ".join(errors)


def install_dirs(entries: list[dict[str, t.Any]]) -> list[str]:
    """CM install folders as recorded (InstallLocation, else the DisplayIcon's folder), each
    with one trailing backslash."""
    folders: list[str] = []
    for entry in entries:
        folder = entry.get("install_location") or icon_dir(entry.get("display_icon"))
        if folder:
            shown = folder.strip().strip('"').replace("/", "\\").rstrip("\\") + "\\"
            if normalise_dir(shown) not in [normalise_dir(known) for known in folders]:
                folders.append(shown)
    return folders


def cm_matcher(facts: dict[str, t.Any], shown_folders: list[str],
               names: set[str]) -> t.Callable[[dict[str, t.Any]], bool]:
    """Whether a process is CM's: its image lies under one of ``shown_folders`` or its file name
    is in ``names``; never the NHS Port Service's own process."""
    folders = [normalise_dir(folder) for folder in shown_folders]
    port_service = (facts.get("services") or {}).get("port_service") or {}
    binary = port_service.get("binary")
    excluded_image = ntpath.normpath(binary).casefold() if binary else ""
    excluded_pid = port_service.get("pid") or None

    def is_cm(process: dict[str, t.Any]) -> bool:
        image = (process.get("image") or "").replace("/", "\\")
        if excluded_pid and process.get("pid") == excluded_pid:
            return False
        if image and ntpath.normpath(image).casefold() == excluded_image:
            return False
        if names and (image_name(process.get("name")) in names or (image and image_name(image) in names)):
            return True
        folded = ntpath.normpath(image).casefold() if image else ""
        return bool(folded) and any(folded.startswith(folder) for folder in folders)
    return is_cm
