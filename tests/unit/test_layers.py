"""The import contract of ``.importlinter`` (DESIGN.md "Rules of the house"), run by
the test command: only the store's ZooKeeper modules import kazoo, only
``epum.messaging`` imports kombu, the roles and the facade reach neither the
wire nor a ZooKeeper backend, and engines import no transport, store or role."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the ``epum`` package under ``tree`` with its ``.importlinter``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / ".importlinter")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_keeps_every_layer_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_role_that_imports_kombu_breaks_the_contract(tmp_path: Path):
    shutil.copytree(ROOT / "epum", tmp_path / "epum", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    decider = tmp_path / "epum" / "decider.py"
    decider.write_text(decider.read_text() + "\nimport kombu  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "Only epum.messaging imports kombu BROKEN" in result.stdout
    assert "The roles never import messaging or a store backend" in result.stdout
    assert "epum.decider -> kombu" in result.stdout
