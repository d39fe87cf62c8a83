"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test (``--venv`` and its per-test virtual environments) bootstraps pip in a new virtual
environment by running ``get-pip-<version>.py`` fetched from a host that is not reachable here,
unless ``~/.ansible/test/cache/get_pip_<version>.py`` exists. ``make qa-prepare`` copies this
file there. It does what get-pip does with what Python ships: ``ensurepip``, then
``pip install`` of the packages ansible-test asked for (``pip==24.2`` ...) from the package index.
get-pip's own ``--no-setuptools``/``--no-wheel`` switches are not pip options and are dropped.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def pip_arguments(argv: list[str]) -> list[str]:
    """The arguments for ``pip install``: get-pip's own switches removed."""
    return [argument for argument in argv if argument not in GET_PIP_ONLY]


def main(argv: list[str]) -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True,
                   stdout=subprocess.DEVNULL)
    return subprocess.run([sys.executable, "-m", "pip", "install", *pip_arguments(argv)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
