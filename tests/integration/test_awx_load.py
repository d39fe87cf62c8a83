"""awx/*.yml loads with infra.aap_configuration as docs/awx.md says, and every object is a valid
call of the awx.awx module its role calls.

The load is done as the dispatch role does it (tests/integration/files/awx_load.yml): include_vars
of the folder, then every value templated. Each item's keys are then mapped to module arguments
as the role of its list maps them (what each role reads was taken from infra.aap_configuration's
roles/controller_*/tasks), and checked with ansible's ArgumentSpecValidator against the argument
spec that the awx.awx module itself builds (the collection comes from the `ansible` wheel:
`make awx-collection`).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from harness import BIN, ROOT

AWX_COLLECTIONS = ROOT / ".awx"
LOAD = Path(__file__).parent / "files" / "awx_load.yml"
JOB_TIME = re.compile(r"{{.*?}}")

# infra.aap_configuration: item key -> module argument, per role; keys not listed are ignored by
# the role (a silent no-op for the user), so they are an error here.
_SAME = "{name}"
ROLES: dict[str, tuple[str, dict[str, str]]] = {
    "controller_execution_environments": ("execution_environment", dict.fromkeys(
        ["name", "new_name", "description", "image", "organization", "credential", "pull", "state"], _SAME)),
    "controller_projects": ("project", {
        **dict.fromkeys(["name", "new_name", "copy_from", "description", "scm_type", "scm_url",
                         "default_environment", "local_path", "scm_branch", "scm_refspec", "credential",
                         "signature_validation_credential", "scm_clean", "scm_delete_on_update",
                         "scm_track_submodules", "scm_update_on_launch", "scm_update_cache_timeout",
                         "allow_override", "timeout", "custom_virtualenv", "organization", "state", "wait",
                         "update_project", "interval", "notification_templates_started",
                         "notification_templates_success", "notification_templates_error"], _SAME),
        "scm_credential": "credential", "job_timeout": "timeout"}),
    "controller_templates": ("job_template", {
        **dict.fromkeys(["name", "new_name", "copy_from", "description", "execution_environment",
                         "custom_virtualenv", "job_type", "inventory", "organization", "project", "playbook",
                         "credentials", "forks", "limit", "verbosity", "extra_vars", "job_tags", "force_handlers",
                         "skip_tags", "start_at_task", "diff_mode", "use_fact_cache", "host_config_key",
                         "ask_scm_branch_on_launch", "ask_diff_mode_on_launch", "ask_variables_on_launch",
                         "ask_limit_on_launch", "ask_tags_on_launch", "ask_skip_tags_on_launch",
                         "ask_job_type_on_launch", "ask_verbosity_on_launch", "ask_inventory_on_launch",
                         "ask_credential_on_launch", "ask_execution_environment_on_launch", "ask_forks_on_launch",
                         "ask_instance_groups_on_launch", "ask_job_slice_count_on_launch", "ask_labels_on_launch",
                         "ask_timeout_on_launch", "prevent_instance_group_fallback", "survey_enabled",
                         "survey_spec", "become_enabled", "allow_simultaneous", "timeout", "instance_groups",
                         "job_slice_count", "webhook_service", "webhook_credential", "scm_branch", "labels",
                         "state", "notification_templates_started", "notification_templates_success",
                         "notification_templates_error"], _SAME),
        "survey": "survey_spec", "ask_tags": "ask_tags_on_launch", "ask_skip_tags": "ask_skip_tags_on_launch"}),
    "controller_workflows": ("workflow_job_template", {
        **dict.fromkeys(["name", "new_name", "copy_from", "description", "extra_vars", "allow_simultaneous",
                         "organization", "ask_variables_on_launch", "inventory", "limit", "labels", "scm_branch",
                         "ask_inventory_on_launch", "ask_scm_branch_on_launch", "ask_limit_on_launch",
                         "webhook_service", "webhook_credential", "survey_enabled", "survey_spec", "job_tags",
                         "skip_tags", "ask_tags_on_launch", "ask_labels_on_launch", "ask_skip_tags_on_launch",
                         "workflow_nodes", "destroy_current_nodes", "state", "notification_templates_started",
                         "notification_templates_success", "notification_templates_error",
                         "notification_templates_approvals"], _SAME),
        "survey": "survey_spec", "ask_tags": "ask_tags_on_launch", "ask_skip_tags": "ask_skip_tags_on_launch",
        "destroy_current_schema": "destroy_current_nodes", "simplified_workflow_nodes": ""}),
    "controller_schedules": ("schedule", dict.fromkeys(
        ["name", "new_name", "description", "rrule", "extra_data", "inventory", "credentials", "scm_branch",
         "execution_environment", "forks", "instance_groups", "job_slice_count", "labels", "timeout", "job_type",
         "job_tags", "skip_tags", "limit", "diff_mode", "verbosity", "organization", "unified_job_template",
         "enabled", "state"], _SAME)),
}
# What the roles pass when the item says nothing (the values that are not `omit`).
ROLE_DEFAULTS = {"job_template": {"job_type": "run", "state": "present"},
                 "project": {"scm_type": "manual", "state": "present", "interval": 1},
                 "execution_environment": {"state": "present"}, "schedule": {"state": "present"},
                 "workflow_job_template": {"state": "present"}}
# Workflow nodes (simplified_workflow_nodes): the node pass, then the link pass of the role.
NODE_KEYS = dict.fromkeys(
    ["identifier", "extra_data", "inventory", "scm_branch", "job_type", "job_tags", "skip_tags", "limit",
     "diff_mode", "verbosity", "credentials", "workflow_job_template", "unified_job_template", "lookup_organization",
     "execution_environment", "forks", "instance_groups", "job_slice_count", "labels", "timeout", "approval_node",
     "state", "all_parents_must_converge", "always_nodes", "success_nodes", "failure_nodes"], _SAME)


def _need_awx() -> None:
    if not (AWX_COLLECTIONS / "ansible_collections" / "awx" / "awx" / "MANIFEST.json").exists():
        if os.environ.get("CI"):
            pytest.fail("awx.awx is not unpacked: `make awx-collection` does it (requirements-awx.txt)")
        pytest.skip("awx.awx is not unpacked: run `make awx-collection`")


def module_spec(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The argument spec and the constraints awx.awx's module `name` builds in its main()."""
    if str(AWX_COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(AWX_COLLECTIONS))
    module = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{name}")
    real = module.ControllerAPIModule
    captured: dict[str, Any] = {}

    class Captured(Exception):
        pass

    class Capture:
        def __init__(self, argument_spec: dict[str, Any], **kwargs: Any) -> None:
            captured.update(spec={**real.AUTH_ARGSPEC, **argument_spec}, kwargs=kwargs)
            raise Captured

    module.ControllerAPIModule = Capture
    try:
        module.main()
    except Captured:
        pass
    finally:
        module.ControllerAPIModule = real
    return captured["spec"], captured["kwargs"]


