"""Report files, waivers and merging, through ansible-playbook against the emulated estate."""

from __future__ import annotations

import csv
import importlib
import io
import json
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from harness import ROOT, SCENARIOS, problem_ids, run_playbook


def collection_module(name: str) -> Any:
    """A module of the collection's plugin_utils, imported from this checkout (`make install` links it)."""
    if str(ROOT / ".collections") not in sys.path:
        sys.path.insert(0, str(ROOT / ".collections"))
    return importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.plugin_utils.{name}")


without_times = collection_module("_report.merge").without_times

SMALL = [SCENARIOS / name for name in ("cm-not-installed.yml", "cm-multiple-versions.yml", "port-service-stopped.yml",
                                       "healthy-cm4-scc.yml")]
FILES = ["findings.csv", "junit.xml", "report.html", "report.json"]


def _waiver(fid: str, expires: str, **extra: Any) -> dict[str, Any]:
    waiver = {"id": fid, "justification": "Kiosk PCs never use e-RS (CAB-1234)", "approved_by": "J Smith, IG lead",
              "expires": expires}
    waiver.update(extra)
    return {k: v for k, v in waiver.items() if v is not None}


def _inventory(path: Path, hosts: dict[str, Any], group: dict[str, Any] | None = None) -> Path:
    """An extra inventory file with waiver variables for the emulated `windows` group."""
    path.write_text(yaml.safe_dump({"windows": {"vars": group or {}, "hosts": hosts}}))
    return path


def test_waived_findings_are_apart_and_come_back_after_expiry(estate, tmp_path: Path) -> None:
    running = estate(SMALL)
    waivers = _inventory(tmp_path / "waivers.yml", {
        "cm-not-installed": {"nhs_cm_waivers": [_waiver("CM_NOT_INSTALLED", "2026-12-31")]},
    }, {"nhs_cm_waivers__estate": [_waiver("CM_MULTIPLE_VERSIONS", "2027-06-30")]})
    args = ("-i", str(waivers))

    valid = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r1", *args,
                         "-e", "nhs_cm_today=2026-12-31")
    assert valid.rc == 0, valid.output
    assert valid.report is not None
    assert sorted(p.name for p in (tmp_path / "r1").iterdir()) == FILES
    hosts = valid.report["hosts"]
    assert hosts["cm-not-installed"]["faults"] == [] and problem_ids(hosts["cm-not-installed"]) == []
    assert [f["id"] for f in hosts["cm-not-installed"]["waived"]] == ["CM_NOT_INSTALLED"]
    assert hosts["cm-not-installed"]["waived"][0]["waiver"]["approved_by"] == "J Smith, IG lead"
    assert [f["id"] for f in hosts["cm-multiple-versions"]["waived"]] == ["CM_MULTIPLE_VERSIONS"]  # group waiver
    assert hosts["port-service-stopped"]["faults"] == [1]
    assert valid.report["estate"]["with_fault"] == 1
    assert valid.report["estate"]["waived_per_finding"] == {"CM_NOT_INSTALLED": 1, "CM_MULTIPLE_VERSIONS": 1}
    line = next(x for x in valid.output.splitlines() if "cm-not-installed: " in x and "waived" in x)
    assert "cm-not-installed: no e-RS fault found" in line and "waived: CM_NOT_INSTALLED" in line
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r1" / "findings.csv").read_text())))
    assert ("cm-not-installed", "waived", "CM_NOT_INSTALLED") in {(r["host"], r["row"], r["id"]) for r in rows}
    cases = {(c.get("classname"), c.get("name")): c for c in ET.parse(tmp_path / "r1" / "junit.xml").iter("testcase")}
    assert cases[("cm-not-installed", "CM_NOT_INSTALLED")].find("skipped") is not None
    assert cases[("port-service-stopped", "PORT_SERVICE_STOPPED")].find("failure") is not None

    # The day after: the finding is back by itself, and the stale waiver fails the host with a clear message.
    expired = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r2", *args,
                           "-e", "nhs_cm_today=2027-01-01")
    assert expired.rc == 2, expired.output
    assert expired.report is not None
    entry = expired.report["hosts"]["cm-not-installed"]
    assert entry["faults"] == [1] and problem_ids(entry) == ["CM_NOT_INSTALLED"] and entry["waived"] == []
    assert [w["id"] for w in entry["expired_waivers"]] == ["CM_NOT_INSTALLED"]
    assert "nhs_cm_waivers[0].expires 2026-12-31 is in the past (today is 2027-01-01)" in expired.output
    assert expired.report["hosts"]["cm-multiple-versions"]["waived"]  # the group's waiver still applies

    # A trust that prefers expired waivers to lapse quietly.
    lapse = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r3", *args,
                         "-e", "nhs_cm_today=2027-01-01", "-e", "nhs_cm_waiver_expired=lapse")
    assert lapse.rc == 0, lapse.output
    assert lapse.report is not None
    assert lapse.report["hosts"]["cm-not-installed"]["faults"] == [1]
    assert lapse.report["hosts"]["cm-not-installed"]["waiver_problems"] == []


