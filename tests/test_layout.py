"""The package's layers: imports run one way, from the commands down to config.

Each folder of ``nmt/`` is a group, each top-level module its own; a module may import its own
group or a lower layer, never a higher one. So the library never imports a command module, and
the model knows nothing of the data, search or training. Scripts sit above the library but below
the commands: they may compose configs as the commands do (``nmt.commands.cli.CONFIG_DIR``), but
decode through ``nmt.inference``, never through a command module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

LAYERS = {
    "nmt.config": 0,
    "nmt.device": 0,
    "nmt.files": 0,
    "nmt.provenance": 0,
    "nmt.schemas": 1,
    "nmt.metrics": 0,
    "nmt.viz": 0,
    "nmt.data": 1,
    "nmt.model": 1,
    "nmt.checkpoint": 2,
    "nmt.inference": 3,
    "nmt.tensorboard_plugin": 4,  # the Attention tab: reads explorer records, decodes live
    "nmt.training": 5,  # writes explorer records
    "nmt.commands": 6,
}
COMMAND_MODULES = {"nmt.commands.translate", "nmt.commands.evaluate"}


def group(module: str) -> str:
    """``nmt.data.corpus`` -> ``nmt.data``; ``nmt.config`` -> itself."""
    return ".".join(module.split(".")[:2])


def imported_modules(path: Path) -> set[str]:
    """Every ``nmt`` module that ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if group(name) in LAYERS}


LIBRARY = sorted(
    p
    for p in (REPO / "nmt").rglob("*.py")
    if p.parent.name != "nmt" or p.stem in {m.split(".")[1] for m in LAYERS}
)


def test_every_module_belongs_to_a_layer():
    for path in (REPO / "nmt").rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        assert module in ("nmt.__init__", "nmt.__main__") or group(module) in LAYERS, module


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_run_down_the_layers(path):
    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
    own = group(module)
    upward = {
        name
        for name in imported_modules(path)
        if group(name) != own and LAYERS[group(name)] >= LAYERS[own]
    }
    assert not upward, f"{module} (layer {LAYERS[own]}) imports {sorted(upward)}"


@pytest.mark.parametrize("path", sorted((REPO / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_scripts_decode_through_the_library_not_a_command(path):
    wrong = imported_modules(path) & COMMAND_MODULES
    assert not wrong, f"scripts/{path.name} imports {sorted(wrong)}: use nmt.inference"
