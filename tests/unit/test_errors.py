"""One error hierarchy, split by side (core/errors.py, SPEC §8).

Every module of ``relsec_p2p`` is imported (all but ``__main__``, which runs
the command) and every exception class a module of the package defines,
private ones included, is checked: it is a ``RelsecError`` on exactly one
side, ``LocalError`` or ``RemoteError``; every remote error that can be
raised has its own stable ``code``, which protocol/SPEC.md names; the side
classes themselves are never raised bare."""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
import re

import relsec_p2p
from relsec_p2p.core.errors import (
    EntryRefused,
    LocalError,
    LocalProtocolError,
    RelsecError,
    RemoteError,
    RemoteProtocolError,
)
from relsec_p2p.core.joincode import BadJoinCode
from relsec_p2p.core.save import SaveError
from relsec_p2p.core.template import TemplateError
from relsec_p2p.net.discovery import DiscoveryError
from relsec_p2p.net.link import LinkClosed

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "relsec_p2p"
SPEC = (ROOT / "protocol" / "SPEC.md").read_text(encoding="utf-8")

# The root and the side classes: what callers catch, never what is raised.
ABSTRACT = (RelsecError, LocalError, RemoteError, RemoteProtocolError)

# Control flow, not errors: raised and caught inside the one module that
# defines them (checked below), so no caller ever sees one.
SIGNALS = {"relsec_p2p.core.ring._IdentityResult", "relsec_p2p.demo.DemoStopped"}

_CODE = re.compile(r"[a-z]+(?:_[a-z]+)*")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(relsec_p2p.__path__, "relsec_p2p."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
            ):
                found[_name(value)] = value
    return found


CLASSES = _exception_classes()
ERRORS = {name: cls for name, cls in CLASSES.items() if name not in SIGNALS}
REMOTE = [cls for cls in ERRORS.values() if issubclass(cls, RemoteError) and cls not in ABSTRACT]
LOCAL = [cls for cls in ERRORS.values() if issubclass(cls, LocalError) and cls not in ABSTRACT]


def test_the_walk_sees_every_layer() -> None:
    """The checks below would pass on nothing if the walk found nothing."""
    modules = {cls.__module__ for cls in CLASSES.values()}
    assert {"relsec_p2p.core.errors", "relsec_p2p.core.save", "relsec_p2p.net.link"} <= modules
    assert len(ERRORS) >= 35


def test_every_exception_is_a_relsec_error_on_exactly_one_side() -> None:
    for name, cls in ERRORS.items():
        assert issubclass(cls, RelsecError), f"{name} is outside RelsecError"
        if cls in (RelsecError, LocalError, RemoteError):
            continue
        local, remote = issubclass(cls, LocalError), issubclass(cls, RemoteError)
        assert local != remote, f"{name}: local={local}, remote={remote}"


def test_the_sides_hold_what_they_say() -> None:
    assert issubclass(EntryRefused, LocalProtocolError)
    # A person's input or this laptop's environment: local, but no API misuse.
    for cls in (SaveError, TemplateError, BadJoinCode, DiscoveryError):
        assert issubclass(cls, LocalError) and not issubclass(cls, LocalProtocolError), cls
    # A peer going away: remote, but no bytes broke the protocol.
    assert issubclass(LinkClosed, RemoteError)
    assert not issubclass(LinkClosed, RemoteProtocolError)


def test_every_remote_error_has_its_own_stable_code_named_in_the_spec() -> None:
    codes: dict[str, str] = {}
    for cls in REMOTE:
        code = cls.__dict__.get("code")
        assert isinstance(code, str), f"{_name(cls)} inherits its code"
        assert _CODE.fullmatch(code), f"{_name(cls)}: {code!r}"
        assert code not in codes, f"{_name(cls)} and {codes[code]} share {code!r}"
        codes[code] = _name(cls)
        assert f"`{code}`" in SPEC, f"protocol/SPEC.md does not name {code!r}"
    assert {"malformed", "bad_round_message", "not_a_member", "link_closed"} <= set(codes)


def test_no_local_error_reads_as_a_remote_one() -> None:
    """A log or a script must never blame a peer for this laptop's error."""
    remote = {cls.__dict__["code"] for cls in REMOTE}
    for cls in LOCAL:
        code = getattr(cls, "code", None)
        assert isinstance(code, str) and _CODE.fullmatch(code), _name(cls)
        assert code not in remote, f"{_name(cls)} uses the remote code {code!r}"


def _raised_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name):
                names.add(exc.id)
            elif isinstance(exc, ast.Attribute):
                names.add(exc.attr)
    return names


def test_the_root_and_the_sides_are_never_raised_bare() -> None:
    abstract = {cls.__name__ for cls in ABSTRACT}
    for path in sorted(PACKAGE.rglob("*.py")):
        raised = _raised_names(ast.parse(path.read_text(encoding="utf-8")))
        assert not raised & abstract, f"{path.relative_to(ROOT)} raises {raised & abstract}"


def test_signals_never_leave_their_module() -> None:
    for name in SIGNALS:
        assert name in CLASSES, f"{name} is gone: delete it from SIGNALS"
        cls = CLASSES[name]
        assert not issubclass(cls, RelsecError), f"{name} is an error now: delete it from SIGNALS"
        home = PACKAGE.joinpath(*cls.__module__.split(".")[1:]).with_suffix(".py")
        assert f"except {cls.__name__}" in home.read_text(encoding="utf-8"), name
        for path in PACKAGE.rglob("*.py"):
            if path != home:
                assert cls.__name__ not in path.read_text(encoding="utf-8"), (name, path)
