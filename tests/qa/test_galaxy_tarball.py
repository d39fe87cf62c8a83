"""What `ansible-galaxy collection build` puts in the tarball: the collection and nothing else;
and what ansible-test needs to run the shipped tests/unit (tests/unit/requirements.txt).

Builds the checkout into a temporary folder (about 2 s) with the ansible-galaxy beside this
Python, then reads the file list. Run by `make galaxy` (not shipped: galaxy.yml ignores tests/qa).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# What a user of nhs_cm.remediation gets; every shipped path lies under one of these.
SHIPPED_FILES = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "COPYING", "execution-environment.yml",
                 "bindep.txt"}
SHIPPED_DIRS = ("meta/", "plugins/", "roles/", "playbooks/", "docs/", "changelogs/", "tests/unit/", "tests/sanity/",
                "awx/")
# Folders of the checkout that must never ship (the emulator never travels with the collection).
NEVER_SHIPPED = ("emulator", "scenarios", "tools", "benchmarks", "reports", "build", "tests/integration",
                 "tests/matrix", "tests/output", "tests/qa", ".venv", ".venv-qa", ".collections", ".git", ".ci",
                 "collections", "ansible.cfg", "Makefile")
MAX_BYTES = 1_000_000


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("galaxy")
    galaxy = Path(sys.executable).with_name("ansible-galaxy")
    subprocess.run([str(galaxy), "collection", "build", "--force", "--output-path", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (built,) = out.glob("nhs_cm-remediation-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def members(tarball: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tarball) as archive:
        return {m.name.rstrip("/"): m for m in archive.getmembers()}


def _files(members: dict[str, tarfile.TarInfo]) -> list[str]:
    return sorted(name for name, member in members.items() if member.isfile())


def _checkout_files(folder: str) -> set[str]:
    base = ROOT / folder
    return {p.relative_to(ROOT).as_posix() for p in base.rglob("*")
            if p.is_file() and not any(part.startswith(".") or part == "__pycache__" or part.endswith(".pyc")
                                       for part in p.relative_to(ROOT).parts)}


def test_every_shipped_file_belongs_to_the_collection(members: dict[str, tarfile.TarInfo]) -> None:
    strays = [name for name in _files(members) if name not in SHIPPED_FILES and not name.startswith(SHIPPED_DIRS)]
    assert strays == [], "add these to galaxy.yml build_ignore or to SHIPPED_* here"


def test_no_hidden_cache_or_checkout_only_paths(members: dict[str, tarfile.TarInfo]) -> None:
    bad = [name for name in members
           if any(part.startswith(".") or part == "__pycache__" for part in name.split("/"))
           or name.endswith((".pyc", ".tar.gz"))
           or any(name == top or name.startswith(top + "/") for top in NEVER_SHIPPED)]
    assert bad == []


@pytest.mark.parametrize("folder", ["plugins", "meta", "playbooks", "roles", "tests/unit", "awx", "docs"])
def test_the_collection_content_is_all_there(members: dict[str, tarfile.TarInfo], folder: str) -> None:
    ignored = tuple(yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))["build_ignore"])
    wanted = {path for path in _checkout_files(folder) if not path.startswith(ignored)}
    assert wanted - set(members) == set()


def test_the_runner_and_the_modules_ship(members: dict[str, tarfile.TarInfo]) -> None:
    assert {"plugins/plugin_utils/_runner/common.ps1", "plugins/plugin_utils/_runner/dispatch.ps1"} <= set(members)
    assert {"plugins/modules/diagnose.py", "plugins/action/diagnose.py", "meta/runtime.yml"} <= set(members)


def test_what_the_docs_tell_an_installed_user_to_use_ships(members: dict[str, tarfile.TarInfo]) -> None:
    """docs/awx.md and the user guide name these files; a user with the tarball must have them."""
    shipped = set(members)
    for name in ("execution-environment.yml", "bindep.txt", "meta/ee-requirements.txt",
                 "meta/execution-environment.yml", "docs/awx.md", "docs/examples/ansible.cfg"):
        assert name in shipped, name
    assert {p for p in shipped if p.startswith("awx/") and p.endswith(".yml")} == {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "awx").glob("*.yml")}


def test_galaxy_links_are_real_or_absent() -> None:
    """A placeholder address (example.*, .invalid, .test) in galaxy.yml sends Galaxy users nowhere.
    `repository`, which Galaxy's importer requires, is the trust's own git repository: the one its
    AWX project syncs and its collections/requirements.yml installs from (renamed together)."""
    import yaml

    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    for key in ("documentation", "homepage", "issues"):
        link = galaxy.get(key)
        if link:
            host = re.sub(r"^[a-z+]+://([^/:]+).*$", r"\1", link)
            assert not re.search(r"(^|\.)(example(\.[a-z]+)?|invalid|test|localhost)$", host), f"{key}: {link}"
            assert link.startswith("https://"), f"{key}: {link}"
    projects = yaml.safe_load((ROOT / "awx" / "controller_objects.yml").read_text(encoding="utf-8"))
    requirements = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text(encoding="utf-8"))
    assert galaxy["repository"] == projects["controller_projects"][0]["scm_url"]
    assert galaxy["repository"] == requirements["collections"][0]["name"]


def test_the_tarball_is_small(tarball: Path) -> None:
    assert tarball.stat().st_size < MAX_BYTES


def test_sanity_skips_each_have_a_reason() -> None:
    lines = [line.split("#", 1)[0].split(None, 1) for line in
             (ROOT / "tests/sanity/skip.txt").read_text(encoding="utf-8").splitlines()]
    entries = [parts for parts in lines if parts]
    assert entries, "skip.txt lists no test: remove the file and its use in tools/qa.sh instead"
    for parts in entries:
        assert len(parts) == 2 and len(parts[1].split()) >= 5, f"no reason given for skipping {parts[0]}"


def test_the_get_pip_stand_in_drops_only_get_pip_switches() -> None:
    spec = importlib.util.spec_from_file_location("get_pip", ROOT / "tools" / "ansible_test_get_pip.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--disable-pip-version-check", "pip==24.2", "--no-setuptools", "--no-wheel"]
    assert module.pip_arguments(argv) == ["--disable-pip-version-check", "pip==24.2"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _sep, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not an exact pin"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_ansible_test_units_gets_the_same_pins_as_pytest() -> None:
    unit = _pins(ROOT / "tests/unit/requirements.txt")
    test = _pins(ROOT / "requirements-test.txt")
    assert {name: test.get(name) for name in unit} == unit


def test_every_third_party_import_of_the_unit_tests_is_in_their_requirements() -> None:
    tests = ROOT / "tests/unit"
    local = {p.stem for p in tests.rglob("*.py")}
    # ansible-test brings these; PyYAML (`yaml`) and Jinja2 are requirements of ansible-core itself.
    provided = {"pytest", "ansible", "ansible_collections", "_pytest", "yaml", "jinja2"}
    imported = set()
    for path in tests.rglob("*.py"):
        imported |= set(re.findall(r"^(?:from|import) ([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8"),
                                   re.MULTILINE))
    third_party = imported - set(sys.stdlib_module_names) - local - provided - {"__future__"}
    required = {name.replace("-", "_") for name in _pins(tests / "requirements.txt")}
    assert third_party - required == set(), "add them to tests/unit/requirements.txt"
