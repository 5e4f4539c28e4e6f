"""Meeting templates: a TOML text in, a checked ``Template`` out (pure, no file access).

Rules of this file:
- A template is data, written by people who are not programmers: every
  problem becomes one ``TemplateError`` sentence naming the file, the line and
  what to change. Unknown keys are errors, so a typo never passes silently.
- What goes into ``meeting.create`` (``Template.agenda``, ``Template.settings``)
  is checked again with the fold's own ``parse_agenda``/``parse_settings``, and
  must fit in one log entry; the extras (``about``, ``tags``, ``guide``,
  matrices, the credit) stay on this laptop and in the record.
- The format is described in ``relsec_p2p/templates/README.md``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .charset import is_blank
from .codec import pack
from .errors import LocalError
from .fields import parse_agenda, parse_settings
from .state import (
    DEFAULT_SETTINGS,
    KINDS,
    MAX_AGENDA_BYTES,
    MAX_HELP,
    MAX_PROMPT,
    MAX_SCALE,
    MAX_STEPS,
    MAX_TAG,
    MAX_TITLE,
    MODES,
    Step,
)

FORMAT = 1
MAX_SUMMARY = 600
MAX_CREDIT = 1000
MAX_GUIDE = 2000
MAX_TAGS = 12
MAX_FILE_BYTES = 256 * 1024

TOP_KEYS = ("format", "title", "summary", "credit", "settings", "steps", "matrix")
STEP_KEYS = (
    "id",
    "title",
    "prompt",
    "help",
    "mode",
    "kind",
    "scale",
    "links",
    "about",
    "tags",
    "guide",
    "poll",
)
MATRIX_KEYS = ("title", "rows", "columns")
_STEP_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


class TemplateError(LocalError):
    """A template file cannot be used; ``str()`` names the file, the line and the problem."""

    code = "template"

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {problem.rstrip('.')}.")
        self.source = source
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TemplateStep:
    id: str
    title: str
    prompt: str
    help: str
    mode: str
    kind: str
    scale: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    # Each answer (contribution, rating or proposal) is about one item of
    # this step: the UI asks which one, and the record groups by it.
    about: str | None = None
    tags: tuple[str, ...] = ()  # labels offered for each answer (contribution tag)
    guide: str = ""  # a note for the facilitator; never sent to the meeting
    # How the facilitator's screen offers to open polls on a "both" proposal
    # step first: "named" or "anonymous" (SPEC §6.5 poll.open). A default
    # only: the facilitator chooses each time, and it is never sent.
    poll: str = "named"

    def to_agenda(self) -> dict[str, Any]:
        """The step as ``meeting.create`` carries it (``fields.parse_step``'s shape)."""
        step: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "prompt": self.prompt,
            "mode": self.mode,
            "kind": self.kind,
        }
        if self.help:
            step["help"] = self.help
        if self.scale:
            step["scale"] = list(self.scale)
        if self.links:
            step["links"] = list(self.links)
        return step


@dataclass(frozen=True, slots=True)
class Matrix:
    """Two rating steps about the same items, shown as one grid of medians."""

    title: str
    rows: str
    columns: str


@dataclass(frozen=True, slots=True)
class Template:
    name: str  # the file's stem: how people pick it (``--template NAME``)
    source: str  # where it came from, for messages
    title: str
    summary: str
    credit: str
    settings: dict[str, Any] = field(hash=False)
    steps: tuple[TemplateStep, ...]
    matrices: tuple[Matrix, ...] = ()
    text: str = field(default="", repr=False, compare=False)  # the TOML, kept for saves

    @property
    def agenda(self) -> list[dict[str, Any]]:
        return [step.to_agenda() for step in self.steps]

    def step(self, step_id: str) -> TemplateStep | None:
        return next((step for step in self.steps if step.id == step_id), None)

    def matches(self, steps: list[Step]) -> bool:
        """Whether a meeting's agenda is exactly this template's (so a member
        who joined can show the template's credit and guidance)."""
        parsed = parse_agenda(self.agenda)
        return not isinstance(parsed, str) and [_step_key(s) for s in parsed] == [
            _step_key(s) for s in steps
        ]

    def agenda_size(self) -> int:
        """Bytes the agenda takes in ``meeting.create`` (SPEC §6.3: at most
        MAX_AGENDA_BYTES, which leaves room for any title, name and settings)."""
        return len(pack(self.agenda))


def _step_key(step: Step) -> tuple[Any, ...]:
    return (
        step.id,
        step.title,
        step.prompt,
        step.help,
        step.mode,
        step.kind,
        step.scale,
        step.links,
    )


