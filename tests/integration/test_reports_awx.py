"""AWX as code (awx/*.yml) and the execution environment (execution-environment.yml)."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import BIN, ROOT

AWX = ROOT / "awx"
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
AWX_VARIABLES = {"awx_job_id"}


def collection_module(name: str) -> Any:
    if str(ROOT / ".collections") not in sys.path:
        sys.path.insert(0, str(ROOT / ".collections"))
    return importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.plugin_utils.{name}")


class Unsafe(str):
    """A value tagged !unsafe: Ansible keeps it as text (AWX renders it at job time)."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def _config() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(AWX.glob("*.yml")):
        data = yaml.load(path.read_text(), Loader=_Loader)
        assert isinstance(data, dict), path
        assert not set(data) & set(merged), f"{path} defines {set(data) & set(merged)} again"
        merged.update(data)
    return merged


def _templates() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in _config()["controller_templates"]}


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def _variables_used(value: Any) -> set[str]:
    """Variable names the Jinja expressions in the value refer to (identifiers in {{ }}, not calls or strings)."""
    names: set[str] = set()
    for text in _strings(value):
        for expression in re.findall(r"{{(.*?)}}", text):
            code = re.sub(r"'[^']*'|\"[^\"]*\"", "", expression)
            names |= set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*[(=])", code))
    return names - {"true", "false"}


def test_objects_refer_to_each_other() -> None:
    config = _config()
    projects = {p["name"] for p in config["controller_projects"]}
    environments = {e["name"] for e in config["controller_execution_environments"]}
    templates = _templates()
    workflows = {w["name"]: w for w in config["controller_workflows"]}
    for template in templates.values():
        for key in ("name", "organization", "project", "playbook", "inventory", "job_type", "execution_environment"):
            assert template.get(key), f"{template['name']}: {key} is missing"
        assert template["project"] in projects and template["execution_environment"] in environments
        assert template["job_type"] in ("run", "check")
    for workflow in workflows.values():
        for node in workflow["simplified_workflow_nodes"]:
            assert node["unified_job_template"] in templates
            ids = {n["identifier"] for n in workflow["simplified_workflow_nodes"]}
            assert set(node.get("always_nodes", []) + node.get("success_nodes", [])) <= ids
    for schedule in config["controller_schedules"]:
        assert schedule["unified_job_template"] in set(templates) | set(workflows)
        assert re.match(r"^DTSTART;TZID=[A-Za-z_/]+:\d{8}T\d{6} RRULE:FREQ=DAILY;INTERVAL=1$", schedule["rrule"])


def test_audit_is_a_sliced_check_job_run_nightly_then_reported_from_the_store() -> None:
    config = _config()
    templates = _templates()
    audit = templates["NHS CM - Audit"]
    assert audit["job_type"] == "check" and audit["playbook"] == "playbooks/audit.yml"
    assert audit["job_slice_count"] > 1
    nightly = next(s for s in config["controller_schedules"] if s["enabled"])
    workflow = next(w for w in config["controller_workflows"] if w["name"] == nightly["unified_job_template"])
    nodes = {n["identifier"]: n for n in workflow["simplified_workflow_nodes"]}
    assert nodes["audit"]["unified_job_template"] == "NHS CM - Audit"
    # The slices run on any execution node: the estate report comes from the store they all record
    # into (docs/history.md), not from merging files; then old runs are pruned.
    estate = templates[nodes["estate"]["unified_job_template"]]
    assert estate["playbook"] == "playbooks/estate_report.yml" and "estate" in nodes["audit"]["always_nodes"]
    retention = templates[nodes["retention"]["unified_job_template"]]
    assert retention["playbook"] == "playbooks/store_retention.yml" and "retention" in nodes["estate"]["always_nodes"]
    store = "NHS CM results store"
    for name in ("NHS CM - Audit", "NHS CM - Remediate", "NHS CM - Rollback", estate["name"], retention["name"]):
        assert store in templates[name]["credentials"], name
    # A job that cannot reach the store keeps its results where the next job finds them.
    assert audit["extra_vars"]["nhs_cm_store_spool"] == templates["NHS CM - Remediate"]["extra_vars"][
        "nhs_cm_store_spool"] == "/var/lib/nhs_cm/spool"


