"""What the screens show, derived from the folded meeting in one place.

Rules of this file: pure functions of a ``MeetingState`` (and this laptop's
key and clock); no Textual, no I/O. Every piece of text that came from the
network passes through ``clean`` before a widget sees it, and widgets render
it as plain text (never as markup), so a name or a contribution cannot forge
what other screens show or smuggle in a clickable action.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from ..core.state import CHOICES, AnonContribution, MeetingState, Poll, Step

CHOICE_LABELS: dict[str, str] = {
    "agree": "agree",
    "concerns": "agree with concerns",
    "stand_aside": "stand aside",
    "block": "block",
}
OUTCOME_LABELS: dict[str, str] = {
    "consensus": "consensus",
    "blocked": "blocked",
    "no_consensus": "no consensus",
    "no_quorum": "no quorum",
}
MODE_LABELS: dict[str, str] = {
    "named": "named answers",
    "anonymous": "anonymous answers",
    "both": "named or anonymous answers",
}
REPLACEMENT = "\ufffd"


@lru_cache(maxsize=16384)
def clean(text: str) -> str:
    """Text from the network made safe to show: control characters, bidi
    overrides and other invisible format characters (which could make one
    contribution look like another, or move the cursor) become U+FFFD;
    newlines and tabs become spaces. ZWJ/ZWNJ stay (emoji, some scripts)."""
    if text.isprintable():  # the common case, checked in C
        return text
    out: list[str] = []
    for char in text:
        if char in "\n\t":
            out.append(" ")
            continue
        category = unicodedata.category(char)
        if char in "\u200c\u200d" or not (category[0] == "C" or category in ("Zl", "Zp")):
            out.append(char)
        else:
            out.append(REPLACEMENT)
    return "".join(out)


# --- the view ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberView:
    key: bytes
    name: str
    facilitator: bool
    me: bool
    hand_up: bool
    speaking: bool


@dataclass(frozen=True, slots=True)
class StepView:
    index: int
    title: str
    prompt: str
    help: str
    mode: str
    kind: str
    scale: tuple[str, ...]
    status: str
    links: tuple[int, ...] = ()  # the steps whose answers this one is about

    @property
    def allows_named(self) -> bool:
        return self.mode in ("named", "both")

    @property
    def allows_anonymous(self) -> bool:
        return self.mode in ("anonymous", "both")


@dataclass(frozen=True, slots=True)
class NamedItem:
    id: bytes
    author: str
    text: str
    proposal: bool = False
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class AnonymousRound:
    round: int
    members: int
    slots: int
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepGroup:
    step: StepView
    named: tuple[NamedItem, ...]
    rounds: tuple[AnonymousRound, ...]
    ratings: tuple[tuple[str, int], ...]  # (scale label, named count)

    @property
    def empty(self) -> bool:
        return not (self.named or self.rounds or any(n for _, n in self.ratings))


@dataclass(frozen=True, slots=True)
class PollView:
    id: bytes
    proposal_id: bytes
    proposal: str
    proposer: str
    status: str  # open | closed
    mode: str  # the step's mode: named | anonymous | both
    named: dict[str, int]
    voters: int
    members: int
    anonymous: dict[str, int] | None
    threshold: int
    my_vote: str | None
    outcome: str | None
    counts: dict[str, int] | None
    rule: str | None
    record: str | None
    cosigners: int


@dataclass(frozen=True, slots=True)
class TalkTime:
    name: str
    ms: int
    turns: int


@dataclass(frozen=True, slots=True)
class MeetingView:
    title: str
    me: bytes
    facilitator: str
    am_facilitator: bool
    am_member: bool
    steps: tuple[StepView, ...]
    current: int | None
    members: tuple[MemberView, ...]
    safety_number: str
    epoch: int
    groups: tuple[StepGroup, ...]
    polls: tuple[PollView, ...]  # of the current step, newest last
    proposals: tuple[NamedItem, ...]  # of the current step
    speaker: str | None
    waiting: tuple[str, ...]
    my_hand_up: bool
    talk: tuple[TalkTime, ...]
    pause_requests: int
    anon_threshold: int
    join_code: str

    @property
    def current_step(self) -> StepView | None:
        return None if self.current is None else self.steps[self.current]

    @property
    def member_count(self) -> int:
        return len(self.members)

    @property
    def open_poll(self) -> PollView | None:
        for poll in reversed(self.polls):
            if poll.status == "open":
                return poll
        return None

    @property
    def latest_poll(self) -> PollView | None:
        return self.polls[-1] if self.polls else None


def display_names(state: MeetingState) -> dict[bytes, str]:
    """Every member's name as shown; two people who chose the same name are
    told apart by their join order, so a vote or a line is never ambiguous."""
    ordered = sorted(state.members.values(), key=lambda m: m.order)
    counts: dict[str, int] = {}
    for member in ordered:
        counts[clean(member.name)] = counts.get(clean(member.name), 0) + 1
    names: dict[bytes, str] = {}
    for member in ordered:
        name = clean(member.name)
        if counts[name] > 1:
            name = f"{name} #{member.order + 1}"
        if member.gone:
            name = f"{name} ({member.gone})"
        names[member.key] = name
    return names


def step_view(index: int, step: Step, ids: dict[str, int]) -> StepView:
    return StepView(
        index=index,
        title=clean(step.title),
        prompt=clean(step.prompt),
        help=clean(step.help),
        mode=step.mode,
        kind=step.kind,
        scale=tuple(clean(label) for label in step.scale),
        status=step.status,
        links=tuple(ids[link] for link in step.links if link in ids),
    )


def _groups(
    state: MeetingState, steps: tuple[StepView, ...], names: dict[bytes, str]
) -> tuple[StepGroup, ...]:
    # Named answers show their author in the room whatever ``attribute_named``
    # says: that setting decides what the written record keeps (core/record.py).
    named: dict[int, list[NamedItem]] = {}
    for c in state.contributions:
        author = names.get(c.author, "?")
        tag = None if c.tag is None else clean(c.tag)
        named.setdefault(c.step, []).append(NamedItem(c.id, author, clean(c.text), tag=tag))
    for p in state.proposals.values():
        author = names.get(p.author, "?")
        named.setdefault(p.step, []).append(NamedItem(p.id, author, clean(p.text), proposal=True))
    rounds: dict[int, dict[int, list[AnonContribution]]] = {}
    for item in state.anonymous_contributions:
        rounds.setdefault(item.step, {}).setdefault(item.round, []).append(item)
    ratings: dict[int, list[int]] = {}
    for (step_index, _ref, _author), value in state.ratings.items():
        ratings.setdefault(step_index, []).append(value)
    groups: list[StepGroup] = []
    for step in steps:
        by_round = rounds.get(step.index, {})
        anon = tuple(
            AnonymousRound(
                number,
                int(items[0].members),
                int(items[0].slots),
                tuple(clean(item.text) for item in items),
            )
            for number, items in sorted(by_round.items())
        )
        values = ratings.get(step.index, [])
        scale = tuple((label, values.count(i)) for i, label in enumerate(step.scale))
        groups.append(StepGroup(step, tuple(named.get(step.index, ())), anon, scale))
    return tuple(groups)


def _poll_view(
    state: MeetingState, poll: Poll, names: dict[bytes, str], me: bytes, threshold: int
) -> PollView:
    proposal = state.proposals.get(poll.proposal)
    latest = poll.latest_votes()
    result = poll.result
    return PollView(
        id=poll.id,
        proposal_id=poll.proposal,
        proposal="" if proposal is None else clean(proposal.text),
        proposer="" if proposal is None else names.get(proposal.author, "?"),
        status=poll.status,
        mode=state.steps[poll.step].mode,
        named=poll.tally(),
        voters=len(latest),
        members=len(state.active_members()),
        anonymous=poll.anonymous_tally(threshold),
        threshold=threshold,
        my_vote=latest.get(me),
        outcome=None if result is None else result.outcome,
        counts=None if result is None else dict(result.counts),
        rule=None if result is None else result.rule(),
        record=None if poll.outcome is None else clean(poll.outcome),
        cosigners=len(poll.cosigners),
    )


def talk_times(state: MeetingState, names: dict[bytes, str], now_ms: int) -> tuple[TalkTime, ...]:
    """Talk time per active member, the current turn included, most first."""
    queue = state.queue
    rows = []
    for member in state.active_members():
        spoken = queue.talk_ms.get(member.key, 0)
        if queue.speaker == member.key:
            spoken += max(0, now_ms - queue.since_ms)
        rows.append(TalkTime(names[member.key], spoken, queue.turns.get(member.key, 0)))
    rows.sort(key=lambda row: (-row.ms, row.name))
    return tuple(rows)


def build_view(
    state: MeetingState,
    *,
    me: bytes,
    safety_number: str,
    join_code: str,
    now_ms: int,
) -> MeetingView:
    names = display_names(state)
    ids = {s.id: i for i, s in enumerate(state.steps)}
    steps = tuple(step_view(i, s, ids) for i, s in enumerate(state.steps))
    threshold = int(state.settings.get("anon_threshold", 3))
    queue = state.queue
    members = tuple(
        MemberView(
            key=m.key,
            name=names[m.key],
            facilitator=m.key == state.facilitator,
            me=m.key == me,
            hand_up=m.key in queue.waiting,
            speaking=m.key == queue.speaker,
        )
        for m in state.active_members()
    )
    current = state.current
    polls = tuple(
        _poll_view(state, poll, names, me, threshold)
        for poll in state.polls.values()
        if current is not None and poll.step == current
    )
    proposals = tuple(
        NamedItem(p.id, names.get(p.author, "?"), clean(p.text), proposal=True)
        for p in state.proposals.values()
        if p.step == current
    )
    return MeetingView(
        title=clean(state.title),
        me=me,
        facilitator="" if state.facilitator is None else names.get(state.facilitator, "?"),
        am_facilitator=state.facilitator == me,
        am_member=state.is_member(me),
        steps=steps,
        current=current,
        members=members,
        safety_number=safety_number,
        epoch=state.epoch,
        groups=_groups(state, steps, names),
        polls=polls,
        proposals=proposals,
        speaker=None if queue.speaker is None else names.get(queue.speaker, "?"),
        waiting=tuple(names.get(k, "?") for k in queue.waiting),
        my_hand_up=me in queue.waiting or me == queue.speaker,
        talk=talk_times(state, names, now_ms),
        pause_requests=state.pause_requests,
        anon_threshold=threshold,
        join_code=join_code,
    )


def format_duration(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


SHORT_CHOICES = {"agree": "agree", "concerns": "concerns", "stand_aside": "stand aside",
                 "block": "block"}  # fmt: skip


def tally_line(counts: dict[str, int]) -> str:
    return " · ".join(f"{SHORT_CHOICES[c]} {counts.get(c, 0)}" for c in CHOICES)