# --- finding lines -------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]\s]+)\s*\]\]?\s*(#.*)?$")


class _Lines:
    """Where tables and keys are in the text, so a problem found after
    parsing can still name its line. A heuristic over the raw lines: exact for
    the ordinary layout (``[[steps]]`` tables, one key per line), and falling
    back to the enclosing table's line otherwise."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str]] = []  # (1-based line, table name)
        for number, line in enumerate(self.lines, start=1):
            match = _HEADER.match(line)
            if match:
                self.headers.append((number, match.group(2).strip("\"'")))

    def _region(self, table: str | None, index: int) -> tuple[int, int] | None:
        """1-based [start, end) lines of the ``index``-th ``table`` (None: top level)."""
        if table is None:
            end = self.headers[0][0] if self.headers else len(self.lines) + 1
            return (1, end)
        found = [i for i, (_, name) in enumerate(self.headers) if name == table]
        if index >= len(found):
            return None
        at = found[index]
        start = self.headers[at][0]
        end = self.headers[at + 1][0] if at + 1 < len(self.headers) else len(self.lines) + 1
        return (start, end)

    def table(self, table: str, index: int = 0) -> int | None:
        region = self._region(table, index)
        return None if region is None else region[0]

    def key(self, key: str, table: str | None = None, index: int = 0) -> int | None:
        region = self._region(table, index)
        if region is None:
            return self._anywhere(table or key)
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(region[0], region[1]):
            if pattern.match(self.lines[number - 1]):
                return number
        return None if table is None else region[0]

    def _anywhere(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number, line in enumerate(self.lines, start=1):
            if pattern.match(line):
                return number
        return None


# --- parsing -------------------------------------------------------------------


def _toml_error(source: str, error: tomllib.TOMLDecodeError) -> TemplateError:
    message = str(error)
    match = _TOML_POSITION.search(message)
    problem = message[: match.start()] if match else message
    problem = problem[:1].lower() + problem[1:]
    if match and match.group(1):
        return TemplateError(
            source,
            int(match.group(1)),
            f"{problem} (column {match.group(2)}); this is not valid TOML",
        )
    return TemplateError(source, None, f"{problem} at the end of the file; this is not valid TOML")


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.where = _Lines(text)

    def fail(self, line: int | None, problem: str) -> TemplateError:
        return TemplateError(self.source, line, problem)

    # -- small checks -----------------------------------------------------------

    def text(
        self,
        table: dict[str, Any],
        key: str,
        limit: int,
        line: int | None,
        *,
        required: bool = True,
        what: str = "",
    ) -> str:
        value = table.get(key)
        label = f"{key}{what}"
        if value is None:
            if required:
                raise self.fail(line, f'{label} is missing; add {key} = "..."')
            return ""
        if not isinstance(value, str):
            raise self.fail(line, f"{label} must be text in quotes")
        if required and is_blank(value):
            raise self.fail(line, f"{label} is empty")
        if len(value) > limit:
            raise self.fail(
                line, f"{label} is {len(value)} characters long; keep it under {limit + 1}"
            )
        return value

    def labels(self, value: Any, line: int | None, label: str, limit: int) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(line, f'{label} must be a list of quoted labels, like ["a", "b"]')
        for item in value:
            if is_blank(item) or len(item) > MAX_TAG:
                raise self.fail(line, f"each of {label} must be 1 to {MAX_TAG} characters")
        if len(set(value)) != len(value):
            raise self.fail(line, f"{label} lists the same label twice")
        if len(value) > limit:
            raise self.fail(line, f"{label} has {len(value)} labels; at most {limit} are allowed")
        return tuple(value)

    # -- the parts ----------------------------------------------------------------

    def top(self, data: dict[str, Any]) -> None:
        for key in data:
            if key not in TOP_KEYS:
                raise self.fail(
                    self.where.key(key) or self.where.table(key),
                    f"unknown key {key!r}; a template has {', '.join(TOP_KEYS)}",
                )
        if "format" in data and data["format"] != FORMAT:
            raise self.fail(
                self.where.key("format"),
                f"format {data['format']!r} is not one this program reads; use format = {FORMAT}",
            )

    def settings(self, raw: Any) -> dict[str, Any]:
        line = self.where.table("settings")
        if raw is None:
            return dict(DEFAULT_SETTINGS)
        if not isinstance(raw, dict):
            raise self.fail(self.where.key("settings"), "settings must be a table: [settings]")
        for key, value in raw.items():
            key_line = self.where.key(key, "settings") or line
            if key not in DEFAULT_SETTINGS:
                raise self.fail(
                    key_line,
                    f"unknown setting {key!r}; settings are {', '.join(DEFAULT_SETTINGS)}",
                )
            checked = parse_settings({key: value})
            if isinstance(checked, str):
                raise self.fail(key_line, checked)
        settings = parse_settings(dict(raw))
        if isinstance(settings, str):  # each key passed alone; together they must too
            raise self.fail(line, settings)
        return settings

    def steps(self, raw: Any) -> tuple[TemplateStep, ...]:
        if raw is None:
            raise self.fail(None, "the template has no steps; add at least one [[steps]] table")
        if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
            raise self.fail(self.where.key("steps"), "steps must be tables: [[steps]]")
        if not 1 <= len(raw) <= MAX_STEPS:
            raise self.fail(
                self.where.table("steps", MAX_STEPS) or self.where.key("steps"),
                f"a template has 1 to {MAX_STEPS} steps, this one has {len(raw)}",
            )
        steps = [self.step(index, item) for index, item in enumerate(raw)]
        self.check_references(steps)
        return tuple(steps)

    def step(self, index: int, raw: dict[str, Any]) -> TemplateStep:
        header = self.where.table("steps", index)

        def at(key: str) -> int | None:
            return self.where.key(key, "steps", index) or header

        for key in raw:
            if key not in STEP_KEYS:
                raise self.fail(
                    at(key), f"unknown key {key!r} in a step; a step has {', '.join(STEP_KEYS)}"
                )
        ident = raw.get("id")
        if not isinstance(ident, str) or not _STEP_ID.fullmatch(ident):
            raise self.fail(
                at("id"),
                f"step {index + 1} needs an id of 1 to 32 letters, digits, - or _, "
                'like id = "threats"',
            )
        of = f" of step {ident!r}"
        title = self.text(raw, "title", MAX_TITLE, at("title"), what=of)
        prompt = self.text(raw, "prompt", MAX_PROMPT, at("prompt"), what=of)
        help_text = self.text(raw, "help", MAX_HELP, at("help"), required=False, what=of)
        guide = self.text(raw, "guide", MAX_GUIDE, at("guide"), required=False, what=of)
        mode = raw.get("mode")
        if mode not in MODES:
            raise self.fail(
                at("mode"),
                f"unknown mode {mode!r} in step {ident!r}; use named, anonymous or both",
            )
        kind = raw.get("kind")
        if kind not in KINDS:
            raise self.fail(
                at("kind"),
                f"unknown kind {kind!r} in step {ident!r}; use text, rating or proposal",
            )
        scale: tuple[str, ...] = ()
        if kind == "rating":
            if "scale" not in raw:
                raise self.fail(
                    at("kind"),
                    f'rating step {ident!r} needs a scale, like scale = ["low", "medium", "high"]',
                )
            scale = self.labels(
                raw["scale"], at("scale"), f"the scale of step {ident!r}", MAX_SCALE
            )
            if len(scale) < 2:
                raise self.fail(at("scale"), f"the scale of step {ident!r} needs at least 2 labels")
        elif "scale" in raw:
            raise self.fail(at("scale"), f"only rating steps have a scale, and {ident!r} is {kind}")
        tags: tuple[str, ...] = ()
        if "tags" in raw:
            if kind != "text":
                raise self.fail(at("tags"), f"only text steps offer tags, and {ident!r} is {kind}")
            tags = self.labels(raw["tags"], at("tags"), f"the tags of step {ident!r}", MAX_TAGS)
        links: tuple[str, ...] = ()
        if "links" in raw:
            links = self.labels(
                raw["links"], at("links"), f"the links of step {ident!r}", MAX_STEPS
            )
        poll = raw.get("poll", "named")
        if poll not in ("named", "anonymous"):
            raise self.fail(at("poll"), f"poll in step {ident!r} is named or anonymous")
        if "poll" in raw and (kind != "proposal" or mode != "both"):
            raise self.fail(
                at("poll"),
                f"only a proposal step of mode both chooses its polls, and {ident!r} is not",
            )
        about = raw.get("about")
        if about is not None and not isinstance(about, str):
            raise self.fail(at("about"), f"about in step {ident!r} must be one step id in quotes")
        if about is not None and about not in links:
            links = (*links, about)  # answers about an item of that step refer to it
        return TemplateStep(
            id=ident,
            title=title,
            prompt=prompt,
            help=help_text,
            mode=str(mode),
            kind=str(kind),
            scale=scale,
            links=links,
            about=about,
            tags=tags,
            guide=guide,
            poll=str(poll),
        )

    def check_references(self, steps: list[TemplateStep]) -> None:
        seen: dict[str, int] = {}
        for index, step in enumerate(steps):
            if step.id in seen:
                raise self.fail(
                    self.where.key("id", "steps", index),
                    f"two steps have the id {step.id!r} "
                    f"(steps {seen[step.id] + 1} and {index + 1})",
                )
            seen[step.id] = index
        for index, step in enumerate(steps):
            for key in ("about", "links"):  # about first: it is also among the links
                targets = step.links if key == "links" else (step.about,) if step.about else ()
                for target in targets:
                    if target == step.id:
                        raise self.fail(
                            self.where.key(key, "steps", index),
                            f"step {step.id!r} links to itself; links name other steps",
                        )
                    if target not in seen:
                        raise self.fail(
                            self.where.key(key, "steps", index),
                            f"step {step.id!r} links to {target!r}, which is not a step in this "
                            f"template (steps: {', '.join(seen)})",
                        )

    def matrices(self, raw: Any, steps: tuple[TemplateStep, ...]) -> tuple[Matrix, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
            raise self.fail(self.where.key("matrix"), "matrix must be tables: [[matrix]]")
        by_id = {step.id: step for step in steps}
        found: list[Matrix] = []
        for index, item in enumerate(raw):
            header = self.where.table("matrix", index)

            def at(key: str, index: int = index, header: int | None = header) -> int | None:
                return self.where.key(key, "matrix", index) or header

            for key in item:
                if key not in MATRIX_KEYS:
                    raise self.fail(
                        at(key),
                        f"unknown key {key!r} in a matrix; a matrix has title, rows, columns",
                    )
            title = self.text(item, "title", MAX_TITLE, at("title"), what=" of a matrix")
            axes: list[TemplateStep] = []
            for key in ("rows", "columns"):
                target = by_id.get(str(item.get(key)))
                if target is None or target.kind != "rating":
                    raise self.fail(
                        at(key), f"the matrix's {key} must name a rating step of this template"
                    )
                axes.append(target)
            rows, columns = axes
            if rows.id == columns.id or rows.about is None or rows.about != columns.about:
                raise self.fail(
                    at("rows"),
                    "a matrix crosses two different rating steps that are about the same step "
                    "(give both the same about = ...)",
                )
            found.append(Matrix(title, rows.id, columns.id))
        return tuple(found)


def parse_template(text: str, source: str, *, name: str | None = None) -> Template:
    """Check a template's text; raise ``TemplateError`` naming ``source``, the
    line and the problem. ``name`` defaults to ``source``'s file stem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise TemplateError(
            source,
            None,
            f"the file is over {MAX_FILE_BYTES // 1024} KiB; a template's steps must fit in "
            f"one meeting entry ({MAX_AGENDA_BYTES:,} bytes), so keep prompts and help short",
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _toml_error(source, error) from None
    parser = _Parser(text, source)
    parser.top(data)
    title = parser.text(
        data, "title", MAX_TITLE, parser.where.key("title") or 1, what=" of the template"
    )
    summary = parser.text(data, "summary", MAX_SUMMARY, parser.where.key("summary"), required=False)
    credit = parser.text(data, "credit", MAX_CREDIT, parser.where.key("credit"), required=False)
    settings = parser.settings(data.get("settings"))
    steps = parser.steps(data.get("steps"))
    matrices = parser.matrices(data.get("matrix"), steps)
    stem = re.split(r"[\\/]", source)[-1]
    template = Template(
        name=name or (stem[: -len(".toml")] if stem.endswith(".toml") else stem),
        source=source,
        title=title,
        summary=summary,
        credit=credit,
        settings=settings,
        steps=steps,
        matrices=matrices,
        text=text,
    )
    # The agenda's total first (the fold's parse_agenda checks it too, but
    # only this loader can say which step to shorten), then the fold's own
    # checks as a last guard: what we hand to meeting.create must be exactly
    # what every laptop accepts.
    size = template.agenda_size()
    if size > MAX_AGENDA_BYTES:
        longest = max(range(len(steps)), key=lambda i: len(pack(steps[i].to_agenda())))
        raise parser.fail(
            parser.where.table("steps", longest),
            f"the steps take {size:,} bytes and one meeting holds at most "
            f"{MAX_AGENDA_BYTES:,}; shorten prompts and help, starting with the longest step "
            f"{steps[longest].id!r}, or split the agenda into two templates",
        )
    agenda = parse_agenda(template.agenda)
    if isinstance(agenda, str):
        raise parser.fail(parser.where.table("steps"), agenda)
    return template


__all__ = [
    "FORMAT",
    "Matrix",
    "Template",
    "TemplateError",
    "TemplateStep",
    "parse_template",
]
