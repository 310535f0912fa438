"""Import direction: command modules sit on top; the library and the scripts never import them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

COMMANDS = {"nmt.translate", "nmt.evaluate", "nmt.cli"}  # the console scripts' modules
ENTRY_POINTS = {REPO / "nmt" / "cli.py", REPO / "nmt" / "__main__.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


SOURCES = sorted((REPO / "nmt").rglob("*.py")) + sorted((REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_library_module_or_script_imports_a_command(path):
    if path in ENTRY_POINTS:
        return
    own = ".".join(path.relative_to(REPO).with_suffix("").parts)
    wrong = (imported_modules(path) & COMMANDS) - {own}
    if path.parent.name == "scripts":
        wrong -= {"nmt.cli"}  # scripts may compose configs as the commands do (CONFIG_DIR)
    assert not wrong, f"{path.relative_to(REPO)} imports {sorted(wrong)}: use nmt.decoding"
