"""The launcher (nhs_cm_emulator.launch) the demo, the benchmark, the fault-injection run and the
integration tests start the emulator with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nhs_cm_emulator.launch import LaunchError, launch, serve_command

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_the_command_line_names_every_option_given() -> None:
    command = serve_command([Path("a.yml"), "b"], inventory=Path("inv.yml"), hosts=5, seed=0, transport="ntlm",
                            base_address="127.21.12.1", extra=["--https"])
    assert command[command.index("serve"):] == [
        "serve", "--scenario", "a.yml", "--scenario", "b", "--hosts", "5", "--seed", "0", "--inventory", "inv.yml",
        "--base-address", "127.21.12.1", "--transport", "ntlm", "--control-port", "0", "--https"]
    assert "--hosts" not in serve_command(["a.yml"])


def test_launch_serves_until_stopped(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    scenario = SCENARIOS / "healthy-cm4-scc.yml"
    with launch([scenario], inventory=inventory, hosts=3, base_address="127.21.12.1") as emulator:
        assert emulator.inventory == inventory
        assert sorted(yaml.safe_load(inventory.read_text())["windows"]["hosts"]) == ["pc-0001", "pc-0002", "pc-0003"]
        assert emulator.control_url.startswith("http://127.0.0.1:")
        assert sorted(emulator.stats()["hosts"]) == ["pc-0001", "pc-0002", "pc-0003"]
        assert emulator.get("/state/pc-0002")["name"] == "pc-0002"
        process = emulator.process
    assert process.returncode == 0  # stopped cleanly on leaving the block
    assert emulator.stop() == 0  # twice is harmless


def test_a_scenario_it_cannot_use_is_a_launch_error_with_the_emulators_reason(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"stopped before it was ready \(exit code 2\): nhs-cm-emulator: .*nope\.yml"):
        launch([tmp_path / "nope.yml"], base_address="127.21.12.1")
