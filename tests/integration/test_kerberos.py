"""The playbooks over Kerberos, as a trust with domain-joined desktops runs them: tickets from a
real MIT KDC (tools/kdc.py), Ansible's winrm connection with `transport: kerberos`, message
encryption over HTTP, HTTPS, and the failures a trust meets, each on its own host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from domain import PASSWORD, UNREACHABLE_REALM, USER, Kdc, joined_estate, read_inventory, write_inventory
from harness import SCENARIOS, problem_ids, run_playbook

LIBRARY = sorted(SCENARIOS.glob("*.yml"))
#: Hosts cm_service fixes (and what it fixes on them), and hosts it leaves alone.
FAULTY = ["port-service-stopped", "port-service-not-automatic", "smartcard-service-stopped", "cm-not-running"]
FIXED = {"PORT_SERVICE_STOPPED", "PORT_SERVICE_NOT_AUTOMATIC", "SMARTCARD_SERVICE_STOPPED", "CM_NOT_RUNNING"}
UNCHANGED = ["healthy-cm4-scc"]


def library_expectations() -> dict[str, list[str]]:
    """host -> the error and warning ids its library scenario expects."""
    expected: dict[str, list[str]] = {}
    for path in LIBRARY:
        expected.update({host: sorted(ids) for host, ids in (yaml.safe_load(path.read_text()).get("expect")
                                                              or {}).items()})
    return expected


def writes(running: Any) -> dict[str, int]:
    return {name: stats["writes"] for name, stats in running.get("/stats")["hosts"].items()}


def configuration(state: dict[str, Any]) -> dict[str, Any]:
    """What rollback puts back, by host: the registry and each service's start mode and state."""
    return {host["name"]: {"registry": host["registry"],
                           "services": [(s["name"], s.get("start_mode"), s.get("state")) for s in host["services"]]}
            for host in state["hosts"]}


def _env(kdc: Kdc, **more: str) -> dict[str, str]:
    """The controller's environment: krb5.conf of the realm (a trust's is /etc/krb5.conf)."""
    return {**kdc.env(), **more}


def assert_kerberos_only(stats: dict[str, Any], protection: str) -> None:
    """Every host logged on with Kerberos only, and every WS-Man message had `protection`."""
    for name, host in stats["hosts"].items():
        assert set(host["logons"]) == {"kerberos"}, (name, host["logons"])
        assert set(host["messages"]) == {protection}, (name, host["messages"])
    assert stats["total"]["messages"][protection] > 0


def test_audit_library_over_kerberos_with_encryption(estate, kdc: Kdc, tmp_path: Path) -> None:
    """Every library scenario audited over HTTP with Kerberos message encryption (unencrypted bodies
    refused) reports exactly its `expect` ids; Ansible got the tickets itself (kinit, managed)."""
    running = joined_estate(estate, kdc, LIBRARY, "--require-encryption")
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", env=_env(kdc))
    assert run.rc == 0, run.output
    assert run.report is not None
    got = {name: problem_ids(entry) for name, entry in run.report["hosts"].items()}
    assert got == library_expectations()
    stats = running.get("/stats")
    assert_kerberos_only(stats, "sealed")
    assert stats["total"]["writes"] == 0
    assert PASSWORD not in run.output


def test_playbooks_over_https_with_a_ticket_from_kinit(estate, kdc: Kdc, tmp_path: Path) -> None:
    """HTTPS, and a ticket the engineer got with kinit beforehand (kinit_mode manual, no password in
    the inventory): audit, remediate --check --diff, remediate and rollback all use that ticket."""
    running = joined_estate(estate, kdc, [SCENARIOS / "port-service-stopped.yml", SCENARIOS / "healthy-cm4-scc.yml"],
                            "--https")
    inventory = read_inventory(running)
    group = inventory["windows"]["vars"]
    del group["ansible_password"]
    group["ansible_winrm_kinit_mode"] = "manual"
    write_inventory(running, inventory)
    ccache = tmp_path / "engineer.ccache"
    kinit = kdc.kinit(f"{USER}@{kdc.realm}", PASSWORD, ccache)
    assert kinit.returncode == 0, kinit.stderr
    env = _env(kdc, KRB5CCNAME=f"FILE:{ccache}")
    original = running.get("/state")

    audit = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", env=env)
    assert audit.rc == 0, audit.output
    assert audit.report is not None
    assert sorted(problem_ids(e) for e in audit.report["hosts"].values()) == [[], ["PORT_SERVICE_STOPPED"]]
    fixes = ("-e", '{"nhs_cm_fixes": ["cm_service"]}')
    check = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "r0", "--check", "--diff", *fixes,
                         env=env)
    assert check.rc == 0, check.output
    assert set(writes(running).values()) == {0}
    fix = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "r1", *fixes, env=env)
    assert fix.rc == 0, fix.output
    assert fix.report is not None
    assert [problem_ids(e) for e in fix.report["hosts"].values()] == [[], []]
    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b", "-e", "backup_id=latest",
                            env=env)
    assert rollback.rc == 0, rollback.output
    assert configuration(running.get("/state")) == configuration(original)
    assert_kerberos_only(running.get("/stats"), "tls")


