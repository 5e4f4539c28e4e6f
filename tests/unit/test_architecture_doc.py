"""docs/ARCHITECTURE.md stays true to the code: its module map (§1, §2)
names every module of core/, net/ and app/, and every class and every
``Class.member`` its walk of one contribution (§3) names exists.

The code points readers to that page; a module added without a line there,
or a function renamed under the walk, fails here instead of misleading the
next engineer."""

from __future__ import annotations

import importlib
import pathlib
import pkgutil
import re
from typing import Any

import pytest

import relsec_p2p
from relsec_p2p.core.rules import RULES

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
NAMED = set(re.findall(r"`([^`]+)`", DOC))


def _section(number: int) -> str:
    start = DOC.index(f"\n## {number}. ")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else None]


def _modules(package: str) -> list[str]:
    path = relsec_p2p.__path__[0] + "/" + package
    found = []
    for info in pkgutil.iter_modules([path]):
        found.append(f"{info.name}/" if info.ispkg else info.name)
    return sorted(found)


@pytest.mark.parametrize("package", ["core", "net", "app"])
def test_the_module_map_names_every_module(package: str) -> None:
    missing = [name for name in _modules(package) if name not in NAMED]
    assert missing == [], f"docs/ARCHITECTURE.md §2 does not describe {package}/{missing}"


def _everything() -> dict[str, Any]:
    """Every name a module of relsec_p2p defines or imports (such as
    textual's ``Input``), by its bare name."""
    found: dict[str, Any] = {}
    for info in pkgutil.walk_packages(relsec_p2p.__path__, "relsec_p2p."):
        if info.name.endswith("__main__"):
            continue
        for name, value in vars(importlib.import_module(info.name)).items():
            found.setdefault(name, value)
    return found


def _resolve(dotted: str, known: dict[str, Any]) -> bool:
    head, *rest = dotted.split(".")
    if head in ("core", "net", "app"):
        # A module path such as ``core.codec.frame``: import the longest module prefix.
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target: Any = importlib.import_module("relsec_p2p." + ".".join(parts[:cut]))
            except ImportError:
                continue
            rest = parts[cut:]
            break
        else:
            return False
    elif head in known:
        target = known[head]
    else:
        try:
            target = importlib.import_module(f"relsec_p2p.{head}")
        except ImportError:
            return False
    for attr in rest:
        if not hasattr(target, attr):
            return False
        target = getattr(target, attr)
    return True


def test_the_walk_names_only_what_exists() -> None:
    walk = _section(3)
    names = set(re.findall(r"`([A-Za-z_][\w.]*)(?:\([^`]*\))?`", walk))
    # Entry types (``anon.round``) are words of the log, not of the code.
    checked = {n for n in names if ("." in n or n[:1].isupper()) and n not in RULES}
    assert len(checked) > 40  # the walk really was read
    known = _everything()
    missing = sorted(n for n in checked if not _resolve(n, known))
    assert missing == [], f"docs/ARCHITECTURE.md §3 names what the code does not have: {missing}"
