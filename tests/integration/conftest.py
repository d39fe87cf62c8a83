"""Integration fixtures (the helpers live in harness.py, importable from the tests)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from domain import Kdc, new_kdc
from harness import BIN, ROOT, Estate, start_estate


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Any]:
    """Factory: ``estate([scenario files], *cli options)``; every estate is stopped after the test."""
    started: list[Estate] = []

    def factory(scenarios: list[Path], *extra: str, env: dict[str, str] | None = None) -> Estate:
        running = start_estate(tmp_path, scenarios, *extra, env=env)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()




@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    """A real MIT Kerberos KDC on a loopback port for this test process (tools/kdc.py); make installs it."""
    running = new_kdc(tmp_path_factory.mktemp("realm"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built from the checkout as a release is (`ansible-galaxy collection build`)."""
    out = tmp_path_factory.mktemp("tarball")
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("nhs_cm-remediation-*.tar.gz")
    return built


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Any]:
    """A real PostgreSQL server for this test session (pgserver.py); `make postgresql` installs it."""
    import os

    import pgserver

    if pgserver.binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: `make test` installs it (make postgresql)")
        pytest.skip("PostgreSQL is not installed: run `make postgresql`")
    with pgserver.running() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The results store of a store test, once on SQLite and once on PostgreSQL (storetest.py)."""
    from storetest import Backend

    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "store" / "history.sqlite"))
        return
    server = request.getfixturevalue("postgresql")
    yield Backend("postgresql", server.url(server.new_database()), server.password)