def test_remediate_check_diff_fix_and_roll_back_over_kerberos(estate, kdc: Kdc, tmp_path: Path) -> None:
    """remediate --check --diff writes nothing, remediate fixes, rollback puts the hosts back: all
    over HTTP with Kerberos message encryption."""
    running = joined_estate(estate, kdc, [SCENARIOS / f"{name}.yml" for name in FAULTY + UNCHANGED],
                            "--require-encryption")
    env = _env(kdc)
    original = running.get("/state")

    check = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "r0", "--check", "--diff",
                         "-e", '{"nhs_cm_fixes": ["cm_service"]}', env=env)
    assert check.rc == 0, check.output
    assert set(writes(running).values()) == {0}
    assert "+service NHSPortService: state running, start mode auto" in check.output

    fix = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "r1", "--diff",
                       "-e", '{"nhs_cm_fixes": ["cm_service"]}', env=env)
    assert fix.rc == 0, fix.output
    assert fix.report is not None
    for name, entry in fix.report["hosts"].items():
        assert not set(problem_ids(entry)) & FIXED, (name, problem_ids(entry))
    assert {name for name, count in writes(running).items() if count} == set(FAULTY)

    rollback = run_playbook("playbooks/rollback.yml", running.inventory, tmp_path / "b1", "-e", "backup_id=latest",
                            env=env)
    assert rollback.rc == 0, rollback.output
    assert configuration(running.get("/state")) == configuration(original)
    assert_kerberos_only(running.get("/stats"), "sealed")


#: host -> (what is wrong, words its one-line error must contain)
FAILURES = {
    "badpass-01": ("the password in the inventory is wrong", "Password incorrect"),
    "nouser-01": ("the account does not exist in the domain", "not found in Kerberos database"),
    "nokdc-01": ("its domain's KDC cannot be reached", f"Cannot contact any KDC for realm '{UNREACHABLE_REALM}'"),
    "skew-01": ("the desktop's clock is 15 minutes off", "the PC refused the ticket: is the account in its "
                "Administrators group, its clock within 5 minutes of the domain's"),
    "nospn-01": ("reached by its IP address, which has no SPN", "not found in Kerberos database (no SPN for the "
                 "name the host is reached by"),
}


def _failing_estate(tmp_path: Path) -> Path:
    template = yaml.safe_load((SCENARIOS / "healthy-cm4-scc.yml").read_text())["hosts"][0]
    hosts = [dict(template, name=name) for name in ("good-01", *FAILURES)]
    next(h for h in hosts if h["name"] == "skew-01")["winrm"] = {"clock_offset_seconds": 900}
    path = tmp_path / "failing.yml"
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def test_kerberos_failures_fail_alone_with_one_line(estate, kdc: Kdc, tmp_path: Path) -> None:
    """Wrong password, unknown account, no KDC, clock skew, no SPN: each host fails alone with a
    one-line reason that names the problem; the good host is audited."""
    running = joined_estate(estate, kdc, [_failing_estate(tmp_path)])
    inventory = read_inventory(running)
    hosts = inventory["windows"]["hosts"]
    hosts["badpass-01"]["ansible_password"] = "Wr0ng-passw0rd"
    hosts["nouser-01"]["ansible_user"] = f"nobody@{kdc.realm}"
    hosts["nokdc-01"]["ansible_user"] = f"{USER}@{UNREACHABLE_REALM}"
    del hosts["nospn-01"]["ansible_winrm_kerberos_hostname_override"]
    write_inventory(running, inventory)

    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", env=_env(kdc))
    assert run.rc == 2, run.output
    assert run.report is not None
    report = run.report["hosts"]
    assert report["good-01"]["status"] == "ok" and problem_ids(report["good-01"]) == []
    for name, (why, words) in FAILURES.items():
        error = report[name]["error"]
        assert report[name]["status"] == "failed", (name, why)
        assert error and "\n" not in error and words in error, (name, why, error)
    assert PASSWORD not in run.output and "Wr0ng-passw0rd" not in run.output
    # No failing host logged on: four never got a ticket for it, the skewed one refused its tickets.
    logons = {name: host["logons"] for name, host in running.get("/stats")["hosts"].items()}
    assert logons["good-01"].get("kerberos", 0) > 0
    assert all(not logons[name] for name in FAILURES)
