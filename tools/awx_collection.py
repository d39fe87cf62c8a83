"""Unpack the awx.awx collection from the `ansible` wheel pinned in requirements-awx.txt.

    python tools/awx_collection.py DEST      # DEST/ansible_collections/awx/awx

The wheel is fetched with `pip download` (pip's cache keeps it); only the files under
ansible_collections/awx/awx/ are written. Used by `make awx-collection`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "ansible_collections/awx/awx/"


def main(dest: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp,
                        "-r", str(ROOT / "requirements-awx.txt")], check=True)
        (wheel,) = Path(tmp).glob("ansible-*.whl")
        target = dest / PREFIX
        if target.exists():
            shutil.rmtree(target)
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(PREFIX) and not name.endswith("/")]
            if not members:
                print(f"{wheel.name} has no {PREFIX}", file=sys.stderr)
                return 1
            for name in members:
                archive.extract(name, dest)
    print(f"awx.awx: {len(members)} files from {wheel.name} in {target}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DEST")
    sys.exit(main(Path(sys.argv[1])))
