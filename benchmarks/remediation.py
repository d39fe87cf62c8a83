"""playbooks/remediate.yml after the audit, once per role on hosts the audit found that role can fix:
the runner calls each role makes per host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from typing import Any

from paths import BIN, ROOT, WORK
from runs import ansible_env, host_deltas

from nhs_cm_emulator.launch import RunningEmulator

REMEDIATE = ROOT / "playbooks" / "remediate.yml"
#: The roles of remediate.yml (its nhs_cm_fixes), each measured on its own run.
ROLES = ("cm_service", "third_party_cookies", "intranet_zone")
#: The diagnose tasks remediate.yml runs on a host besides its roles: detect (before) and verify
#: (after). Each costs what diagnose costs in the audit run (its commands_per_host_max).
DIAGNOSE_RUNS_PER_REMEDIATION = 2


def fixable_by_role(report: dict[str, Any], scenarios: dict[str, str], per_role: int) -> dict[str, list[str]]:
    """Per role, up to `per_role` audited hosts with an error or warning that the role fixes
    (remedy.automatic), one host per scenario first so that every kind of fault is sampled."""
    sample: dict[str, list[str]] = {}
    for role in ROLES:
        fqcn = f"nhs_cm.remediation.{role}"
        faulty = sorted(name for name, entry in report["hosts"].items() if entry["status"] == "ok" and any(
            f["severity"] in ("error", "warning") and f["remedy"].get("automatic") and f["remedy"].get("role") == fqcn
            for f in entry["findings"]))
        first, seen = [], set()
        for name in faulty:
            if scenarios.get(name, name) not in seen:
                seen.add(scenarios.get(name, name))
                first.append(name)
        sample[role] = (first + [name for name in faulty if name not in first])[:per_role]
    return sample


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters by host."""
    return {host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)}
            for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE)}


def remediation(emulator: RunningEmulator, sample: dict[str, list[str]], scenarios: dict[str, str],
                forks: int, diagnose_calls: int) -> dict[str, Any]:
    """Run playbooks/remediate.yml once per role (nhs_cm_fixes) on that role's sample and count,
    per host, the runner calls (WinRM commands) the role made: the host's commands in the run
    minus diagnose before and after (`diagnose_calls` each, as measured in the audit run)."""
    around = DIAGNOSE_RUNS_PER_REMEDIATION * diagnose_calls
    roles: dict[str, Any] = {}
    for role, hosts in sample.items():
        if not hosts:
            roles[role] = {"hosts": 0, "per_host": []}
            continue
        log = WORK / f"remediate-{role}.log"
        print(f"bench: remediate.yml, {role} only, on {len(hosts)} faulty hosts ...", flush=True)
        before = emulator.stats()
        started = time.monotonic()
        with log.open("w", encoding="utf-8") as out:
            code = subprocess.run(
                [str(BIN / "ansible-playbook"), str(REMEDIATE), "-i", str(emulator.inventory), "-f", str(forks),
                 "--limit", ",".join(hosts), "-e", json.dumps({"nhs_cm_fixes": [role]}),
                 "-e", f"nhs_cm_report_dir={WORK / ('reports-remediate-' + role)}"],
                cwd=ROOT, env=ansible_env(), stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        wall = time.monotonic() - started
        deltas = host_deltas(before, emulator.stats(), hosts)
        counters = recap(log.read_text(encoding="utf-8"))
        per_host = [{"host": name, "scenario": scenarios.get(name, name),
                     "runner_calls": delta["commands"] - around,
                     "runner_calls_with_diagnose": delta["commands"], "shells": delta["shells"],
                     "writes": delta["writes"], "changed": bool(counters.get(name, {}).get("changed")),
                     "failed": bool(counters.get(name, {}).get("failed") or counters.get(name, {}).get("unreachable"))}
                    for name, delta in deltas.items()]
        fixed = [entry["runner_calls"] for entry in per_host if not entry["failed"]]
        roles[role] = {"hosts": len(hosts), "exit_code": code, "wall_s": round(wall, 2),
                       "log": os.path.relpath(log, ROOT),
                       "runner_calls_max": max(fixed) if fixed else None,
                       "runner_calls_mean": round(sum(fixed) / len(fixed), 2) if fixed else None,
                       "runner_calls_max_all": max(entry["runner_calls"] for entry in per_host),
                       "with_diagnose_max": max(fixed) + around if fixed else None,
                       "diagnose_calls_subtracted": around,
                       "failed_hosts": sorted(entry["host"] for entry in per_host if entry["failed"]),
                       "per_host": per_host}
        print(f"  {role}: {roles[role]['runner_calls_max']} runner calls per host at most "
              f"({roles[role]['runner_calls_mean']} mean) on the hosts fixed, "
              f"{len(roles[role]['failed_hosts'])} failed, {wall:.1f} s (exit code {code})", flush=True)
    return roles
