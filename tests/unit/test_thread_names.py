"""Every thread epum starts is named ``epum-...``, so the leaked-thread check in
``tests/conftest.py`` can tell epum's threads (daemon or not) from a library's."""

from __future__ import annotations

import ast
from pathlib import Path

import epum
from tests.kit import EPUM_THREAD_PREFIX

#: A call that starts threads, and the keyword argument that names them.
THREAD_MAKERS = {"Thread": "name", "ThreadPoolExecutor": "thread_name_prefix"}


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _starts_with_prefix(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.startswith(EPUM_THREAD_PREFIX)
    if isinstance(node, ast.JoinedStr) and node.values:
        return _starts_with_prefix(node.values[0])
    return False


def unnamed_threads(source: str, filename: str) -> list[str]:
    """``file:line`` of each Thread / ThreadPoolExecutor call in ``source`` whose name
    is not a literal (or f-string) starting with ``EPUM_THREAD_PREFIX``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        keyword = THREAD_MAKERS.get(_called_name(node) or "")
        if keyword is None:
            continue
        given = {k.arg: k.value for k in node.keywords}
        if not _starts_with_prefix(given.get(keyword)):
            found.append(f"{filename}:{node.lineno}")
    return found


def test_every_thread_epum_starts_is_named_with_the_prefix():
    root = Path(epum.__file__).parent
    unnamed = [
        where
        for path in sorted(root.rglob("*.py"))
        for where in unnamed_threads(path.read_text(), str(path.relative_to(root.parent)))
    ]
    assert unnamed == [], f"name these threads {EPUM_THREAD_PREFIX}...: {unnamed}"


def test_the_check_sees_unnamed_and_misnamed_threads():
    source = """
import threading
from concurrent.futures import ThreadPoolExecutor
threading.Thread(target=f, name="epum-ok", daemon=True)
threading.Thread(target=f, name=f"epum-{role}-ok")
threading.Thread(target=f, daemon=True)
Thread(target=f, name="worker")
ThreadPoolExecutor(max_workers=2, thread_name_prefix="epum-pool")
ThreadPoolExecutor(max_workers=2)
threading.Thread(target=f, name=some_name)
"""
    assert unnamed_threads(source, "m.py") == ["m.py:6", "m.py:7", "m.py:9", "m.py:10"]