def test_the_store_credential_gives_the_url_and_the_password_apart() -> None:
    import jinja2

    config = _config()
    kind = next(t for t in config["controller_credential_types"] if t["name"] == "NHS CM results store")
    credential = next(c for c in config["controller_credentials"] if c["credential_type"] == kind["name"])
    assert next(f for f in kind["inputs"]["fields"] if f["id"] == "password")["secret"] is True
    assert credential["inputs"]["password"] == "{{ nhs_cm_store_db_password }}"  # never a password in the repository
    # Loading the files renders the {% raw %} blocks to the templates AWX itself renders at launch.
    inputs = dict(credential["inputs"], password="S3cret/pw")
    loaded = {k: jinja2.Template(v).render() for k, v in {**kind["injectors"]["env"],
                                                          **kind["injectors"]["extra_vars"]}.items()}
    awx = {k: jinja2.Template(v).render(**inputs) for k, v in loaded.items()}
    assert awx["PGPASSWORD"] == "S3cret/pw"
    assert awx["nhs_cm_store"] == "postgresql://nhs_cm@db.example.nhs.uk:5432/nhs_cm"
    where = collection_module("_history.records").parse_store_url(awx["nhs_cm_store"])
    assert where.kind == "postgresql" and where.password is None  # the client library reads PGPASSWORD


def _survey(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["survey_spec"]
    assert template["survey_enabled"] is True and spec["name"] and spec["description"]
    for question in spec["spec"]:
        assert question["type"] in SURVEY_TYPES, question
        assert question["question_name"] and re.match(r"^[a-z][a-z0-9_]+$", question["variable"]), question
        assert isinstance(question["required"], bool)
        if question["type"] in ("multiplechoice", "multiselect"):
            assert question["choices"] and set(question["default"].split("\n")) <= set(question["choices"])
        if question["type"] == "integer":
            assert question["min"] <= question["default"] <= question["max"]
    return spec["spec"]


def test_surveys_ask_what_the_issue_asks() -> None:
    templates = _templates()
    remediate = {q["variable"]: q for q in _survey(templates["NHS CM - Remediate"])}
    assert set(remediate) == {"nhs_cm_fixes", "nhs_cm_hosts", "nhs_cm_serial", "nhs_cm_max_fail_percentage"}
    catalogue = collection_module("_diagnose.catalogue")
    roles = {e.remedy.role.rsplit(".", 1)[1] for e in catalogue.CATALOGUE.values() if e.remedy.role}
    assert set(remediate["nhs_cm_fixes"]["choices"]) == roles  # every automatic remedy, nothing else
    rollback = {q["variable"]: q for q in _survey(templates["NHS CM - Rollback"])}
    assert set(rollback) == {"backup_id", "nhs_cm_hosts"}


def test_variables_match_the_playbooks() -> None:
    for template in _templates().values():
        asked = {q["variable"] for q in template.get("survey_spec", {}).get("spec", [])}
        given = set(template.get("extra_vars", {}))
        playbook = ROOT / template["playbook"]
        assert playbook.exists(), f"{template['name']}: {template['playbook']} does not exist"
        text = playbook.read_text()
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        for variable in sorted(asked | given):
            assert re.search(rf"\b{variable}\b", header), f"{template['playbook']} does not document {variable}"
            assert re.search(rf"\b{variable}\b", text.replace(header, "")), f"{template['playbook']} ignores {variable}"
        assert _variables_used(template.get("extra_vars", {})) <= AWX_VARIABLES | given
        # Jinja meant for job time is tagged !unsafe, so that loading the objects leaves it alone.
        for text in _strings(template.get("extra_vars", {})):
            assert "{{" not in text or isinstance(text, Unsafe), f"{template['name']}: {text} is not !unsafe"


def test_one_image_name_everywhere() -> None:
    """The EE that execution-environment.yml builds is the one AWX is told to pull, and the docs say so."""
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    (image,) = definition["options"]["tags"]
    assert image.endswith(":" + galaxy["version"])
    environments = _config()["controller_execution_environments"]
    assert [e["image"] for e in environments] == [image]
    for path in (ROOT / "execution-environment.yml", ROOT / "docs" / "awx.md"):
        named = set(re.findall(r"[a-z0-9.-]+\.[a-z]+/[a-z0-9./-]*nhs-cm-ee:[0-9.]+", path.read_text()))
        assert named == {image}, f"{path.name} names {named}"


def test_the_project_installs_the_collection_from_its_own_repository() -> None:
    """collections/requirements.yml (AWX's project sync) points at the project's repository and branch."""
    requirements = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())
    (project,) = _config()["controller_projects"]
    (wanted,) = requirements["collections"]
    assert wanted == {"name": project["scm_url"], "type": "git", "version": project["scm_branch"]}


