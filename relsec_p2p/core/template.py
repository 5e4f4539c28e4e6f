"""Meeting templates: a TOML text in, a checked ``Template`` out (pure, no file access).

Rules of this file:
- A template is data, written by people who are not programmers: every
  problem becomes one ``TemplateError`` sentence naming the file, the line and
  what to change. Unknown keys are errors, so a typo never passes silently.
- What goes into ``meeting.create`` (``Template.agenda``, ``Template.settings``)
  is checked again with the fold's own ``parse_agenda``/``parse_settings``, and
  must fit in one log entry; the extras (``about``, ``tags``, ``guide``,
  matrices, the credit) stay on this laptop and in the record.
- A template may carry its texts in several languages (``languages``, and a
  table per extra language beside each text: ``[es]``, ``[steps.es]``,
  ``[matrix.es]``). The plain keys are in the first language; any text a
  language leaves out falls back to them. The agenda carries every language
  (SPEC §6.3 "Translations"); ``in_language`` gives the copy a laptop shows.
- The format is described in ``relsec_p2p/templates/README.md``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any

from .charset import is_blank
from .codec import pack
from .errors import LocalError
from .fields import is_language_tag, parse_agenda, parse_settings
from .i18n import primary
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
    MAX_TRANSLATIONS,
    MODES,
    Step,
)

FORMAT = 1
MAX_SUMMARY = 600
MAX_CREDIT = 1000
MAX_GUIDE = 2000
MAX_TAGS = 12
MAX_FILE_BYTES = 256 * 1024

TOP_KEYS = ("format", "languages", "title", "summary", "credit", "settings", "steps", "matrix")
TOP_TEXT_KEYS = ("title", "summary", "credit")  # what a top-level [<language>] table holds
STEP_TEXT_KEYS = ("title", "prompt", "help", "guide", "scale", "tags")  # a [steps.<language>]
MATRIX_TEXT_KEYS = ("title",)  # a [matrix.<language>]
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
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")  # "es", "pt-BR"
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


def choose_language(available: tuple[str, ...] | list[str], wanted: str) -> str | None:
    """Which of ``available`` to show a person who reads ``wanted``: the same
    tag, else the first with the same primary language ("pt-BR" for "pt");
    None when there is none (then the first language's text is shown)."""
    if wanted in available:
        return wanted
    base = primary(wanted)
    return next((tag for tag in available if primary(tag) == base), None)


@dataclass(frozen=True, slots=True)
class StepText:
    """A step's texts in one extra language; "" or () where it gives none."""

    title: str = ""
    prompt: str = ""
    help: str = ""
    guide: str = ""
    scale: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def for_agenda(self) -> dict[str, Any]:
        """What of it travels in the agenda (SPEC §6.3): never guide or tags."""
        text: dict[str, Any] = {}
        for key in ("title", "prompt", "help"):
            if getattr(self, key):
                text[key] = getattr(self, key)
        if self.scale:
            text["scale"] = list(self.scale)
        return text


@dataclass(frozen=True, slots=True)
class TemplateText:
    """The template's own texts in one extra language."""

    title: str = ""
    summary: str = ""
    credit: str = ""


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
    texts: dict[str, StepText] = field(default_factory=dict, hash=False)  # extra languages
    # How the facilitator's screen offers to open polls on a "both" proposal
    # step first: "named" or "anonymous" (SPEC §6.5 poll.open). A default
    # only: the facilitator chooses each time, and it is never sent.
    poll: str = "named"

    def in_language(self, language: str) -> TemplateStep:
        """This step as a person reading ``language`` sees it: that language's
        texts where the template has them, the first language's elsewhere."""
        chosen = choose_language(tuple(self.texts), language)
        if chosen is None:
            return self
        text = self.texts[chosen]
        return replace(
            self,
            title=text.title or self.title,
            prompt=text.prompt or self.prompt,
            help=text.help or self.help,
            guide=text.guide or self.guide,
            scale=text.scale or self.scale,
            tags=text.tags or self.tags,
        )

    def tag_label(self, tag: str, language: str) -> str:
        """A contribution's ``tag`` as ``language`` shows it: the log keeps
        whichever label its writer's laptop sent, in any of the languages."""
        shown = self.in_language(language).tags
        for labels in (self.tags, *(t.tags for t in self.texts.values())):
            if tag in labels and len(labels) == len(shown):
                return shown[labels.index(tag)]
        return tag

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
        translations = {
            language: text.for_agenda()
            for language, text in self.texts.items()
            if text.for_agenda()
        }
        if translations:
            step["translations"] = translations
        return step


@dataclass(frozen=True, slots=True)
class Matrix:
    """Two rating steps about the same items, shown as one grid of medians."""

    title: str
    rows: str
    columns: str
    titles: dict[str, str] = field(default_factory=dict, hash=False)  # extra languages

    def in_language(self, language: str) -> Matrix:
        chosen = choose_language(tuple(self.titles), language)
        return self if chosen is None else replace(self, title=self.titles[chosen])


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
    # The languages it is written in, the first one that of its plain keys;
    # () for a template that does not say (one language, whichever it is).
    languages: tuple[str, ...] = ()
    texts: dict[str, TemplateText] = field(default_factory=dict, hash=False)

    def in_language(self, language: str) -> Template:
        """The template as a person reading ``language`` sees it (display
        only: start meetings with the template as loaded, whose agenda
        carries every language)."""
        chosen = choose_language(tuple(self.texts), language)
        text = self.texts[chosen] if chosen is not None else TemplateText()
        return replace(
            self,
            title=text.title or self.title,
            summary=text.summary or self.summary,
            credit=text.credit or self.credit,
            steps=tuple(step.in_language(language) for step in self.steps),
            matrices=tuple(matrix.in_language(language) for matrix in self.matrices),
        )

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
        step.translations,
    )