def validate(module: str, params: dict[str, Any]) -> list[str]:
    spec, kwargs = module_spec(module)
    constraints = {k: v for k, v in kwargs.items() if k in ("mutually_exclusive", "required_together",
                                                            "required_one_of", "required_if", "required_by")}
    result = ArgumentSpecValidator(spec, **constraints).validate(params)
    return [str(error) for error in result.errors]


def _arguments(items: list[dict[str, Any]], keys: dict[str, str], module: str, label: str) -> list[tuple[str,
                                                                                                       dict[str, Any]]]:
    out = []
    for item in items:
        unread = sorted(set(item) - set(keys))
        assert not unread, f"{label} {item.get('name') or item.get('identifier')}: the role ignores {unread}"
        params = dict(ROLE_DEFAULTS.get(module, {}))
        params.update({(name if target == _SAME else target): value for name, value in item.items()
                       if (target := keys[name])})
        out.append((f"{label} {item.get('name') or item.get('identifier')}", params))
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("awx-load") / "loaded.json"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    done = subprocess.run([str(BIN / "ansible-playbook"), str(LOAD), "-e", f"awx_load_dir={ROOT / 'awx'}",
                           "-e", f"awx_load_out={out}"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_loading_keeps_the_job_time_jinja_as_text(loaded: dict[str, list[dict[str, Any]]]) -> None:
    """`awx_job_id` is AWX's at job time and now() must be the job's date: the load renders neither."""
    templates = {t["name"]: t for t in loaded["controller_templates"]}
    for name in ("NHS CM - Audit", "NHS CM - Remediate"):
        assert templates[name]["extra_vars"]["nhs_cm_report_dir"] == (
            "/var/lib/nhs_cm/reports/{{ now(utc=true, fmt='%Y-%m-%d') }}/job-{{ awx_job_id }}")
    merge = templates["NHS CM - Merge reports"]["extra_vars"]
    assert merge["nhs_cm_merge_src"] == ["/var/lib/nhs_cm/reports/{{ now(utc=true, fmt='%Y-%m-%d') }}/job-*"]
    assert JOB_TIME.search(merge["nhs_cm_report_dir"])


def test_every_object_is_a_valid_call_of_its_awx_module(loaded: dict[str, list[dict[str, Any]]]) -> None:
    _need_awx()
    assert set(loaded) == set(ROLES)
    calls = []
    for variable, (module, keys) in ROLES.items():
        calls += [(module, label, params) for label, params in _arguments(loaded[variable], keys, module, variable)]
    for workflow in loaded["controller_workflows"]:
        for label, params in _arguments(workflow.get("simplified_workflow_nodes", []), NODE_KEYS,
                                        "workflow_job_template_node", f"{workflow['name']} node"):
            links = {k: params.pop(k) for k in ("always_nodes", "success_nodes", "failure_nodes") if k in params}
            node = {**params, "workflow": workflow["name"], "organization": workflow["organization"],
                    "state": "present"}
            calls.append(("workflow_job_template_node", label, node))
            if links:
                calls.append(("workflow_job_template_node", f"{label} links",
                              {"identifier": params["identifier"], "workflow": workflow["name"],
                               "organization": workflow["organization"], "state": "present", **links}))
    assert len(calls) >= 8
    problems = {label: errors for module, label, params in calls if (errors := validate(module, params))}
    assert problems == {}


def test_the_validation_catches_what_awx_would_refuse() -> None:
    """The spec check is real: a wrong job_type, an unknown option and a string slice count fail."""
    _need_awx()
    assert validate("job_template", {"name": "x", "job_type": "run"}) == []
    assert any("job_type" in e for e in validate("job_template", {"name": "x", "job_type": "audit"}))
    assert any("survey_questions" in e for e in validate("job_template", {"name": "x", "survey_questions": []}))
    assert any("job_slice_count" in e for e in validate("job_template", {"name": "x", "job_slice_count": "four"}))


def test_a_key_the_role_does_not_read_is_named() -> None:
    """infra.aap_configuration silently drops a key its role does not read (`ask_variables` is
    not `ask_variables_on_launch`): such a key fails here."""
    module, keys = ROLES["controller_templates"]
    with pytest.raises(AssertionError, match=r"the role ignores \['ask_variables'\]"):
        _arguments([{"name": "NHS CM - Audit", "ask_variables": True}], keys, module, "controller_templates")
    ((_label, params),) = _arguments([{"name": "x", "survey": {"name": "s"}}], keys, module, "controller_templates")
    assert params == {"name": "x", "survey_spec": {"name": "s"}, "job_type": "run", "state": "present"}