def test_malformed_waiver_is_named_and_the_host_still_audited(estate, tmp_path: Path) -> None:
    running = estate(SMALL[2:])
    waivers = _inventory(tmp_path / "waivers.yml", {
        "port-service-stopped": {"nhs_cm_waivers": [_waiver("PORT_SERVICE_STOPPED", "2099-01-01", justification="")]},
        "healthy-cm4-scc": {"nhs_cm_waivers": [_waiver("PORT_SERVICE_HALTED", "2099-01-01")]},
    })
    run = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "r", "-i", str(waivers))
    assert run.rc == 2, run.output
    assert run.report is not None
    stopped = run.report["hosts"]["port-service-stopped"]
    assert stopped["status"] == "ok" and stopped["faults"] == [1]  # not waived: the waiver is not valid
    assert stopped["waiver_problems"] == [
        "nhs_cm_waivers[0].justification must be a non-empty text: why the trust accepts this finding, not ''"]
    assert "port-service-stopped: nhs_cm_waivers[0].justification must be a non-empty text" in run.output
    assert "nhs_cm_waivers[0].id 'PORT_SERVICE_HALTED' is not a finding id of the catalogue" in run.output
    assert run.report["estate"]["with_waiver_problems"] == 2


def _refusing_host(tmp_path: Path) -> Path:
    """One more host that refuses every connection, so merges carry a failed host too."""
    template = yaml.safe_load((SCENARIOS / "healthy-cm4-scc.yml").read_text())["hosts"][0]
    host = dict(template, name="refuses-01", transport={"fail": {"kind": "refuse", "after_requests": 0, "times": 1000}})
    path = tmp_path / "refuses.yml"
    path.write_text(yaml.safe_dump({"hosts": [host]}))
    return path


def awx_slices(hosts: list[str], count: int) -> list[list[str]]:
    """The hosts of each slice, as AWX job slicing splits an inventory (slice k: every count-th host from k)."""
    return [hosts[index::count] for index in range(count)]


def test_three_slices_merged_equal_one_whole_run(estate, tmp_path: Path) -> None:
    running = estate([*sorted(SCENARIOS.glob("*.yml")), _refusing_host(tmp_path)], "--transport", "basic")
    whole = run_playbook("playbooks/audit.yml", running.inventory, tmp_path / "whole")
    assert whole.report is not None, whole.output
    names = sorted(whole.report["hosts"])
    assert len(names) >= 12 and whole.report["hosts"]["refuses-01"]["status"] == "failed"

    slices = awx_slices(names, 3)
    with ThreadPoolExecutor(max_workers=3) as pool:  # AWX runs the slices side by side too
        parts = list(pool.map(lambda number: run_playbook(
            "playbooks/audit.yml", running.inventory, tmp_path / f"slice-{number + 1}",
            "--limit", ",".join(slices[number])), range(3)))
    for hosts, part in zip(slices, parts, strict=True):
        assert part.report is not None, part.output
        assert sorted(part.report["hosts"]) == sorted(hosts)

    merged = run_playbook("playbooks/merge_reports.yml", running.inventory, tmp_path / "merged",
                          "-e", json.dumps({"nhs_cm_merge_src": [str(tmp_path / "slice-*")]}))
    assert merged.rc == 0, merged.output
    assert merged.report is not None
    assert "Merged 3 report(s)" in merged.output
    assert without_times(merged.report) == without_times(whole.report)
    assert sorted(p.name for p in (tmp_path / "merged").iterdir()) == FILES
    assert (tmp_path / "merged" / "findings.csv").read_text().count("\r\n") == (
        (tmp_path / "whole" / "findings.csv").read_text().count("\r\n"))


def test_merge_reports_names_a_missing_source(tmp_path: Path) -> None:
    inventory = tmp_path / "empty.yml"
    inventory.write_text("all: {}\n")
    run = run_playbook("playbooks/merge_reports.yml", inventory, tmp_path / "out",
                       "-e", json.dumps({"nhs_cm_merge_src": [str(tmp_path / "nothing-here")]}))
    assert run.rc == 2
    assert "nothing-here' names no report.json file" in run.output
    assert not (tmp_path / "out").exists()


