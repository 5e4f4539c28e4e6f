"""Checks of single fields, and parsing of the structured ones.

Rules of this file (normative text: protocol/SPEC.md §6.0 conventions, §6.1
names, §6.3 agenda and settings, §6.5 the cut):
- Every check is pure and total: any decoded value, of any type, gives an
  answer and never raises (a list where a key belongs must not crash a fold).
- The predicates (``is_*``, ``has_only``) answer yes or no; the parsers return
  the parsed value or the phrase saying what is wrong (``parse_cut``: None).
- The lookups at the end resolve a field against the meeting (an existing
  step, an open poll, a known contribution, a current member as author) and
  return a ``Refused`` when it names nothing usable; the entry rules
  (core/rules.py) and the anonymous rules (core/anon_rules.py) share them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from nacl import bindings

from .charset import is_blank, is_name_forbidden
from .codec import pack
from .feed import HASH_BYTES, Entry
from .identity import KEY_BYTES
from .refusals import Refusal, Refused
from .state import (
    DEFAULT_SETTINGS,
    KINDS,
    MAX_AGENDA_BYTES,
    MAX_HELP,
    MAX_MEMBERS,
    MAX_NAME,
    MAX_PROMPT,
    MAX_REASON,
    MAX_SCALE,
    MAX_STEPS,
    MAX_TAG,
    MAX_TITLE,
    MAX_TRANSLATIONS,
    MODES,
    REASON_CHOICES,
    MeetingState,
    Poll,
    Step,
)

# --- predicates --------------------------------------------------------------


def is_text(value: Any, limit: int, *, empty: bool = False) -> bool:
    """text(n) of SPEC §6.0: whitespace is charset.WHITESPACE, never Unicode tables."""
    return isinstance(value, str) and (empty or not is_blank(value)) and len(value) <= limit


def check_reason(data: dict[str, Any]) -> Refused | None:
    """A vote's optional reason (SPEC §6.5): one line of 1 to ``MAX_REASON``
    characters, with a concern or a block only. The same rule for named votes
    (``vote.cast``) and anonymous ones (§13.3)."""
    if "reason" not in data:
        return None
    reason = data["reason"]
    if not is_text(reason, MAX_REASON) or "\n" in reason or "\r" in reason:
        return Refused(Refusal.BAD_TEXT, f"a reason is one line of 1 to {MAX_REASON} characters")
    if data.get("choice") not in REASON_CHOICES:
        return Refused(Refusal.BAD_FIELDS, "a reason goes with a concern or a block only")
    return None


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a display name (SPEC §6.1), or None: the one
    name rule, for the fold (``meeting.create``, ``roster.add``), the join
    handshake and the screens that ask for a name."""
    if not isinstance(name, str):
        return "the name must be text"
    if is_blank(name):
        return "the name is empty"
    if len(name) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    if any(is_name_forbidden(char) for char in name):
        return "the name contains control or invisible characters"
    return None