def step_in_language(step: Step, language: str) -> Step:
    """A step of the meeting as a person reading ``language`` sees it: its
    translation's fields where it has that language (SPEC §6.3), its own
    elsewhere. A copy for display; the state is never changed."""
    chosen = choose_language(tuple(step.translations), language)
    if chosen is None:
        return step
    text = step.translations[chosen]
    return replace(
        step,
        title=text.get("title", step.title),
        prompt=text.get("prompt", step.prompt),
        help=text.get("help", step.help),
        scale=list(text.get("scale", step.scale)),
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

    def subtable(self, table: str, index: int, sub: str) -> int | None:
        """The line of ``[table.sub]`` belonging to the ``index``-th ``[[table]]``."""
        start = self.table(table, index)
        if start is None:
            return None
        later = [number for number, name in self.headers if number > start and name == table]
        end = later[0] if later else len(self.lines) + 1
        for number, name in self.headers:
            if start < number < end and name == f"{table}.{sub}":
                return number
        return start

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
        self.extra: tuple[str, ...] = ()  # the languages after the first

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

    def languages(self, data: dict[str, Any]) -> tuple[str, ...]:
        """``languages = ["en", "es"]``: the first is the plain keys' language,
        each other one may have a table of its own beside each text."""
        raw = data.get("languages")
        if raw is None:
            return ()
        line = self.where.key("languages")
        if (
            not isinstance(raw, list)
            or not raw
            or not all(_LANGUAGE.fullmatch(str(tag)) and is_language_tag(tag) for tag in raw)
        ):
            raise self.fail(
                line,
                "languages must be a list of language tags, the plain texts' first, like "
                'languages = ["en", "es", "pt-BR"]',
            )
        if len(set(raw)) != len(raw):
            raise self.fail(line, "languages lists the same language twice")
        for tag in raw:
            if tag in (*TOP_KEYS, *STEP_KEYS, *MATRIX_KEYS):
                raise self.fail(
                    line,
                    f"the language tag {tag!r} is also a key's name; write it with its "
                    f"region, like {tag}-{tag.upper()}",
                )
        if len(raw) > MAX_TRANSLATIONS + 1:
            raise self.fail(
                line, f"languages lists {len(raw)}; at most {MAX_TRANSLATIONS + 1} are allowed"
            )
        self.extra = tuple(raw[1:])
        return tuple(raw)

    def translated(
        self,
        raw: dict[str, Any],
        language: str,
        keys: tuple[str, ...],
        line: int | None,
        where: str,
    ) -> dict[str, Any]:
        """The ``[<where>.<language>]`` table: known keys only, each a text."""
        table = raw.get(language)
        if table is None:
            return {}
        if not isinstance(table, dict):
            raise self.fail(line, f"{language} {where} must be a table: [{language}]")
        for key in table:
            if key not in keys:
                raise self.fail(
                    line,
                    f"unknown key {key!r} in the {language} texts {where}; "
                    f"they may have {', '.join(keys)}",
                )
        return dict(table)

    def top(self, data: dict[str, Any]) -> None:
        known = (*TOP_KEYS, *self.extra_candidates(data))
        for key in data:
            if key not in known:
                hint = (
                    "; a table of texts in another language needs it listed in languages = [...]"
                    if is_language_tag(key) and isinstance(data[key], dict)
                    else ""
                )
                raise self.fail(
                    self.where.key(key) or self.where.table(key),
                    f"unknown key {key!r}; a template has {', '.join(TOP_KEYS)}{hint}",
                )
        if "format" in data and data["format"] != FORMAT:
            raise self.fail(
                self.where.key("format"),
                f"format {data['format']!r} is not one this program reads; use format = {FORMAT}",
            )

    def extra_candidates(self, data: dict[str, Any]) -> tuple[str, ...]:
        raw = data.get("languages")
        if isinstance(raw, list) and len(raw) > 1:
            return tuple(tag for tag in raw[1:] if isinstance(tag, str))
        return ()

    def template_texts(self, data: dict[str, Any]) -> dict[str, TemplateText]:
        texts: dict[str, TemplateText] = {}
        for language in self.extra:
            line = self.where.table(language) or self.where.key(language)
            table = self.translated(data, language, TOP_TEXT_KEYS, line, "of the template")
            if not table:
                continue
            of = f" of the template in {language}"
            texts[language] = TemplateText(
                title=self.text(table, "title", MAX_TITLE, line, required=False, what=of),
                summary=self.text(table, "summary", MAX_SUMMARY, line, required=False, what=of),
                credit=self.text(table, "credit", MAX_CREDIT, line, required=False, what=of),
            )
        return texts

    def step_texts(
        self, index: int, raw: dict[str, Any], ident: str, scale: int, tags: int
    ) -> dict[str, StepText]:
        texts: dict[str, StepText] = {}
        for language in self.extra:
            line = self.where.subtable("steps", index, language)
            table = self.translated(raw, language, STEP_TEXT_KEYS, line, f"of step {ident!r}")
            if not table:
                continue
            of = f" of step {ident!r} in {language}"
            step_text = StepText(
                title=self.text(table, "title", MAX_TITLE, line, required=False, what=of),
                prompt=self.text(table, "prompt", MAX_PROMPT, line, required=False, what=of),
                help=self.text(table, "help", MAX_HELP, line, required=False, what=of),
                guide=self.text(table, "guide", MAX_GUIDE, line, required=False, what=of),
                scale=self.translated_labels(table, "scale", scale, line, of, MAX_SCALE),
                tags=self.translated_labels(table, "tags", tags, line, of, MAX_TAGS),
            )
            texts[language] = step_text
        return texts

    def translated_labels(
        self, table: dict[str, Any], key: str, count: int, line: int | None, of: str, limit: int
    ) -> tuple[str, ...]:
        if key not in table:
            return ()
        labels = self.labels(table[key], line, f"the {key}{of}", limit)
        if len(labels) != count:
            raise self.fail(
                line,
                f"the {key}{of} has {len(labels)} labels and the first language's has {count}; "
                "give one label for each, in the same order",
            )
        return labels

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
            if key not in STEP_KEYS and key not in self.extra:
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
        texts = self.step_texts(index, raw, ident, len(scale), len(tags))
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
            texts=texts,
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
                if key not in MATRIX_KEYS and key not in self.extra:
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
            titles: dict[str, str] = {}
            for language in self.extra:
                line = self.where.subtable("matrix", index, language)
                table = self.translated(item, language, MATRIX_TEXT_KEYS, line, "of a matrix")
                if table:
                    titles[language] = self.text(
                        table, "title", MAX_TITLE, line, what=f" of a matrix in {language}"
                    )
            found.append(Matrix(title, rows.id, columns.id, titles))
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
    languages = parser.languages(data)
    texts = parser.template_texts(data)
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
        languages=languages,
        texts=texts,
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
    "StepText",
    "Template",
    "TemplateError",
    "TemplateStep",
    "TemplateText",
    "choose_language",
    "parse_template",
    "step_in_language",
]
