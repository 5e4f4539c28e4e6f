"""What the screens show, derived from the folded meeting in one place.

Rules of this file: pure functions of a ``MeetingState`` (and this laptop's
key and clock); no Textual, no I/O. Every piece of text that came from the
network passes through the core's ``safe_text`` (core/text.py, as one line)
before a widget sees it, and widgets render it as plain text (never as
markup), so a name or a contribution cannot forge what other screens show or
smuggle in a clickable action. Flags that follow from a rule (what a step's
mode allows) are read from the core's model, never worked out here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.record import objection_lines
from ..core.state import CHOICES, AnonContribution, MeetingState, Poll, Step
from ..core.text import safe_text
from ..core.wording import SHORT_CHOICE_LABELS

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
    # What the step's mode allows, as the core's rules read it (core/state.py Step).
    allows_named: bool
    allows_anonymous: bool
    counts_anonymously: bool  # its ratings and votes go through anonymous rounds
    links: tuple[int, ...] = ()  # the steps whose answers this one is about


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
    # Anonymous answers of the open step not shown yet: fewer than the
    # meeting's threshold are in (they show together once enough are, or
    # when the step closes), so a lone answer is never set apart on screen.
    held: int = 0

    @property
    def empty(self) -> bool:
        return not (self.named or self.rounds or self.held or any(n for _, n in self.ratings))


@dataclass(frozen=True, slots=True)
class PollView:
    id: bytes
    proposal_id: bytes
    proposal: str
    proposer: str
    status: str  # open | closed
    counts_anonymously: bool  # the step's votes go through anonymous rounds
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
    counted: int  # the members the deciding close counted
    final: bool  # co-signed by a majority of them: nothing can change it
    objections: tuple[str, ...]  # one sentence per laptop that refused to co-sign


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
    anon_waiting: int = 0  # this laptop's anonymous items not yet in the log

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
        name = safe_text(member.name, newlines=False)
        counts[name] = counts.get(name, 0) + 1
    names: dict[bytes, str] = {}
    for member in ordered:
        name = safe_text(member.name, newlines=False)
        if counts[name] > 1:
            name = f"{name} #{member.order + 1}"
        if member.gone:
            name = f"{name} ({member.gone})"
        names[member.key] = name
    return names


def step_view(index: int, step: Step, ids: dict[str, int]) -> StepView:
    return StepView(
        index=index,
        title=safe_text(step.title, newlines=False),
        prompt=safe_text(step.prompt, newlines=False),
        help=safe_text(step.help, newlines=False),
        mode=step.mode,
        kind=step.kind,
        scale=tuple(safe_text(label, newlines=False) for label in step.scale),
        status=step.status,
        allows_named=step.allows_named(),
        allows_anonymous=step.allows_anonymous(),
        counts_anonymously=step.counts_anonymously(),
        links=tuple(ids[link] for link in step.links if link in ids),
    )


def _groups(
    state: MeetingState, steps: tuple[StepView, ...], names: dict[bytes, str], threshold: int
) -> tuple[StepGroup, ...]:
    # Named answers show their author in the room whatever ``attribute_named``
    # says: that setting decides what the written record keeps (core/record.py).
    named: dict[int, list[NamedItem]] = {}
    for c in state.contributions:
        author = names.get(c.author, "?")
        tag = None if c.tag is None else safe_text(c.tag, newlines=False)
        named.setdefault(c.step, []).append(
            NamedItem(c.id, author, safe_text(c.text, newlines=False), tag=tag)
        )
    for p in state.proposals.values():
        author = names.get(p.author, "?")
        named.setdefault(p.step, []).append(
            NamedItem(p.id, author, safe_text(p.text, newlines=False), proposal=True)
        )
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
                # Sorted by item id: the order says nothing about who sent
                # what or when, and every screen shows the same (issue 12.5).
                tuple(
                    safe_text(item.text, newlines=False)
                    for item in sorted(items, key=lambda item: item.id)
                ),
            )
            for number, items in sorted(by_round.items())
        )
        values = ratings.get(step.index, [])
        scale = tuple((label, values.count(i)) for i, label in enumerate(step.scale))
        held = 0
        count = sum(len(r.texts) for r in anon)
        if step.status == "open" and count < threshold:
            anon, held = (), count
        groups.append(StepGroup(step, tuple(named.get(step.index, ())), anon, scale, held))
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
        proposal="" if proposal is None else safe_text(proposal.text, newlines=False),
        proposer="" if proposal is None else names.get(proposal.author, "?"),
        status=poll.status,
        counts_anonymously=state.steps[poll.step].counts_anonymously(),
        named=poll.tally(),
        voters=len(latest),
        members=len(state.active_members()),
        anonymous=poll.anonymous_tally(threshold),
        threshold=threshold,
        my_vote=latest.get(me),
        outcome=None if result is None else result.outcome,
        counts=poll.shown_counts(state.steps[poll.step].counts_anonymously(), threshold),
        rule=None if result is None else result.rule(),
        record=None if poll.outcome is None else safe_text(poll.outcome, newlines=False),
        cosigners=len(poll.cosigners),
        counted=0 if poll.deciding is None else len(poll.deciding.members),
        final=poll.final,
        objections=objection_lines(poll, names, me),
    )


def talk_times(state: MeetingState, names: dict[bytes, str], now_ms: int) -> tuple[TalkTime, ...]:
    """Talk time per active member, the current turn included, most first."""
    queue = state.queue
    rows = []
    for member in state.active_members():
        spoken = queue.spoken_ms(member.key, now_ms)
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
    anon_waiting: int = 0,
) -> MeetingView:
    names = display_names(state)
    ids = {s.id: i for i, s in enumerate(state.steps)}
    steps = tuple(step_view(i, s, ids) for i, s in enumerate(state.steps))
    threshold = int(state.settings["anon_threshold"])
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
        NamedItem(p.id, names.get(p.author, "?"), safe_text(p.text, newlines=False), proposal=True)
        for p in state.proposals.values()
        if p.step == current
    )
    return MeetingView(
        title=safe_text(state.title, newlines=False),
        me=me,
        facilitator="" if state.facilitator is None else names.get(state.facilitator, "?"),
        am_facilitator=state.facilitator == me,
        am_member=state.is_member(me),
        steps=steps,
        current=current,
        members=members,
        safety_number=safety_number,
        epoch=state.epoch,
        groups=_groups(state, steps, names, threshold),
        polls=polls,
        proposals=proposals,
        speaker=None if queue.speaker is None else names.get(queue.speaker, "?"),
        waiting=tuple(names.get(k, "?") for k in queue.waiting),
        my_hand_up=me in queue.waiting or me == queue.speaker,
        talk=talk_times(state, names, now_ms),
        pause_requests=state.pause_requests,
        anon_threshold=threshold,
        join_code=join_code,
        anon_waiting=anon_waiting,
    )


def anonymous_heading(rounds: tuple[AnonymousRound, ...]) -> str:
    """One heading over all of a step's anonymous batches (never one per
    round, which would set a lone item apart), with each distinct round size
    so a suppressed slot still shows."""
    count = sum(len(r.texts) for r in rounds)
    batches = "1 batch" if len(rounds) == 1 else f"{len(rounds)} batches"
    sizes = sorted({(r.members, r.slots) for r in rounds}, reverse=True)
    figures = "; ".join(
        f"{m} member{'' if m == 1 else 's'}, {s} slot{'' if s == 1 else 's'}" for m, s in sizes
    )
    return f"Anonymous: {count} in {batches} ({figures})"


def held_line(held: int, threshold: int) -> str:
    """What a screen says while a step's first anonymous answers are held."""
    answers = "1 anonymous answer is" if held == 1 else f"{held} anonymous answers are"
    return f"{answers} in: shown once {threshold} are, or when the step closes"


def format_duration(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def tally_line(counts: dict[str, int]) -> str:
    return " · ".join(f"{SHORT_CHOICE_LABELS[c]} {counts.get(c, 0)}" for c in CHOICES)
