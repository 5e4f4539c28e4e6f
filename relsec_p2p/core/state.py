"""The meeting as a deterministic fold of the log.

Rules of this file (normative text: protocol/SPEC.md §5 and §6):
- Entries are applied in ``(lam, author, seq)`` order. Each entry type has one
  rule in ``RULES``: a ``check`` that returns the reason the entry has no
  effect (or ``None``), and an ``apply`` that changes the state. ``check`` never
  mutates, so an ignored entry leaves the state exactly as it was.
- Every authority rule (who may open a step, close a poll, remove a member)
  lives here, not in the UI: a modified client can write any entry it likes,
  and every honest laptop ignores it the same way.
- The state holds only what follows from the log, so equal logs give equal
  states, and ``digest()`` gives equal bytes on every laptop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nacl import bindings

from . import ring, shuffle
from .codec import Limits, pack, unpack
from .errors import RemoteProtocolError
from .feed import HASH_BYTES, Entry
from .identity import KEY_BYTES
from .wordlist import WORDS

# --- vocabulary ------------------------------------------------------------

MODES = ("named", "anonymous", "both")
KINDS = ("text", "rating", "proposal")
CHOICES = ("agree", "concerns", "stand_aside", "block")
RESULTS = ("consensus", "blocked", "no_consensus", "no_quorum")

MAX_NAME = 64
MAX_TITLE = 200
MAX_PROMPT = 2000
MAX_HELP = 4000
MAX_TEXT = 4000
MAX_TAG = 32
MAX_STEPS = 64
MAX_SCALE = 11
MAX_MEMBERS = 256

DEFAULT_SETTINGS: dict[str, Any] = {
    "quorum_pct": 75,
    "stand_aside_limit": 2,
    "anon_threshold": 3,
    "attribute_named": True,
}


# --- state -----------------------------------------------------------------


@dataclass(slots=True)
class Member:
    key: bytes
    ring: bytes
    name: str
    order: int  # join order; the creator is 0
    active: bool = True
    gone: str | None = None  # "left" or "removed"
    upto: int | None = None  # last seq of theirs that counts, once gone


@dataclass(slots=True)
class Step:
    id: str
    title: str
    prompt: str
    help: str
    mode: str
    kind: str
    scale: list[str]
    links: list[str]
    status: str = "pending"  # pending | open | closed

    def allows_named(self) -> bool:
        return self.mode in ("named", "both")

    def allows_anonymous(self) -> bool:
        """Anonymous contributions: on anonymous and both steps (SPEC §13.4)."""
        return self.mode in ("anonymous", "both")

    def counts_anonymously(self) -> bool:
        """Ratings and votes go through one channel per step, so nobody is
        counted twice: anonymous only on anonymous steps (SPEC §13.4)."""
        return self.mode == "anonymous"


@dataclass(slots=True)
class Contribution:
    id: bytes
    step: int
    author: bytes
    text: str
    tag: str | None
    ref: bytes | None


@dataclass(slots=True)
class Proposal:
    id: bytes
    step: int
    author: bytes
    text: str


@dataclass(slots=True)
class Vote:
    author: bytes
    seq: int
    choice: str


@dataclass(slots=True)
class AnonVote:
    """An anonymous vote: its link tag (one per member per poll), the round it
    came in, and the log entry that released it (for the close's cut)."""

    tag: bytes
    choice: str
    round: int
    author: bytes
    seq: int


@dataclass(slots=True)
class AnonContribution:
    """An anonymous contribution: never an author, only the round that carried
    it, the active members then and the slots the round held."""

    id: bytes
    step: int
    text: str
    round: int
    members: int
    slots: int


@dataclass(slots=True)
class AnonRound:
    """A released round as the log records it (SPEC §13.4)."""

    rid: bytes
    ordinal: int
    members: int  # active members when its first entry was folded
    slots: int  # participants, one slot each
    applied: set[bytes] = field(default_factory=set)  # item ids folded so far


@dataclass(slots=True)
class PollResult:
    outcome: str
    counts: dict[str, int]
    voters: int
    members: int
    quorum: int
    stand_aside_limit: int

    def rule(self) -> str:
        """The rule that produced the outcome, in words people can check."""
        return (
            f"blocked if any block; no quorum if fewer than {self.quorum} of "
            f"{self.members} members vote; no consensus if more than "
            f"{self.stand_aside_limit} stand aside; otherwise consensus"
        )


@dataclass(slots=True)
class Poll:
    id: bytes
    proposal: bytes
    step: int
    status: str = "open"
    votes: list[Vote] = field(default_factory=list)  # every counted-so-far vote, fold order
    result: PollResult | None = None
    tally_digest: bytes | None = None  # what members co-sign once the poll closes
    cosigners: set[bytes] = field(default_factory=set)
    outcome: str | None = None  # the facilitator's record of what was decided
    anon_votes: list[AnonVote] = field(default_factory=list)  # fold order

    def latest_anonymous(self, cut: dict[bytes, int] | None = None) -> dict[bytes, str]:
        """Each link tag's latest anonymous vote (within ``cut`` if given)."""
        latest: dict[bytes, str] = {}
        for vote in self.anon_votes:
            if cut is None or vote.seq <= cut.get(vote.author, 0):
                latest[vote.tag] = vote.choice
        return latest

    def anonymous_tally(self, threshold: int) -> dict[str, int] | None:
        """Counts of the current anonymous votes, or None while fewer than
        ``threshold`` members have voted (docs/ARCHITECTURE.md §4 "Small groups leak")."""
        latest = self.latest_anonymous()
        if len(latest) < max(1, threshold):
            return None
        counts = dict.fromkeys(CHOICES, 0)
        for choice in latest.values():
            counts[choice] += 1
        return counts

    def latest_votes(self, cut: dict[bytes, int] | None = None) -> dict[bytes, str]:
        """Each member's latest vote (within ``cut`` if given): latest wins."""
        latest: dict[bytes, str] = {}
        for vote in self.votes:
            if cut is None or vote.seq <= cut.get(vote.author, 0):
                latest[vote.author] = vote.choice
        return latest

    def tally(self) -> dict[str, int]:
        counts = dict.fromkeys(CHOICES, 0)
        for choice in self.latest_votes().values():
            counts[choice] += 1
        return counts


@dataclass(slots=True)
class SpeakingQueue:
    waiting: list[bytes] = field(default_factory=list)
    speaker: bytes | None = None
    since_ms: int = 0
    talk_ms: dict[bytes, int] = field(default_factory=dict)
    turns: dict[bytes, int] = field(default_factory=dict)

    def end_turn(self, now_ms: int) -> None:
        if self.speaker is not None:
            spoken = max(0, now_ms - self.since_ms)
            self.talk_ms[self.speaker] = self.talk_ms.get(self.speaker, 0) + spoken
            self.speaker = None


@dataclass(slots=True)
class MeetingState:
    mid: bytes
    creator: bytes
    created: bool = False
    title: str = ""
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    members: dict[bytes, Member] = field(default_factory=dict)
    epoch: int = 0
    facilitator: bytes | None = None
    term: int = 0
    absent_votes: set[bytes] = field(default_factory=set)
    steps: list[Step] = field(default_factory=list)
    current: int | None = None
    contributions: list[Contribution] = field(default_factory=list)
    contribution_index: dict[bytes, Contribution] = field(default_factory=dict)
    ratings: dict[tuple[int, bytes | None, bytes], int] = field(default_factory=dict)
    proposals: dict[bytes, Proposal] = field(default_factory=dict)
    polls: dict[bytes, Poll] = field(default_factory=dict)
    queue: SpeakingQueue = field(default_factory=SpeakingQueue)
    named_counts: dict[bytes, int] = field(default_factory=dict)
    frozen: dict[bytes, int] = field(default_factory=dict)  # author -> fork seq
    join_code: tuple[int, tuple[str, ...]] | None = None  # secret: never exported or logged
    caps: dict[bytes, int] = field(default_factory=dict)  # removed author -> last seq counted
    anonymous_contributions: list[AnonContribution] = field(default_factory=list)
    anon_rounds: dict[bytes, AnonRound] = field(default_factory=dict)
    # (step, ref) -> link tag -> value: one anonymous rating per member per thing
    anonymous_ratings: dict[tuple[int, bytes | None], dict[bytes, int]] = field(
        default_factory=dict
    )
    pause_requests: int = 0
    applied: int = 0
    ignored: list[tuple[bytes, str]] = field(default_factory=list)  # diagnostics only

    # -- queries ----------------------------------------------------------

    def is_member(self, key: bytes) -> bool:
        member = self.members.get(key)
        return member is not None and member.active

    def active_members(self) -> list[Member]:
        return sorted((m for m in self.members.values() if m.active), key=lambda m: m.order)

    def successor(self, after: bytes) -> bytes | None:
        """The deterministic next facilitator: the next active member in join
        order after ``after``, wrapping round (SPEC §6.2)."""
        ring = [m for m in self.active_members() if m.key != after]
        if not ring:
            return None
        position = self.members[after].order if after in self.members else -1
        later = [m for m in ring if m.order > position]
        return (later or ring)[0].key

    def anonymous_open(self) -> bool:
        """Whether anything takes anonymous input now: an open step that takes
        anonymous answers, or an open poll on an anonymous step."""
        return any(s.status == "open" and s.allows_anonymous() for s in self.steps) or any(
            p.status == "open" and self.steps[p.step].counts_anonymously()
            for p in self.polls.values()
        )

    def anonymous_rating_counts(
        self, step: int, ref: bytes | None, threshold: int
    ) -> list[int] | None:
        """How many anonymous ratings sit at each scale position, or None while
        fewer than ``threshold`` members have rated (small groups leak)."""
        if not 0 <= step < len(self.steps):
            return None
        given = self.anonymous_ratings.get((step, ref), {})
        if len(given) < max(1, threshold):
            return None
        counts = [0] * len(self.steps[step].scale)
        for value in given.values():
            counts[value] += 1
        return counts

    def to_canonical(self) -> dict[str, Any]:
        """Everything that follows from the log, as canonical data (the digest's input)."""
        return {
            "mid": self.mid,
            "created": self.created,
            "title": self.title,
            "settings": self.settings,
            "epoch": self.epoch,
            "members": [
                [m.key, m.ring, m.name, m.order, m.active, m.gone, m.upto]
                for m in sorted(self.members.values(), key=lambda m: m.order)
            ],
            "facilitator": self.facilitator,
            "term": self.term,
            "absent": sorted(self.absent_votes),
            "steps": [
                [s.id, s.title, s.prompt, s.help, s.mode, s.kind, s.scale, s.links, s.status]
                for s in self.steps
            ],
            "current": self.current,
            "contributions": [
                [c.id, c.step, c.author, c.text, c.tag, c.ref] for c in self.contributions
            ],
            "ratings": sorted(
                [step, ref or b"", author, value]
                for (step, ref, author), value in self.ratings.items()
            ),
            "proposals": sorted([p.id, p.step, p.author, p.text] for p in self.proposals.values()),
            "polls": sorted(
                [
                    p.id,
                    p.proposal,
                    p.status,
                    [[v.author, v.seq, v.choice] for v in p.votes],
                    None
                    if p.result is None
                    else [p.result.outcome, p.result.counts, p.result.voters, p.result.quorum],
                    sorted(p.cosigners),
                    p.outcome,
                    [[v.tag, v.choice, v.round, v.author, v.seq] for v in p.anon_votes],
                ]
                for p in self.polls.values()
            ),
            "queue": [
                self.queue.waiting,
                self.queue.speaker,
                self.queue.since_ms,
                sorted([k, v] for k, v in self.queue.talk_ms.items()),
                sorted([k, v] for k, v in self.queue.turns.items()),
            ],
            "frozen": sorted([k, v] for k, v in self.frozen.items()),
            "join_code": None
            if self.join_code is None
            else [self.join_code[0], list(self.join_code[1])],
            "anonymous": [
                [c.step, c.text, c.round, c.members, c.slots] for c in self.anonymous_contributions
            ],
            "anon_rounds": sorted(
                [r.rid, r.ordinal, r.members, r.slots, sorted(r.applied)]
                for r in self.anon_rounds.values()
            ),
            "anon_ratings": sorted(
                [step, ref or b"", tag, value]
                for (step, ref), given in self.anonymous_ratings.items()
                for tag, value in given.items()
            ),
            "pause_requests": self.pause_requests,
            "applied": self.applied,
        }

    def digest(self) -> bytes:
        return hashlib.blake2b(
            b"relsec/v1/state\x00" + pack(self.to_canonical()), digest_size=32
        ).digest()


# --- field checks ----------------------------------------------------------


def _text(value: Any, limit: int, *, empty: bool = False) -> bool:
    return isinstance(value, str) and (empty or value.strip() != "") and len(value) <= limit


# Characters that could make one name look like another or rearrange what a
# screen shows: C0 and C1 controls, bidirectional controls, zero-width and
# line-breaking characters. A fixed list, not Unicode categories, so every
# laptop decides the same whatever Unicode version its Python has (SPEC §6.1).
NAME_FORBIDDEN = frozenset(
    [chr(c) for c in range(0x20)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + list("\u061c\u200b\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e")
    + list("\u2060\u2066\u2067\u2068\u2069\ufeff")
)


def _display_name(value: Any) -> bool:
    return _text(value, MAX_NAME) and not NAME_FORBIDDEN.intersection(value)


def _uint(value: Any, limit: int = (1 << 32) - 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _hash(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def _key(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) == KEY_BYTES


def _ring_point(value: Any) -> bool:
    # A ring key must be a canonical point of the prime-order subgroup, or a
    # ring signature over it could be forged or made linkable (research notes).
    return _key(value) and bool(bindings.crypto_core_ed25519_is_valid_point(value))


def _only(data: dict[str, Any], required: Iterable[str], optional: Iterable[str] = ()) -> bool:
    keys = set(data)
    needed = set(required)
    return needed <= keys <= needed | set(optional)


def parse_step(raw: Any) -> Step | str:
    """A step of the agenda, or the reason it is invalid."""
    if not isinstance(raw, dict):
        return "a step is a map"
    if not _only(raw, ("id", "title", "prompt", "mode", "kind"), ("help", "scale", "links")):
        return "a step has id, title, prompt, mode, kind and optionally help, scale, links"
    if not _text(raw["id"], MAX_TAG) or not _text(raw["title"], MAX_TITLE):
        return "step id and title must be short non-empty text"
    if not _text(raw["prompt"], MAX_PROMPT) or not _text(raw.get("help", ""), MAX_HELP, empty=True):
        return "step prompt or help too long or empty"
    if raw["mode"] not in MODES or raw["kind"] not in KINDS:
        return "unknown step mode or kind"
    scale = raw.get("scale", [])
    if not isinstance(scale, list) or not all(_text(label, MAX_TAG) for label in scale):
        return "scale must be a list of short labels"
    if (raw["kind"] == "rating") != (2 <= len(scale) <= MAX_SCALE):
        return "a rating step has 2 to 11 scale labels, other kinds none"
    links = raw.get("links", [])
    if not isinstance(links, list) or not all(_text(link, MAX_TAG) for link in links):
        return "links must be a list of step ids"
    return Step(
        id=raw["id"],
        title=raw["title"],
        prompt=raw["prompt"],
        help=raw.get("help", ""),
        mode=raw["mode"],
        kind=raw["kind"],
        scale=list(scale),
        links=list(links),
    )


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
    return steps


def parse_settings(raw: Any) -> dict[str, Any] | str:
    if not isinstance(raw, dict) or not set(raw) <= set(DEFAULT_SETTINGS):
        return f"settings are a map with keys among {', '.join(DEFAULT_SETTINGS)}"
    settings = dict(DEFAULT_SETTINGS)
    settings.update(raw)
    if not (_uint(settings["quorum_pct"], 100) and settings["quorum_pct"] >= 1):
        return "quorum_pct is a whole percentage from 1 to 100"
    if not _uint(settings["stand_aside_limit"], MAX_MEMBERS):
        return "stand_aside_limit is a whole number"
    if not (_uint(settings["anon_threshold"], MAX_MEMBERS) and settings["anon_threshold"] >= 1):
        return "anon_threshold is a whole number from 1"
    if not isinstance(settings["attribute_named"], bool):
        return "attribute_named is true or false"
    return settings


# --- the rules -------------------------------------------------------------

Check = Callable[[MeetingState, Entry], str | None]
Apply = Callable[[MeetingState, Entry], None]


def _member_check(state: MeetingState, entry: Entry) -> str | None:
    if not state.is_member(entry.author):
        return "author is not a current member"
    return None


def _facilitator_check(state: MeetingState, entry: Entry) -> str | None:
    if state.facilitator != entry.author:
        return "only the facilitator may do this"
    return None


def _new_epoch(state: MeetingState) -> None:
    state.epoch += 1


def _set_facilitator(state: MeetingState, key: bytes | None) -> None:
    state.facilitator = key
    state.term += 1
    state.absent_votes.clear()


def _member_gone(state: MeetingState, key: bytes, how: str, upto: int, now_ms: int) -> None:
    member = state.members[key]
    member.active, member.gone, member.upto = False, how, upto
    queue = state.queue
    if key in queue.waiting:
        queue.waiting.remove(key)
    if queue.speaker == key:
        queue.end_turn(now_ms)
    state.absent_votes.discard(key)
    _new_epoch(state)
    if state.facilitator == key:
        _set_facilitator(state, state.successor(key))
    elif state.facilitator is not None and len(state.absent_votes) >= absent_quorum(state):
        # Fewer members now: the declarations already made may be a majority.
        _set_facilitator(state, state.successor(state.facilitator))


# meeting.create -------------------------------------------------------------


def check_create(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if state.created:
        return "the meeting already exists"
    if entry.author != state.creator or entry.seq != 1:
        return "only the creator's first entry may create the meeting"
    if not _only(data, ("agenda", "name", "ring", "settings", "title")):
        return "meeting.create has agenda, name, ring, settings, title"
    if not _text(data["title"], MAX_TITLE) or not _display_name(data["name"]):
        return "title and name must be short non-empty text"
    if not _ring_point(data["ring"]):
        return "ring key is not a valid prime-order point"
    agenda = parse_agenda(data["agenda"])
    if isinstance(agenda, str):
        return agenda
    settings = parse_settings(data["settings"])
    if isinstance(settings, str):
        return settings
    return None


def apply_create(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    agenda = parse_agenda(data["agenda"])
    settings = parse_settings(data["settings"])
    assert not isinstance(agenda, str) and not isinstance(settings, str)  # noqa: S101 (checked)
    state.created = True
    state.title = data["title"]
    state.steps = agenda
    state.settings = settings
    state.members[entry.author] = Member(entry.author, data["ring"], data["name"], 0)
    state.facilitator = entry.author
    state.epoch = 1
    state.term = 1


# roster ---------------------------------------------------------------------


def check_add(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("key", "name", "ring")):
        return "roster.add has key, name, ring"
    if not _key(data["key"]) or not _ring_point(data["ring"]) or not _display_name(data["name"]):
        return "roster.add needs a 32-byte key, a valid ring point and a short name"
    if data["key"] in state.members:
        return "that key was already a member (a returning person joins with new keys)"
    if any(m.ring == data["ring"] for m in state.members.values()):
        return "ring keys must be distinct"
    if len(state.active_members()) >= MAX_MEMBERS:
        return "the roster is full"
    return None


def apply_add(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    order = len(state.members)
    state.members[data["key"]] = Member(data["key"], data["ring"], data["name"], order)
    _new_epoch(state)


def check_leave(state: MeetingState, entry: Entry) -> str | None:
    if reason := _member_check(state, entry):
        return reason
    if entry.data:
        return "roster.leave has no fields"
    return None


def apply_leave(state: MeetingState, entry: Entry) -> None:
    _member_gone(state, entry.author, "left", entry.seq, entry.ts)


def check_remove(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if not _only(data, ("upto", "who")) or not _key(data["who"]) or not _uint(data["upto"]):
        return "roster.remove has who (key) and upto (seq)"
    if data["who"] == entry.author:
        return "the facilitator leaves with roster.leave"
    if not state.is_member(data["who"]):
        return "who is not a current member"
    if data["who"] == state.creator and data["upto"] < 1:
        return "a removal cannot cut the meeting's creation"
    return None


def apply_remove(state: MeetingState, entry: Entry) -> None:
    _member_gone(state, entry.data["who"], "removed", entry.data["upto"], entry.ts)


# facilitation -----------------------------------------------------------------


def check_handover(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if not _only(data, ("to",)) or not _key(data["to"]):
        return "facil.handover has to (key)"
    if data["to"] == entry.author or not state.is_member(data["to"]):
        return "hand over to another current member"
    return None


def apply_handover(state: MeetingState, entry: Entry) -> None:
    _set_facilitator(state, entry.data["to"])


def check_absent(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("term",)) or not _uint(data["term"]):
        return "facil.absent has term"
    if data["term"] != state.term:
        return "stale term: the facilitator has changed since"
    if entry.author == state.facilitator:
        return "the facilitator cannot declare themselves absent"
    return None


def absent_quorum(state: MeetingState) -> int:
    """Declarations needed to pass facilitation on: a majority of the other
    active members (SPEC §6.2), so no single member can seize it."""
    others = len(state.active_members()) - 1
    return others // 2 + 1


def apply_absent(state: MeetingState, entry: Entry) -> None:
    state.absent_votes.add(entry.author)
    if len(state.absent_votes) >= absent_quorum(state) and state.facilitator is not None:
        _set_facilitator(state, state.successor(state.facilitator))


# agenda -----------------------------------------------------------------------


def _step_index(state: MeetingState, value: Any) -> int | None:
    if _uint(value) and value < len(state.steps):
        return int(value)
    return None


def check_step_open(state: MeetingState, entry: Entry) -> str | None:
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if not _only(entry.data, ("step",)) or _step_index(state, entry.data["step"]) is None:
        return "step.open names an existing step"
    if state.current == entry.data["step"]:
        return "that step is already open"
    return None


def apply_step_open(state: MeetingState, entry: Entry) -> None:
    if state.current is not None:
        state.steps[state.current].status = "closed"
    state.current = entry.data["step"]
    state.steps[entry.data["step"]].status = "open"


def check_step_close(state: MeetingState, entry: Entry) -> str | None:
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if not _only(entry.data, ("step",)) or _step_index(state, entry.data["step"]) is None:
        return "step.close names an existing step"
    if state.steps[entry.data["step"]].status != "open":
        return "that step is not open"
    return None


def apply_step_close(state: MeetingState, entry: Entry) -> None:
    state.steps[entry.data["step"]].status = "closed"
    if state.current == entry.data["step"]:
        state.current = None


def _open_step(state: MeetingState, value: Any) -> Step | str:
    index = _step_index(state, value)
    if index is None:
        return "no such step"
    step = state.steps[index]
    if step.status != "open":
        return "that step is not open"
    return step


# contributions, ratings, proposals -------------------------------------------


def check_contribution(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("step", "text"), ("ref", "tag")):
        return "contrib.add has step, text and optionally ref, tag"
    step = _open_step(state, data["step"])
    if isinstance(step, str):
        return step
    if not step.allows_named():
        return "this step takes anonymous answers only"
    if not _text(data["text"], MAX_TEXT):
        return f"text must be 1 to {MAX_TEXT} characters"
    if "tag" in data and not _text(data["tag"], MAX_TAG):
        return "tag must be short text"
    if "ref" in data:
        return _check_ref(state, step, data["ref"])
    return None


def _check_ref(state: MeetingState, step: Step, ref: Any) -> str | None:
    if not _hash(ref) or ref not in state.contribution_index:
        return "ref names no known contribution"
    target = state.steps[state.contribution_index[ref].step]
    if target.id not in step.links and target.id != step.id:
        return "ref must point into this step or a step it links to"
    return None


def apply_contribution(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    contribution = Contribution(
        entry.hash, data["step"], entry.author, data["text"], data.get("tag"), data.get("ref")
    )
    state.contributions.append(contribution)
    state.contribution_index[entry.hash] = contribution
    state.named_counts[entry.author] = state.named_counts.get(entry.author, 0) + 1


def check_rating(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("step", "value"), ("ref",)):
        return "rating.set has step, value and optionally ref"
    step = _open_step(state, data["step"])
    if isinstance(step, str):
        return step
    if step.kind != "rating" or not step.allows_named():
        return "this step takes no named ratings"
    if not _uint(data["value"]) or data["value"] >= len(step.scale):
        return "value must be a position on the step's scale"
    if "ref" in data:
        return _check_ref(state, step, data["ref"])
    return None


def apply_rating(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    state.ratings[(data["step"], data.get("ref"), entry.author)] = data["value"]


def check_proposal(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("step", "text")):
        return "proposal.add has step, text"
    step = _open_step(state, data["step"])
    if isinstance(step, str):
        return step
    if step.kind != "proposal":
        return "proposals belong to a proposal step"
    if not _text(data["text"], MAX_TEXT):
        return f"text must be 1 to {MAX_TEXT} characters"
    return None


def apply_proposal(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    state.proposals[entry.hash] = Proposal(entry.hash, data["step"], entry.author, data["text"])


# polls ------------------------------------------------------------------------


def check_poll_open(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    # _hash first: a list or map as the key would raise TypeError in every fold.
    if not _only(data, ("proposal",)) or not _hash(data["proposal"]):
        return "poll.open names a known proposal"
    if data["proposal"] not in state.proposals:
        return "poll.open names a known proposal"
    if any(p.proposal == data["proposal"] and p.status == "open" for p in state.polls.values()):
        return "a poll on that proposal is already open"
    return None


def apply_poll_open(state: MeetingState, entry: Entry) -> None:
    proposal = state.proposals[entry.data["proposal"]]
    state.polls[entry.hash] = Poll(entry.hash, proposal.id, proposal.step)


def _open_poll(state: MeetingState, value: Any) -> Poll | str:
    poll = state.polls.get(value) if _hash(value) else None
    if poll is None:
        return "no such poll"
    if poll.status != "open":
        return "the poll is closed"
    return poll


def check_vote(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("choice", "poll")):
        return "vote.cast has choice, poll"
    poll = _open_poll(state, data["poll"])
    if isinstance(poll, str):
        return poll
    if not state.steps[poll.step].allows_named():
        return "this poll takes anonymous votes only"
    if data["choice"] not in CHOICES:
        return f"choice is one of {', '.join(CHOICES)}"
    return None


def apply_vote(state: MeetingState, entry: Entry) -> None:
    poll = state.polls[entry.data["poll"]]
    poll.votes.append(Vote(entry.author, entry.seq, entry.data["choice"]))


MAX_CUT = 1024  # every member ever in the roster, at most (SPEC §6.5)


def parse_cut(raw: Any) -> dict[bytes, int] | None:
    if not isinstance(raw, list) or len(raw) > MAX_CUT:
        return None
    cut: dict[bytes, int] = {}
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and _key(item[0]) and _uint(item[1])):
            return None
        if item[0] in cut:
            return None
        cut[item[0]] = item[1]
    return cut


def check_poll_close(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if not _only(data, ("cut", "poll")) or parse_cut(data["cut"]) is None:
        return "poll.close has poll and cut ([[key, seq], ...])"
    poll = _open_poll(state, data["poll"])
    if isinstance(poll, str):
        return poll
    return None


def decide(counts: dict[str, int], members: int, settings: dict[str, Any]) -> PollResult:
    """The consensus rule (SPEC §6.5), in order: any block blocks; fewer
    voters than the quorum is no quorum; more stand-asides than the limit is
    no consensus; otherwise consensus (concerns are recorded, not counted against)."""
    voters = sum(counts.values())
    quorum = max(1, -(-members * settings["quorum_pct"] // 100))
    limit = settings["stand_aside_limit"]
    if counts["block"] > 0:
        outcome = "blocked"
    elif voters < quorum:
        outcome = "no_quorum"
    elif counts["stand_aside"] > limit:
        outcome = "no_consensus"
    else:
        outcome = "consensus"
    return PollResult(outcome, counts, voters, members, quorum, limit)


def apply_poll_close(state: MeetingState, entry: Entry) -> None:
    poll = state.polls[entry.data["poll"]]
    cut = parse_cut(entry.data["cut"])
    assert cut is not None  # noqa: S101 (checked)
    # Only votes the facilitator had seen count (the cut): a member cannot
    # slip a vote in after the close by back-dating its Lamport clock.
    counts = dict.fromkeys(CHOICES, 0)
    if state.steps[poll.step].counts_anonymously():
        # Anonymous votes count if the entry that released them is in the cut.
        for choice in poll.latest_anonymous(cut).values():
            counts[choice] += 1
    else:
        for author, choice in poll.latest_votes(cut).items():
            if state.is_member(author):
                counts[choice] += 1
    poll.status = "closed"
    poll.result = decide(counts, len(state.active_members()), state.settings)
    poll.tally_digest = tally_digest(state.mid, poll.id, poll.result)


def tally_digest(mid: bytes, poll: bytes, result: PollResult) -> bytes:
    """The closed tally in a form members co-sign (SPEC §6.5): each client
    recomputes it from its own log and signs only if it agrees."""
    record = [
        mid,
        poll,
        result.outcome,
        result.counts,
        result.voters,
        result.members,
        result.quorum,
        result.stand_aside_limit,
    ]
    return hashlib.blake2b(b"relsec/v1/tally\x00" + pack(record), digest_size=32).digest()


def check_tally_sign(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("digest", "poll")) or not _hash(data["poll"]):
        return "tally.sign has poll and digest"
    poll = state.polls.get(data["poll"])
    if poll is None or poll.tally_digest is None:
        return "that poll is not closed"
    if data["digest"] != poll.tally_digest:
        return "the signed tally differs from the one every laptop computes"
    if entry.author in poll.cosigners:
        return "already co-signed"
    return None


def apply_tally_sign(state: MeetingState, entry: Entry) -> None:
    state.polls[entry.data["poll"]].cosigners.add(entry.author)


def check_outcome(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if not _only(data, ("poll", "text")) or not _hash(data["poll"]):
        return "outcome.record has poll and text"
    poll = state.polls.get(data["poll"])
    if poll is None or poll.status != "closed":
        return "record the outcome of a closed poll"
    if not _text(data["text"], MAX_TEXT):
        return f"text must be 1 to {MAX_TEXT} characters"
    return None


def apply_outcome(state: MeetingState, entry: Entry) -> None:
    state.polls[entry.data["poll"]].outcome = entry.data["text"]


# speaking queue -------------------------------------------------------------


def check_hand_raise(state: MeetingState, entry: Entry) -> str | None:
    if reason := _member_check(state, entry):
        return reason
    if entry.data:
        return "hand.raise has no fields"
    if entry.author in state.queue.waiting:
        return "hand already raised"
    return None


def apply_hand_raise(state: MeetingState, entry: Entry) -> None:
    state.queue.waiting.append(entry.author)


def check_hand_lower(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, (), ("who",)):
        return "hand.lower has optionally who"
    who = data.get("who", entry.author)
    if who != entry.author and entry.author != state.facilitator:
        return "only the facilitator may lower someone else's hand"
    if who not in state.queue.waiting and who != state.queue.speaker:
        return "that hand is not raised"
    return None


def apply_hand_lower(state: MeetingState, entry: Entry) -> None:
    who = entry.data.get("who", entry.author)
    queue = state.queue
    if who in queue.waiting:
        queue.waiting.remove(who)
    else:  # the speaker finishing their turn
        queue.end_turn(entry.ts)


def check_hand_next(state: MeetingState, entry: Entry) -> str | None:
    if reason := _member_check(state, entry) or _facilitator_check(state, entry):
        return reason
    if entry.data:
        return "hand.next has no fields"
    if not state.queue.waiting and state.queue.speaker is None:
        return "nobody is waiting or speaking"
    return None


def apply_hand_next(state: MeetingState, entry: Entry) -> None:
    queue = state.queue
    queue.end_turn(entry.ts)
    while queue.waiting:
        nxt = queue.waiting.pop(0)
        if state.is_member(nxt):
            queue.speaker, queue.since_ms = nxt, entry.ts
            queue.turns[nxt] = queue.turns.get(nxt, 0) + 1
            break


# joining ------------------------------------------------------------------------

JOIN_CODE_WORDS = 3
CODE_WORDS = frozenset(WORDS)


def check_join_code(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("np", "words")) or not _uint(data["np"], 99) or data["np"] < 10:
        return "join.code has np (10 to 99) and words"
    words = data["words"]
    if not (
        isinstance(words, list)
        and len(words) == JOIN_CODE_WORDS
        and all(isinstance(w, str) and w in CODE_WORDS for w in words)
        and len(set(words)) == JOIN_CODE_WORDS
    ):
        return "join.code words are three different words from the code word list"
    return None


def apply_join_code(state: MeetingState, entry: Entry) -> None:
    state.join_code = (entry.data["np"], tuple(entry.data["words"]))


# anonymous rounds ---------------------------------------------------------------

# What a slot holds (SPEC §13.3): one canonical map, keys in canonical order.
ITEM_SHAPES: dict[str, tuple[str, ...]] = {
    "contrib": ("k", "n", "step", "text"),
    "rating": ("k", "ref", "sig", "step", "value"),
    "vote": ("choice", "k", "poll", "sig"),
    "pause": ("k", "n"),
}
ITEM_LIMITS = Limits(max_bytes=64 * 1024, max_depth=2, max_str=4096, max_bin=16 * 1024)
VOTE_LABEL = "relsec/v1/anon-vote"
RATING_LABEL = "relsec/v1/anon-rating"
RATING_EVENT_LABEL = b"relsec/v1/anon-rating-event\x00"


def decode_item(raw: bytes) -> dict[str, Any] | None:
    """An item's fields if ``raw`` is a well-formed item, else None (its
    values are checked by ``check_anonymous_item``)."""
    try:
        item = unpack(raw, ITEM_LIMITS)
    except RemoteProtocolError:
        return None
    if not isinstance(item, dict):
        return None
    shape = ITEM_SHAPES.get(str(item.get("k")))
    if shape is None or tuple(item) != shape:
        return None
    return item


def vote_message(mid: bytes, rid: bytes, poll: bytes, choice: str) -> bytes:
    """What an anonymous vote's ring signature covers; its event is the poll
    id, so a member has one tag per poll, and the round id binds it to one round."""
    return pack([VOTE_LABEL, mid, rid, poll, choice])


def rating_message(mid: bytes, rid: bytes, step: int, ref: bytes | None, value: int) -> bytes:
    return pack([RATING_LABEL, mid, rid, step, ref, value])


def rating_event(mid: bytes, step: int, ref: bytes | None) -> bytes:
    """One event per rated thing (a step, or a contribution within it), so a
    member's anonymous ratings of different things cannot be linked."""
    return hashlib.blake2b(
        RATING_EVENT_LABEL + pack([mid, step, ref]), digest_size=HASH_BYTES
    ).digest()


def ring_of(state: MeetingState, members: Iterable[bytes]) -> list[bytes]:
    """The ring of a round: its participants' ring keys, sorted by bytes."""
    return sorted(state.members[key].ring for key in members)


def check_anonymous_item(state: MeetingState, item: dict[str, Any]) -> str | None:
    """Whether an anonymous item (decoded, signature not yet checked) may take
    effect now; the reason, in words a person can act on, if not. The same
    rule refuses an item on the laptop that queues it (Session) and drops it
    in every fold (SPEC §13.4)."""
    kind = item.get("k")
    if kind == "pause":
        return None
    if kind == "contrib":
        step = _open_step(state, item.get("step"))
        if isinstance(step, str):
            return step
        if not step.allows_anonymous():
            return "this step takes named answers only"
        if not _text(item.get("text"), MAX_TEXT):
            return "an anonymous answer needs some text"
        return None
    if kind == "rating":
        step = _open_step(state, item.get("step"))
        if isinstance(step, str):
            return step
        if step.kind != "rating":
            return "this step takes no ratings"
        if not step.counts_anonymously():
            return "this step counts named ratings only"
        value: Any = item.get("value")
        if not _uint(value) or value >= len(step.scale):
            return "the rating must be a position on the step's scale"
        ref = item.get("ref")
        return None if ref is None else _check_ref(state, step, ref)
    if kind == "vote":
        poll = _open_poll(state, item.get("poll"))
        if isinstance(poll, str):
            return poll
        if not state.steps[poll.step].counts_anonymously():
            return "this poll takes named votes only"
        if item.get("choice") not in CHOICES:
            return f"the choice is one of {', '.join(CHOICES)}"
        return None
    return "unknown kind of anonymous item"


# Verifying a ring signature costs milliseconds and a refold repeats it: a
# bounded memo of results (pure: the same bytes always give the same answer).
_RING_MEMO: dict[bytes, bytes | None] = {}
_RING_MEMO_MAX = 4096


def _ring_tag(message: bytes, keys: list[bytes], signature: Any, event: bytes) -> bytes | None:
    """The link tag of a valid signature, or None."""
    if not isinstance(signature, bytes):
        return None
    memo = hashlib.blake2b(pack([message, keys, signature, event]), digest_size=HASH_BYTES).digest()
    if memo in _RING_MEMO:
        return _RING_MEMO[memo]
    try:
        tag: bytes | None = ring.verify(message, keys, signature, event)
    except RemoteProtocolError:
        tag = None
    # The tag is compared across rounds: it must be a canonical point of the
    # prime-order subgroup (a torsion component would give one member 8 tags).
    if tag is not None and not bindings.crypto_core_ed25519_is_valid_point(tag):
        tag = None
    if len(_RING_MEMO) >= _RING_MEMO_MAX:
        _RING_MEMO.clear()
    _RING_MEMO[memo] = tag
    return tag


def _sorted_keys(value: Any, low: int, high: int, size: int) -> bool:
    return (
        isinstance(value, list)
        and low <= len(value) <= high
        and all(isinstance(x, bytes) and len(x) == size for x in value)
        and value == sorted(set(value))
    )


_CERTIFIED: dict[bytes, bool] = {}


def check_anon_round(state: MeetingState, entry: Entry) -> str | None:
    data = entry.data
    if reason := _member_check(state, entry):
        return reason
    if not _only(data, ("epoch", "go", "ids", "items", "members", "nonce")):
        return "anon.round has epoch, go, ids, items, members, nonce"
    members, ids, items, go = data["members"], data["ids"], data["items"], data["go"]
    if not (
        _uint(data["epoch"])
        and isinstance(data["nonce"], bytes)
        and len(data["nonce"]) == shuffle.NONCE_BYTES
        and _sorted_keys(members, shuffle.MIN_PARTICIPANTS, shuffle.MAX_PARTICIPANTS, KEY_BYTES)
        and _sorted_keys(ids, 1, len(members), HASH_BYTES)
        and isinstance(items, list)
        and 1 <= len(items) <= len(ids)
        and all(isinstance(x, bytes) for x in items)
        and isinstance(go, list)
        and len(go) == len(members)
        and all(isinstance(x, bytes) and len(x) == 64 for x in go)
    ):
        return "anon.round fields have the wrong shape"
    if any(key not in state.members for key in members):
        return "a participant of the round was never a member"
    item_ids = [shuffle.item_id(item) for item in items]
    if len(set(item_ids)) != len(item_ids) or not set(item_ids) <= set(ids):
        return "an item the round did not release"
    rid = shuffle.rid_of(state.mid, data["epoch"], data["nonce"], members)
    known = state.anon_rounds.get(rid)
    if known is not None and set(item_ids) <= known.applied:
        return "those items of the round are already in"
    body = shuffle.statement("release", state.mid, rid, shuffle.release_digest(ids))
    memo = hashlib.blake2b(body + pack([members, go]), digest_size=HASH_BYTES).digest()
    certified = _CERTIFIED.get(memo)
    if certified is None:
        certified = all(
            shuffle.verify_statement(key, body, signature)
            for key, signature in zip(members, go, strict=True)
        )
        if len(_CERTIFIED) >= _RING_MEMO_MAX:
            _CERTIFIED.clear()
        _CERTIFIED[memo] = certified
    if not certified:
        return "the round is not signed by every participant"
    return None


def apply_anon_round(state: MeetingState, entry: Entry) -> None:
    """Apply each new item of a released round; an item the rules refuse (a
    closed step, a bad ring signature, a dummy's garbage) is dropped alone."""
    data = entry.data
    members = data["members"]
    rid = shuffle.rid_of(state.mid, data["epoch"], data["nonce"], members)
    record = state.anon_rounds.get(rid)
    if record is None:
        record = AnonRound(
            rid, len(state.anon_rounds) + 1, len(state.active_members()), len(members)
        )
        state.anon_rounds[rid] = record
    keys = ring_of(state, members)
    for raw in data["items"]:
        ident = shuffle.item_id(raw)
        if ident in record.applied:
            continue
        record.applied.add(ident)
        item = decode_item(raw)
        if item is None or check_anonymous_item(state, item) is not None:
            continue
        _apply_anonymous_item(state, entry, record, ident, item, rid, keys)


def _apply_anonymous_item(
    state: MeetingState,
    entry: Entry,
    record: AnonRound,
    ident: bytes,
    item: dict[str, Any],
    rid: bytes,
    keys: list[bytes],
) -> None:
    kind = item["k"]
    if kind == "contrib":
        state.anonymous_contributions.append(
            AnonContribution(
                ident, item["step"], item["text"], record.ordinal, record.members, record.slots
            )
        )
    elif kind == "pause":
        state.pause_requests += 1
    elif kind == "vote":
        poll, choice = item["poll"], item["choice"]
        message = vote_message(state.mid, rid, poll, choice)
        tag = _ring_tag(message, keys, item["sig"], poll)
        if tag is not None:
            state.polls[poll].anon_votes.append(
                AnonVote(tag, choice, record.ordinal, entry.author, entry.seq)
            )
    elif kind == "rating":
        step, ref, value = item["step"], item["ref"], item["value"]
        message = rating_message(state.mid, rid, step, ref, value)
        tag = _ring_tag(message, keys, item["sig"], rating_event(state.mid, step, ref))
        if tag is not None:
            state.anonymous_ratings.setdefault((step, ref), {})[tag] = value


@dataclass(frozen=True, slots=True)
class Rule:
    check: Check
    apply: Apply


RULES: dict[str, Rule] = {
    "meeting.create": Rule(check_create, apply_create),
    "roster.add": Rule(check_add, apply_add),
    "roster.leave": Rule(check_leave, apply_leave),
    "roster.remove": Rule(check_remove, apply_remove),
    "facil.handover": Rule(check_handover, apply_handover),
    "facil.absent": Rule(check_absent, apply_absent),
    "step.open": Rule(check_step_open, apply_step_open),
    "step.close": Rule(check_step_close, apply_step_close),
    "contrib.add": Rule(check_contribution, apply_contribution),
    "rating.set": Rule(check_rating, apply_rating),
    "proposal.add": Rule(check_proposal, apply_proposal),
    "poll.open": Rule(check_poll_open, apply_poll_open),
    "vote.cast": Rule(check_vote, apply_vote),
    "poll.close": Rule(check_poll_close, apply_poll_close),
    "hand.raise": Rule(check_hand_raise, apply_hand_raise),
    "hand.lower": Rule(check_hand_lower, apply_hand_lower),
    "hand.next": Rule(check_hand_next, apply_hand_next),
    "join.code": Rule(check_join_code, apply_join_code),
    "tally.sign": Rule(check_tally_sign, apply_tally_sign),
    "outcome.record": Rule(check_outcome, apply_outcome),
    "anon.round": Rule(check_anon_round, apply_anon_round),
}


def why_ignored(state: MeetingState, entry: Entry) -> str | None:
    """The reason ``entry`` would have no effect on ``state``, or ``None``."""
    cap = state.caps.get(entry.author)
    if cap is not None and entry.seq > cap:
        return "after the author was removed"
    member = state.members.get(entry.author)
    if member is not None and member.upto is not None and entry.seq > member.upto:
        return "after the author left or was removed"
    rule = RULES.get(entry.type)
    if rule is None:
        return f"unknown entry type {entry.type!r}"
    if entry.type != "meeting.create" and not state.created:
        return "the meeting does not exist yet"
    return rule.check(state, entry)


def apply_entry(state: MeetingState, entry: Entry) -> str | None:
    """Fold one entry; returns the reason it was ignored, or ``None``."""
    reason = why_ignored(state, entry)
    if reason is not None:
        state.ignored.append((entry.hash, reason))
        return reason
    RULES[entry.type].apply(state, entry)
    state.applied += 1
    return None


def fold(
    mid: bytes,
    creator: bytes,
    entries: Iterable[Entry],
    frozen: dict[bytes, int],
) -> MeetingState:
    """Fold ``entries`` (already in fold order) from an empty meeting.

    A removal names the last seq of the removed member that counts (``upto``).
    A removed member could back-date later entries with a low Lamport clock, so
    if the fold has applied such an entry when it meets the removal, it starts
    again with that cap known (``state.caps``). A restart only ever adds a cap
    or lowers one to another removal's ``upto``, so there are at most as many
    restarts as removals (SPEC §5.3)."""
    ordered = list(entries)
    removals = sum(1 for entry in ordered if entry.type == "roster.remove")
    caps: dict[bytes, int] = {}
    state = MeetingState(mid=mid, creator=creator, frozen=dict(frozen))
    for _ in range(removals + 1):
        state = MeetingState(mid=mid, creator=creator, frozen=dict(frozen), caps=dict(caps))
        applied_seq: dict[bytes, int] = {}
        restart = False
        for entry in ordered:
            if apply_entry(state, entry) is not None:
                continue
            applied_seq[entry.author] = max(applied_seq.get(entry.author, 0), entry.seq)
            if entry.type == "roster.remove":
                who, upto = entry.data["who"], entry.data["upto"]
                if applied_seq.get(who, 0) > upto:
                    caps[who] = min(upto, caps.get(who, upto))
                    restart = True
                    break
        if not restart:
            break
    return state
