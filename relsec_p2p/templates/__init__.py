"""The built-in meeting templates, and loading a group's own template file.

Rules of this file: file access only; checking is ``core.template``'s job.
A name without a path separator or ``.toml`` picks a built-in template;
anything else is a file path. Every failure is a ``TemplateError`` whose
message names the file, the line and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ..core.i18n import current_language
from ..core.state import MeetingState
from ..core.template import MAX_FILE_BYTES, Template, TemplateError, parse_template

_PACKAGE = "relsec_p2p.templates"


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    name: str
    title: str
    summary: str
    credit: str


@cache
def _builtin(name: str) -> Template:
    resource = resources.files(_PACKAGE) / f"{name}.toml"
    return parse_template(
        resource.read_text(encoding="utf-8"), f"{name}.toml (built-in)", name=name
    )


def _builtin_names() -> list[str]:
    return sorted(
        entry.name[: -len(".toml")]
        for entry in resources.files(_PACKAGE).iterdir()
        if entry.name.endswith(".toml")
    )


def builtin_templates() -> list[TemplateInfo]:
    """Every built-in template, by name, in the language shown now."""
    found = []
    for name in _builtin_names():
        template = _builtin(name).in_language(current_language())
        found.append(TemplateInfo(name, template.title, template.summary, template.credit))
    return found


def load_template(name_or_path: str) -> Template:
    """A built-in template by name, or a group's own file by path."""
    if name_or_path in _builtin_names():
        return _builtin(name_or_path)
    path = Path(name_or_path)
    looks_like_path = path.suffix == ".toml" or len(path.parts) > 1
    if not looks_like_path:
        names = ", ".join(_builtin_names())
        raise TemplateError(
            name_or_path,
            None,
            f"there is no built-in template of that name (built-in: {names}); "
            "for your own file give its path, ending in .toml",
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise TemplateError(str(path), None, "no such file; check the path") from None
    except IsADirectoryError:
        raise TemplateError(str(path), None, "this is a folder, not a template file") from None
    except OSError as error:
        raise TemplateError(
            str(path), None, f"the file cannot be read ({error.strerror or 'error'})"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise TemplateError(
            str(path), line, "the file is not UTF-8 text; save it as UTF-8"
        ) from None
    return parse_template(text, str(path))


def template_for(state: MeetingState) -> Template | None:
    """The built-in template whose agenda this meeting has, if any: lets a
    member who joined (and never loaded the file) show its credit and guidance."""
    for name in _builtin_names():
        template = _builtin(name)
        if template.matches(state.steps):
            return template
    return None


__all__ = [
    "TemplateError",
    "TemplateInfo",
    "builtin_templates",
    "load_template",
    "template_for",
]