def test_ansible_builder_create_makes_a_context_with_the_collection(tmp_path: Path) -> None:
    builder = next((str(p) for p in (ROOT / ".venv-qa" / "bin" / "ansible-builder", BIN / "ansible-builder")
                    if p.exists()), shutil.which("ansible-builder"))
    if not builder:
        if os.environ.get("CI"):
            pytest.fail("ansible-builder is not installed: `make qa-install` installs it (requirements-qa.txt)")
        pytest.skip("ansible-builder is not installed: run `make qa-install`")
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    tarball = f"nhs_cm-remediation-{galaxy['version']}.tar.gz"
    assert definition["version"] == 3
    assert definition["additional_build_files"][0]["src"] == f"build/{tarball}"
    assert definition["dependencies"]["galaxy"]["collections"][0]["name"].endswith("/" + tarball)
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    assert definition["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={pins['ansible-core']}"

    # Build the tarball as `make build` does, next to a copy of the definition, and create the context.
    work = tmp_path / "ee"
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path",
                           str(work / "build"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    shutil.copy(ROOT / "execution-environment.yml", work)
    done = subprocess.run([builder, "create", "--file", "execution-environment.yml", "--context", "context"],
                          cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    context = work / "context"
    dockerfile = (context / "Dockerfile").read_text()
    assert f'ANSIBLE_INSTALL_REFS="ansible-core=={pins["ansible-core"]} ansible-runner==' in dockerfile
    assert "COPY _build/collections/ /build/collections/" in dockerfile
    assert "ansible-galaxy collection install" in dockerfile and "introspect.py introspect" in dockerfile
    assert (context / "_build" / "collections" / tarball).is_file()
    assert definition["options"]["tags"] == [f"registry.example.nhs.uk/automation/nhs-cm-ee:{galaxy['version']}"]
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"][0]["type"] == "file"

    # What the image build does next: install the collection, then introspect its Python needs.
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p",
                           str(work / "collections"), str(context / "_build" / "collections" / tarball)],
                          cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                           str(work / "collections"), "--user-pip", str(context / "_build" / "requirements.txt"),
                           "--write-pip", str(work / "pip.txt"), "--write-bindep", str(work / "bindep.txt")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wanted = [line for line in (ROOT / "meta" / "ee-requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    resolved = (work / "pip.txt").read_text()
    for requirement in wanted:
        assert f"{requirement}  # from collection nhs_cm.remediation" in resolved
    # The system packages of bindep.txt (Kerberos) reach the image the same way.
    system = (work / "bindep.txt").read_text()
    for line in (ROOT / "bindep.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert f"{line}  # from collection nhs_cm.remediation" in system
