"""The import contract of ``.importlinter`` (DESIGN.md "Rules of the house"), run by
the test command: only the store's ZooKeeper modules import kazoo, only
``epum.messaging`` imports kombu, the roles and the facade reach neither the
wire nor a ZooKeeper backend, and engines import no transport, store or role."""

from __future__ import annotations

import configparser
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


def _contract(name: str) -> dict[str, list[str]]:
    """One contract of ``.importlinter``: each option's lines."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    section = config[f"importlinter:contract:{name}"]
    return {key: section[key].split() for key in section}


def test_every_zookeeper_store_module_is_named_by_the_contracts():
    # a wildcard cannot stand for part of a name, so a new zk_* module must be listed
    # by hand: otherwise a role could import it, or it could close an import circle
    store = sorted(
        f"epum.store.{p.stem}"
        for p in (ROOT / "epum" / "store").glob("*.py")
        if p.stem == "zookeeper" or p.stem.startswith("zk_")
    )
    for name in ("roles-know-no-transport-or-backend", "facade-wires-only-the-memory-store"):
        forbidden = _contract(name)["forbidden_modules"]
        assert [m for m in store if m not in forbidden] == [], name
    layered = {f"epum.store.{m}" for m in _contract("zookeeper-store-layers")["layers"] if m != "|"}
    assert [m for m in store if m not in layered] == []


def import_circles(package: str) -> list[list[str]]:
    """The groups of ``package``'s modules that import each other, directly or through
    others (any import: at module level, in a function or for type checking)."""
    import grimp

    graph = grimp.build_graph(package, cache_dir=None)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in imports[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(imports):
        if module not in order:
            visit(module)
    return circles


def test_no_import_circle_in_epum():
    assert import_circles("epum") == []