def is_uint(value: Any, limit: int = (1 << 32) - 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def is_hash(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def is_key(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == KEY_BYTES


def is_ring_point(value: Any) -> bool:
    # A ring key must be a canonical point of the prime-order subgroup, or a
    # ring signature over it could be forged or made linkable (research notes).
    return is_key(value) and bool(bindings.crypto_core_ed25519_is_valid_point(value))


def has_only(data: dict[str, Any], required: Iterable[str], optional: Iterable[str] = ()) -> bool:
    keys = set(data)
    needed = set(required)
    return needed <= keys <= needed | set(optional)


# --- the agenda and the settings (SPEC §6.3) ----------------------------------


def parse_step(raw: Any) -> Step | str:
    """A step of the agenda, or the reason it is invalid."""
    if not isinstance(raw, dict):
        return "a step is a map"
    if not has_only(
        raw, ("id", "title", "prompt", "mode", "kind"), ("help", "scale", "links", "translations")
    ):
        return (
            "a step has id, title, prompt, mode, kind and optionally help, scale, links, "
            "translations"
        )
    if not is_text(raw["id"], MAX_TAG) or not is_text(raw["title"], MAX_TITLE):
        return "step id and title must be short non-empty text"
    if not is_text(raw["prompt"], MAX_PROMPT) or not is_text(
        raw.get("help", ""), MAX_HELP, empty=True
    ):
        return "step prompt or help too long or empty"
    if raw["mode"] not in MODES or raw["kind"] not in KINDS:
        return "unknown step mode or kind"
    scale = raw.get("scale", [])
    if not isinstance(scale, list) or not all(is_text(label, MAX_TAG) for label in scale):
        return "scale must be a list of short labels"
    if (raw["kind"] == "rating") != (2 <= len(scale) <= MAX_SCALE):
        return "a rating step has 2 to 11 scale labels, other kinds none"
    links = raw.get("links", [])
    if not isinstance(links, list) or not all(is_text(link, MAX_TAG) for link in links):
        return "links must be a list of step ids"
    translations = parse_translations(raw.get("translations", {}), len(scale))
    if isinstance(translations, str):
        return translations
    return Step(
        id=raw["id"],
        title=raw["title"],
        prompt=raw["prompt"],
        help=raw.get("help", ""),
        mode=raw["mode"],
        kind=raw["kind"],
        scale=list(scale),
        links=list(links),
        translations=translations,
    )


_LANGUAGE_TAG = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,15}")


def is_language_tag(value: Any) -> bool:
    """A language tag (SPEC §6.3): 2 to 16 ASCII letters, digits or hyphens,
    starting with a letter ("es", "pt-BR")."""
    # ASCII classes spelt out: no rule reads a Unicode table (SPEC §6.0).
    return isinstance(value, str) and _LANGUAGE_TAG.fullmatch(value) is not None


def parse_translations(raw: Any, scale_length: int) -> dict[str, dict[str, Any]] | str:
    """A step's ``translations`` (SPEC §6.3): language tag -> some of title,
    prompt, help and scale, each with the limits of the step's own field and
    a scale of as many labels as the step's."""
    if not isinstance(raw, dict) or len(raw) > MAX_TRANSLATIONS:
        return f"translations are a map of at most {MAX_TRANSLATIONS} languages"
    parsed: dict[str, dict[str, Any]] = {}
    for language, text in raw.items():
        if not is_language_tag(language):
            return "a translation's language is a tag like es or pt-BR"
        if not isinstance(text, dict) or not has_only(
            text, (), ("title", "prompt", "help", "scale")
        ):
            return "a translation has some of title, prompt, help, scale"
        if "title" in text and not is_text(text["title"], MAX_TITLE):
            return "a translated title must be short non-empty text"
        if "prompt" in text and not is_text(text["prompt"], MAX_PROMPT):
            return "a translated prompt must be non-empty text of at most 2000 characters"
        if "help" in text and not is_text(text["help"], MAX_HELP, empty=True):
            return "a translated help is text of at most 4000 characters"
        if "scale" in text and not (
            isinstance(text["scale"], list)
            and len(text["scale"]) == scale_length > 0
            and all(is_text(label, MAX_TAG) for label in text["scale"])
        ):
            return "a translated scale has as many short labels as the step's scale"
        parsed[language] = {
            key: list(value) if isinstance(value, list) else value for key, value in text.items()
        }
    return parsed


def parse_agenda(raw: Any) -> list[Step] | str:
    if not isinstance(raw, list) or len(raw) > MAX_STEPS:
        return f"the agenda is a list of at most {MAX_STEPS} steps"
    steps: list[Step] = []
    for item in raw:
        step = parse_step(item)
        if isinstance(step, str):
            return step
        steps.append(step)
    ids = [step.id for step in steps]
    if len(set(ids)) != len(ids):
        return "step ids must be unique"
    for step in steps:
        if any(link not in ids or link == step.id for link in step.links):
            return f"step {step.id!r} links to a step that does not exist"
    # Checked last, on steps already known to be maps of str and lists of
    # str, so pack cannot fail: the bytes are those of the agenda in the body.
    size = len(pack(raw))
    if size > MAX_AGENDA_BYTES:
        return f"the agenda takes {size} bytes, at most {MAX_AGENDA_BYTES}"
    return steps


def parse_settings(raw: Any) -> dict[str, Any] | str:
    if not isinstance(raw, dict) or not set(raw) <= set(DEFAULT_SETTINGS):
        return f"settings are a map with keys among {', '.join(DEFAULT_SETTINGS)}"
    settings = dict(DEFAULT_SETTINGS)
    settings.update(raw)
    if not (is_uint(settings["quorum_pct"], 100) and settings["quorum_pct"] >= 1):
        return "quorum_pct is a whole percentage from 1 to 100"
    if not is_uint(settings["stand_aside_limit"], MAX_MEMBERS):
        return "stand_aside_limit is a whole number"
    if not (is_uint(settings["anon_threshold"], MAX_MEMBERS) and settings["anon_threshold"] >= 1):
        return "anon_threshold is a whole number from 1"
    if not isinstance(settings["attribute_named"], bool):
        return "attribute_named is true or false"
    return settings


# --- the cut of poll.close ---------------------------------------------------

MAX_CUT = 1024  # every member ever in the roster, at most (SPEC §6.5)


def parse_cut(raw: Any) -> dict[bytes, int] | None:
    if not isinstance(raw, list) or len(raw) > MAX_CUT:
        return None
    cut: dict[bytes, int] = {}
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and is_key(item[0]) and is_uint(item[1])):
            return None
        if item[0] in cut:
            return None
        cut[item[0]] = item[1]
    return cut


# --- fields that name something in the meeting --------------------------------


def check_member(state: MeetingState, entry: Entry) -> Refused | None:
    """The author field: only current members act (SPEC §6.0)."""
    if not state.is_member(entry.author):
        return Refused(Refusal.NOT_A_CURRENT_MEMBER, "author is not a current member")
    return None


def step_index(state: MeetingState, value: Any) -> int | None:
    if is_uint(value) and value < len(state.steps):
        return int(value)
    return None


def opened_step(state: MeetingState, value: Any) -> Step | Refused:
    """A step that takes input: any step opened so far, the current one or an
    earlier one, so an answer racing a step change is not lost (SPEC §6.4)."""
    index = step_index(state, value)
    if index is None:
        return Refused(Refusal.NO_SUCH_STEP, "no such step")
    step = state.steps[index]
    if step.status == "pending":
        return Refused(Refusal.STEP_NOT_OPENED, "that step has not been opened yet")
    return step


def check_ref(state: MeetingState, step: Step, ref: Any) -> Refused | None:
    # An anonymous answer can be the thing an answer or rating is about, as
    # a named one can (SPEC §6.4); its id is its item id (§13.3).
    target_step = state.item_step(ref) if is_hash(ref) else None
    if target_step is None:
        return Refused(Refusal.BAD_REF, "ref names no known contribution")
    target = state.steps[target_step]
    if target.id not in step.links and target.id != step.id:
        return Refused(Refusal.BAD_REF, "ref must point into this step or a step it links to")
    return None


def known_poll(state: MeetingState, value: Any) -> Poll | Refused:
    poll = state.polls.get(value) if is_hash(value) else None
    if poll is None:
        return Refused(Refusal.NO_SUCH_POLL, "no such poll")
    return poll


def open_poll(state: MeetingState, value: Any) -> Poll | Refused:
    poll = known_poll(state, value)
    if isinstance(poll, Poll) and poll.status != "open":
        return Refused(Refusal.POLL_CLOSED, "the poll is closed")
    return poll
