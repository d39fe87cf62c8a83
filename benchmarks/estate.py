"""The emulated estate of a run: the emulator started on loopback addresses, and the hosts of its inventory."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from paths import ROOT

from nhs_cm_emulator.launch import LaunchError, RunningEmulator, launch


def start_emulator(hosts: int, seed: int, transport: str, base_address: str, inventory: Path) -> RunningEmulator:
    try:
        return launch([ROOT / "scenarios"], inventory=inventory, hosts=hosts, seed=seed, transport=transport,
                      base_address=base_address, ready_timeout=120, show_stderr=True)
    except LaunchError as exc:
        raise SystemExit(f"bench: {exc}") from None


def inventory_hosts(inventory: Path) -> list[str]:
    return re.findall(r"^    (pc-\d+):$", inventory.read_text(), re.MULTILINE)


def limit_args(hosts: list[str], count: int) -> tuple[list[str], list[str]]:
    """(hosts of the run, ansible-playbook --limit arguments) for the first `count` hosts."""
    if count >= len(hosts):
        return hosts, []
    return hosts[:count], ["--limit", f"windows[0:{count - 1}]"]


def scenario_of_hosts(inventory: Path) -> dict[str, str]:
    """host -> the scenario host it was made from (the inventory's nhs_cm_emulated_from)."""
    hosts = yaml.safe_load(inventory.read_text())["windows"]["hosts"]
    return {name: str(values.get("nhs_cm_emulated_from", name)) for name, values in hosts.items()}