def test_merge_reports_refuses_a_slice_that_is_not_a_report(tmp_path: Path) -> None:
    inventory = tmp_path / "empty.yml"
    inventory.write_text("all: {}\n")
    slice_file = tmp_path / "slice-1" / "report.json"
    slice_file.parent.mkdir()
    finding = {"id": "CM_NOT_INSTALLED", "fault": '1"><script>alert(1)</script>', "severity": "error"}
    slice_file.write_text(json.dumps({"schema": 2, "generated": "2026-11-25T03:40:00+00:00", "hosts": {
        "pc-1": {"status": "ok", "audited": "2026-11-25T03:40:00+00:00", "findings": [finding]}}}))
    run = run_playbook("playbooks/merge_reports.yml", inventory, tmp_path / "out",
                       "-e", json.dumps({"nhs_cm_merge_src": [str(tmp_path / "slice-*")]}))
    assert run.rc == 2, run.output
    assert (f"nhs_cm.remediation.report_merge: {slice_file}.hosts.pc-1.findings[0].fault must be 1, 2, 3, 4 or "
            "null, not '1\"><script>alert(1)</script>'") in run.output
    assert not (tmp_path / "out").exists()


def test_remediation_report_says_what_was_fixed_and_what_is_left(estate, tmp_path: Path) -> None:
    """remediate.yml: before and after per finding, totals in the report, the page and the console;
    a host that refuses every connection is one error in junit.xml, not one per check."""
    running = estate([SCENARIOS / "port-service-stopped.yml", SCENARIOS / "cm-not-installed.yml",
                      _refusing_host(tmp_path)])
    run = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "r")
    assert run.rc == 2, run.output  # the refusing host fails the run
    assert run.report is not None
    hosts = run.report["hosts"]
    outcome = {name: [(r["id"], r["before"], r["after"], r["outcome"]) for r in entry["remediation"]["findings"]]
               for name, entry in hosts.items()}
    assert outcome["port-service-stopped"] == [("PORT_SERVICE_STOPPED", "found", "not found", "fixed")]
    assert outcome["cm-not-installed"] == [("CM_NOT_INSTALLED", "found", "found", "needs a person")]
    assert outcome["refuses-01"] == []
    assert hosts["refuses-01"]["remediation"]["before"]["status"] == "failed"
    assert run.report["estate"]["remediation"] == {"fixed": 1, "still_failing": 0, "needs_person": 1,
                                                    "not_verified": 0}
    assert "port-service-stopped: no e-RS fault found; fixed: PORT_SERVICE_STOPPED" in run.output
    console = " ".join(run.output.split())  # the yaml callback folds long lines
    assert ("cm-not-installed: e-RS fault 1 - CM_NOT_INSTALLED: Neither NHS Credential Management nor NHS Identity "
            "Hub is installed; needs a person: CM_NOT_INSTALLED") in console
    assert "Remediation: 1 finding(s) fixed, 0 still failing, 1 need a person, 0 not verified" in run.output
    assert "CM_NOT_INSTALLED (Credential Management is not installed): 1 host(s)" in run.output

    rows = list(csv.DictReader(io.StringIO((tmp_path / "r" / "findings.csv").read_text(encoding="utf-8"))))
    fixed = [(r["host"], r["id"], r["title"], r["before"], r["after"]) for r in rows if r["row"] == "fixed"]
    assert fixed == [("port-service-stopped", "PORT_SERVICE_STOPPED", "NHS Port Service is stopped", "found",
                      "not found")]
    left = next(r for r in rows if r["host"] == "cm-not-installed" and r["row"] == "finding")
    assert (left["title"], left["outcome"]) == ("Credential Management is not installed", "needs a person")

    suite = next(s for s in ET.parse(tmp_path / "r" / "junit.xml").iter("testsuite") if s.get("name") == "refuses-01")
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
    assert suite.find("testcase/error").get("message").startswith("the host could not be audited: unreachable")


def test_a_dry_run_remediation_report_claims_nothing_fixed(estate, tmp_path: Path) -> None:
    running = estate([SCENARIOS / "port-service-stopped.yml"])
    dry = run_playbook("playbooks/remediate.yml", running.inventory, tmp_path / "d", "--check")
    assert dry.rc == 0, dry.output
    assert dry.report is not None
    assert "remediation" not in dry.report["hosts"]["port-service-stopped"]
    assert "remediation" not in dry.report["estate"] and "Remediation:" not in dry.output
    assert "a role would fix: cm_service: PORT_SERVICE_STOPPED" in dry.output
