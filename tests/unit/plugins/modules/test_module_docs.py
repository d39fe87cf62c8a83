"""The RETURN fields the write modules share are written once (tools/gen_module_docs.py) and copied
into each module between ``# >>> shared: <name>`` and ``# <<< shared: <name>``: every copy is the
same, and in the checkout every copy is what the generator says."""

from __future__ import annotations

import importlib
import importlib.util
import re
import types
from pathlib import Path

import pytest
from ansible.module_utils.common.yaml import yaml_load

ROOT = Path(__file__).resolve().parents[4]
MODULES = ROOT / "plugins" / "modules"
GENERATOR = ROOT / "tools" / "gen_module_docs.py"  # not in the built collection (galaxy.yml build_ignore)
BLOCK = re.compile(r"^# >>> shared: (?P<name>\w+)\b[^\n]*\n(?P<body>.*?)^# <<< shared: (?P=name)\n",
                   re.MULTILINE | re.DOTALL)
#: The shared blocks each write module has, in order.
EXPECTED = {"cm_service": ["write_failure"], "intranet_zone": ["write_failure"],
            "third_party_cookies": ["write_failure"], "restore": ["cleanup"]}


def module_text(name: str) -> str:
    return (MODULES / f"{name}.py").read_text(encoding="utf-8")


def shared_blocks(text: str) -> list[tuple[str, str]]:
    return [(match["name"], match["body"]) for match in BLOCK.finditer(text)]


def returned(name: str) -> dict[str, dict[str, object]]:
    """The module's RETURN as ansible-doc reads it (a YAML literal)."""
    module = importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.modules.{name}")
    return yaml_load(module.RETURN)


def generator() -> types.ModuleType:
    if not GENERATOR.exists():
        pytest.skip("tools/ is not part of the built collection")
    spec = importlib.util.spec_from_file_location("gen_module_docs", GENERATOR)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_write_module_has_its_shared_blocks_inside_return(name: str) -> None:
    text = module_text(name)
    assert [block for block, _body in shared_blocks(text)] == EXPECTED[name]
    return_text = text[text.index('RETURN = r"""'):]
    for _block, body in shared_blocks(text):
        assert body in return_text
        fields = yaml_load(body)
        assert set(fields) <= set(returned(name))


def test_every_copy_of_a_shared_block_is_the_same() -> None:
    copies: dict[str, set[str]] = {}
    for path in sorted(MODULES.glob("*.py")):
        for block, body in shared_blocks(path.read_text(encoding="utf-8")):
            copies.setdefault(block, set()).add(body)
    assert set(copies) == {"write_failure", "cleanup"}
    assert all(len(bodies) == 1 for bodies in copies.values()), copies
    (write_failure,), (cleanup,) = copies["write_failure"], copies["cleanup"]
    assert cleanup in write_failure  # restore shares only the cleanup fields


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_module_says_what_the_generator_says(name: str) -> None:
    gen = generator()
    text = module_text(name)
    assert gen.render(text) == text, f"run: .venv/bin/python tools/gen_module_docs.py ({name} is out of date)"
    assert [body for _block, body in shared_blocks(text)] == [gen.SHARED[block] for block in EXPECTED[name]]


def test_the_generator_rewrites_an_edited_copy_and_refuses_an_unknown_block() -> None:
    gen = generator()
    text = module_text("intranet_zone")
    edited = text.replace("could not unload); the task fails with it.", "could not unload).")
    assert edited != text and gen.render(edited) == text
    with pytest.raises(KeyError):
        gen.render("# >>> shared: nothing\nx: 1\n# <<< shared: nothing\n")
