"""The layers import one way (docs/ARCHITECTURE.md §1): front ends on top,
then net, then the templates, then core.

The table is import-linter's (``pyproject.toml``, ``[tool.importlinter]``;
``lint-imports`` runs it in CI). This file checks the same contracts with
its own reading of the source, so a slip shows in the unit tests too:
every module of ``relsec_p2p`` must sit in a layer, no import may point up
a layer or across independent siblings, and the forbidden contracts hold.
Relative imports are resolved the way Python does, including
``from .. import app``, which names the module ``relsec_p2p.app``.

The core is also imported in a fresh interpreter where asyncio, socket,
zeroconf and textual cannot be imported at all."""

from __future__ import annotations

import ast
import pathlib
import pkgutil
import subprocess
import sys
import tomllib
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "relsec_p2p"
NAME = "relsec_p2p"

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


# -- reading the source ------------------------------------------------------------


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module name ``source`` (the text of ``module``) may import.

    ``from X import y`` records both ``X`` and ``X.y``: ``y`` may be a module
    (``from .. import app``) or a name in ``X``; recording both never misses
    the module, and a name inside an allowed module is allowed too."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise ValueError(f"{module}: relative import beyond the top package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def package_sources() -> dict[str, tuple[str, bool]]:
    """module name -> (source, is a package) for every file of relsec_p2p."""
    sources: dict[str, tuple[str, bool]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        sources[name] = (path.read_text(encoding="utf-8"), is_package)
    return sources


# -- the contracts ----------------------------------------------------------------


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    linter = config["tool"]["importlinter"]
    assert linter["root_package"] == NAME
    assert linter["include_external_packages"] is True  # else asyncio & co. go unseen
    return {contract["id"]: contract for contract in linter["contracts"]}


def layers() -> list[list[str]]:
    """The layers contract, top first, as full module names per layer."""
    contract = contracts()["layers"]
    assert contract["containers"] == [NAME] and contract["exhaustive"] is True
    table = []
    for layer in contract["layers"]:
        assert ":" not in layer  # every sibling in this project is independent
        table.append([f"{NAME}.{tail.strip()}" for tail in layer.split("|")])
    return table


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _place(name: str, table: list[list[str]]) -> tuple[int, str] | None:
    for rank, layer in enumerate(table):
        for member in layer:
            if _within(name, member):
                return rank, member
    return None


def problems(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import in ``sources`` that breaks a layer or a forbidden contract."""
    table = layers()
    forbidden = [c for c in contracts().values() if c["type"] == "forbidden"]
    found = []
    for module, (source, is_package) in sources.items():
        imported = imports_of(source, module, is_package=is_package)
        if module == NAME:  # the root: only __version__, it pulls in no layer
            found += [f"{NAME} imports {n}" for n in imported if _within(n, NAME)]
            continue
        here = _place(module, table)
        if here is None:
            found.append(f"{module} is in no layer")
            continue
        for name in sorted(imported):
            there = _place(name, table)
            if there is None or there[1] == here[1]:
                continue
            if there[0] < here[0]:
                found.append(f"{module} imports {name}, a higher layer")
            elif there[0] == here[0]:
                found.append(f"{module} imports {name}, an independent sibling")
        for contract in forbidden:
            if not any(_within(module, source) for source in contract["source_modules"]):
                continue
            for name in sorted(imported):
                if any(_within(name, banned) for banned in contract["forbidden_modules"]):
                    found.append(f"{module} imports {name} ({contract['id']})")
    return found


def test_every_module_is_in_a_layer() -> None:
    table = layers()
    declared = {member for layer in table for member in layer}
    present = {f"{NAME}.{info.name}" for info in pkgutil.iter_modules([str(PACKAGE)])}
    assert present == declared  # nothing left out, nothing stale
    for module in package_sources():
        assert module == NAME or _place(module, table) is not None, module


def test_layers_and_forbidden_contracts_hold() -> None:
    assert problems(package_sources()) == []


def test_relative_imports_resolve_to_the_module_they_name() -> None:
    core = "relsec_p2p.core.session"
    assert "relsec_p2p.app" in imports_of("from .. import app\n", core)
    assert "relsec_p2p.core.shuffle" in imports_of("from . import shuffle\n", core)
    assert "relsec_p2p.net.node" in imports_of("from ..net.node import Node\n", core)
    screen = "relsec_p2p.app.screens.lobby"
    assert "relsec_p2p.core.state" in imports_of("from ...core import state\n", screen)
    package = "relsec_p2p.templates"
    assert "relsec_p2p.core.template" in imports_of(
        "from ..core.template import Template\n", package, is_package=True
    )
    assert "relsec_p2p.templates.x" in imports_of("from . import x\n", package, is_package=True)


def test_a_wrong_way_import_in_any_spelling_is_caught() -> None:
    """The hole this file once had: ``from .. import app`` was recorded as
    plain ``relsec_p2p`` and passed."""
    cases = {
        "relsec_p2p.core.state": "from .. import app\n",
        "relsec_p2p.core.feed": "from ..net import link\n",
        "relsec_p2p.core.codec": "import asyncio\n",
        "relsec_p2p.core.ring": "from .. import templates\n",
        "relsec_p2p.templates": "from .. import net\n",
        "relsec_p2p.net.files": "from .. import headless\n",
        "relsec_p2p.net.node": "from relsec_p2p.app import view\n",
        "relsec_p2p.app.view": "from .. import demo\n",
        "relsec_p2p.peerproc": "from . import app\n",
        "relsec_p2p.bench.core": "from .. import demo\n",
        "relsec_p2p.demo": "from . import cli\n",
    }
    for module, source in cases.items():
        is_package = module == "relsec_p2p.templates"
        found = problems({module: (source, is_package)})
        assert found, f"{module}: {source.strip()!r} passed"
    allowed = {
        "relsec_p2p.app.controller": "from .. import templates\nfrom ..net.node import Node\n",
        "relsec_p2p.headless": "from .net.node import Node\nfrom .core import shuffle\n",
        "relsec_p2p.cli": "from . import __version__\nfrom .bench import core\n",
    }
    for module, source in allowed.items():
        assert problems({module: (source, False)}) == [], module
