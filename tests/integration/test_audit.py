"""The audit playbook against the emulated estate, as a trust engineer would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import BIN, ROOT, SCENARIOS, problem_ids, run_playbook

LIBRARY = sorted(SCENARIOS.glob("*.yml"))


def library_expectations() -> dict[str, list[str]]:
    expected: dict[str, list[str]] = {}
    for path in LIBRARY:
        expect = yaml.safe_load(path.read_text()).get("expect") or {}
        expected.update({host: sorted(ids) for host, ids in expect.items()})
    return expected


@pytest.mark.parametrize("transport", ["basic", "ntlm-encrypted"])
def test_library_report_matches_expect(estate, tmp_path: Path, transport: str) -> None:
    """Every library scenario, audited over real WinRM, reports exactly its `expect` ids."""
    options = ["--transport", "basic"] if transport == "basic" else ["--transport", "ntlm", "--require-encryption"]
    running = estate(LIBRARY, *options)
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "reports")
    assert run.rc == 0, run.output
    assert run.report is not None
    expected = library_expectations()
    assert set(run.report["hosts"]) == set(expected)
    got = {name: problem_ids(entry) for name, entry in run.report["hosts"].items()}
    assert got == expected
    assert all(entry["status"] == "ok" and entry["error"] is None for entry in run.report["hosts"].values())
    # The audit only reads: the emulator saw no write at all.
    assert running.get("/stats")["total"]["writes"] == 0


def test_https_and_check_mode(estate, tmp_path: Path) -> None:
    """HTTPS with a generated certificate; --check still writes the report, never the hosts."""
    running = estate([SCENARIOS / "port-service-stopped.yml", SCENARIOS / "healthy-cm4-scc.yml"],
                     "--https", "--transport", "ntlm")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "--check")
    assert run.rc == 0, run.output
    assert run.report is not None
    hosts = run.report["hosts"]
    assert [problem_ids(e) for e in hosts.values()].count(["PORT_SERVICE_STOPPED"]) == 1
    assert running.get("/stats")["total"]["writes"] == 0
    assert "PORT_SERVICE_STOPPED" in run.output


def test_summary_names_fault_and_reason(estate, tmp_path: Path) -> None:
    """The printed summary says which host shows e-RS fault 1 and why."""
    running = estate([SCENARIOS / "cm-not-running.yml", SCENARIOS / "healthy-cm1-ia.yml"])
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r")
    assert run.rc == 0, run.output
    assert run.report is not None
    faulty = [n for n, e in run.report["hosts"].items() if e["faults"] == [1]]
    assert len(faulty) == 1
    line = next(x for x in run.output.splitlines() if faulty[0] + ": e-RS fault 1" in x)
    assert "CM_NOT_RUNNING" in line
    healthy = next(n for n in run.report["hosts"] if n not in faulty)
    assert f"{healthy}: no e-RS fault found" in run.output


def _write_faulty_estate(tmp_path: Path) -> Path:
    """Three copies of a healthy host: one refuses connections, one rejects the password."""
    base = yaml.safe_load((SCENARIOS / "healthy-cm4-scc.yml").read_text())
    template = base["hosts"][0]
    hosts = []
    for name, fail in (("good-01", None), ("refuses-01", {"kind": "refuse", "after_requests": 0, "times": 1000}),
                       ("badpass-01", {"kind": "auth", "after_requests": 0, "times": 1000})):
        host = dict(template, name=name)
        if fail:
            host["transport"] = {"fail": fail}
        hosts.append(host)
    path = tmp_path / "faulty.yml"
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def test_failing_hosts_fail_alone(estate, tmp_path: Path) -> None:
    """A host that refuses the connection or the password fails alone with a one-line reason."""
    running = estate([_write_faulty_estate(tmp_path)], "--transport", "basic")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r")
    assert run.rc == 2, run.output  # ansible-playbook's "some hosts failed"
    assert run.report is not None
    hosts = run.report["hosts"]
    assert hosts["good-01"]["status"] == "ok"
    assert problem_ids(hosts["good-01"]) == []
    for name in ("refuses-01", "badpass-01"):
        assert hosts[name]["status"] == "failed"
        assert hosts[name]["error"] and "\n" not in hosts[name]["error"]
    assert "refused" in hosts["refuses-01"]["error"].lower() or "connect" in hosts["refuses-01"]["error"].lower()
    assert hosts["badpass-01"]["error"].endswith(" credentials rejected")
    assert hosts["refuses-01"]["error"].endswith(" connection refused on 5985")
    assert "Passw0rd!" not in run.output


def test_bad_module_parameter_is_named(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / "healthy-cm4-scc.yml"])
    playbook = tmp_path / "bad.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "windows", "gather_facts": False,
        "tasks": [{"name": "bad", "nhs_cm.remediation.diagnose": {"prs_ports": ["not-a-port"]}}],
    }]))
    run = run_playbook(str(playbook), running.inventory, tmp_path / "r")
    assert run.rc == 2
    assert "prs_ports" in run.output


def test_playbook_by_fqcn(estate, tmp_path: Path) -> None:
    """`ansible-playbook nhs_cm.remediation.audit` finds the playbook through the collection."""
    running = estate([SCENARIOS / "healthy-cm4-scc.yml"])
    run = run_playbook("nhs_cm.remediation.audit", running.inventory, tmp_path / "r")
    assert run.rc == 0, run.output
    assert run.report is not None and len(run.report["hosts"]) == 1


def test_unreadable_scenario_gives_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts:\n  - name: pc-1\n    registry: {'HKCU\\\\Software': {}}\n")
    done = subprocess.run([str(BIN / "nhs-cm-emulator"), "serve", "--scenario", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yml" in lines[0] and "HKCU" in lines[0]
    missing = subprocess.run([str(BIN / "nhs-cm-emulator"), "serve", "--scenario", str(tmp_path / "nope.yml")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope.yml" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_ansible_doc_renders() -> None:
    for plugin in ("nhs_cm.remediation.diagnose", "nhs_cm.remediation.report"):
        done = subprocess.run([str(BIN / "ansible-doc"), plugin], cwd=ROOT, capture_output=True, text=True,
                              env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": str(BIN), "HOME": str(ROOT),
                                   "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections")},
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert "OPTIONS" in done.stdout and "RETURN VALUES" in done.stdout
    assert sys.executable
