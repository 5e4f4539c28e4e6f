"""The layers import one way: core ← net ← app ← cli (DESIGN §2).

The core is imported in a fresh interpreter where asyncio, socket, zeroconf
and textual cannot be imported at all; net may not import app; core and net
may not import the UI."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "relsec_p2p"

BLOCKER = """
import importlib.abc, sys
BLOCKED = {"asyncio", "socket", "_socket", "zeroconf", "textual", "ssl", "selectors"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"core must not import {name}")
        return None
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
sys.meta_path.insert(0, Block())
import pkgutil, importlib
import relsec_p2p.core as core
names = [m.name for m in pkgutil.iter_modules(core.__path__, "relsec_p2p.core.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_core_imports_with_io_and_ui_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 7  # every core module was really imported


def test_blocker_really_blocks() -> None:
    """The check above would be worthless if the blocker let asyncio through."""
    script = BLOCKER + "\nimport asyncio\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "core must not import asyncio" in result.stderr


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the file's package
                package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
                base = list(package[: len(package) - node.level + 1])
                module = ".".join([*base, module] if module else base)
            found.add(module)
    return found


def test_layers_import_one_way() -> None:
    forbidden = {
        "core": (
            "relsec_p2p.net",
            "relsec_p2p.app",
            "relsec_p2p.cli",
            "textual",
            "zeroconf",
            "asyncio",
            "socket",
        ),
        "net": ("relsec_p2p.app", "relsec_p2p.cli", "textual"),
        "app": ("relsec_p2p.cli",),
    }
    problems = []
    for layer, banned in forbidden.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for module in _imports(path):
                if module.startswith(banned):
                    problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not problems, problems
