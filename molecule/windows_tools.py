"""Readers of what Windows tools print (reg query, sc query / qc, tasklist), for the verify tests.

Each method sends one cmd.exe command line through a testinfra host (``host.run``), as one would
type it on the PC, and reads Windows' own output format.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import testinfra.host

USER_SID = re.compile(r"^HKEY_USERS\\(S-1-5-21-[\d-]+)$", re.IGNORECASE)
VALUE_LINE = re.compile(r"^    (.+?)    (REG_[A-Z_]+)    ?(.*)$")


@dataclass
class Windows:
    """Reads what Windows tools print on the host under test."""

    host: testinfra.host.Host

    def reg_values(self, key: str) -> dict[str, tuple[str, str]] | None:
        """The values of a registry key, name (lower case) -> (type, data as printed), or None when the
        key does not exist. ``reg query "KEY"``."""
        result = self.host.run(f'reg query "{key}"')
        if result.rc != 0:
            assert "unable to find" in result.stderr, result.stderr
            return None
        values = {}
        for line in result.stdout.splitlines()[2:]:
            match = VALUE_LINE.match(line)
            if match is None:
                break  # a blank line, then the subkeys
            values[match.group(1).lower()] = (match.group(2), match.group(3))
        return values

    def reg_subkeys(self, key: str) -> list[str]:
        """The names of the subkeys of a key (empty when it does not exist)."""
        result = self.host.run(f'reg query "{key}"')
        if result.rc != 0:
            return []
        return [line.rsplit("\\", 1)[1] for line in result.stdout.splitlines() if line.startswith("HKEY_")][1:]

    def reg_dword(self, key: str, name: str) -> int | None:
        """A REG_DWORD value, or None when it (or its key) is not there. ``reg query "KEY" /v NAME``."""
        result = self.host.run(f'reg query "{key}" /v {name}')
        if result.rc != 0:
            assert "unable to find" in result.stderr, result.stderr
            return None
        match = re.search(rf"^    {re.escape(name)}    REG_DWORD    (0x[0-9a-fA-F]+)\s*$", result.stdout,
                          re.MULTILINE | re.IGNORECASE)
        assert match, f"{key} {name} is not a REG_DWORD:\n{result.stdout}"
        return int(match.group(1), 16)

    def user_sids(self) -> list[str]:
        """The SIDs of the people whose registry hive is loaded (signed-in users): ``reg query HKU``."""
        result = self.host.run("reg query HKU")
        assert result.rc == 0, result.stderr
        return [m.group(1) for line in result.stdout.splitlines() if (m := USER_SID.match(line.strip()))]

    def sc_field(self, verb: str, service: str, name: str) -> str:
        """One field of ``sc query|qc SERVICE``, e.g. STATE -> '4  RUNNING'."""
        result = self.host.run(f"sc {verb} {service}")
        assert result.rc == 0, f"sc {verb} {service}: rc {result.rc}\n{result.stdout}{result.stderr}"
        match = re.search(rf"^\s+{name}\s+: (.*?)\s*$", result.stdout, re.MULTILINE)
        assert match, f"no {name} in sc {verb} {service}:\n{result.stdout}"
        return match.group(1)

    def tasks(self) -> list[dict[str, str]]:
        """Every process: ``tasklist /v /fo csv`` (Image Name, PID, Session#, User Name, ...)."""
        result = self.host.run("tasklist /v /fo csv")
        assert result.rc == 0, result.stderr
        return list(csv.DictReader(io.StringIO(result.stdout)))
