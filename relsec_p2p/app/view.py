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
from functools import lru_cache

from ..core.anon_rules import rating_event
from ..core.errors import LocalProtocolError
from ..core.poll_rules import quorum_of
from ..core.record import (
    item_labels,
    objection_lines,
    proposal_labels,
    rating_counts,
    rating_grids,
    step_ratings,
)
from ..core.ring import link_tag
from ..core.state import CHOICES, AnonContribution, MeetingState, Poll, Step
from ..core.template import Template
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
    # Declared away by the room (SPEC §6.1 "Presence"): shown greyed, not
    # counted in the quorum, rounds or head counts.
    away: bool = False
    rejoined: bool = False  # took the place of an earlier key (roster.replace)


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
    label: str = ""  # "1.2" as in the record, "P1" for a proposal
    about: str = ""  # the label of the item it is attached to, if any


@dataclass(frozen=True, slots=True)
class AnonymousRound:
    round: int
    members: int
    slots: int
    texts: tuple[str, ...]  # each item as a line shows it: "1.4 [internal] ↳ about 1.1: …"
    items: tuple[NamedItem, ...] = ()  # the same, as items an answer can be about (no author)


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
    members: int  # present now: what the quorum counts (SPEC §6.5)
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
    # (choice, reason, voter's name or None if anonymous) of the latest votes
    reasons: tuple[tuple[str, str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """A closed poll, kept in view for the rest of the meeting."""

    step: int  # 0-based index of the step it was polled in
    label: str  # the proposal's label ("P1")
    poll: PollView


@dataclass(frozen=True, slots=True)
class RatedItem:
    """One thing to rate in a rating step (a threat, or the step itself)."""

    ref: bytes | None
    label: str  # "1.2", or "" for the step as a whole
    text: str
    tag: str | None
    rated: int  # how many have rated it (a count, never who)
    mine: bool  # this laptop's rating of it is in the log
    middle: str | None  # the middle answer, once at least the threshold answered
    spread: tuple[int, ...] | None  # answers per scale position, likewise


@dataclass(frozen=True, slots=True)
class RatingBoard:
    """The current rating step: every item with the scale, and how far along."""

    step: int
    prompt: str
    scale: tuple[str, ...]
    items: tuple[RatedItem, ...]
    members: int
    threshold: int
    anonymous: bool

    @property
    def mine(self) -> int:
        return sum(1 for item in self.items if item.mine)


@dataclass(frozen=True, slots=True)
class GridView:
    """A likelihood x impact grid: each item where its middle answers meet."""

    title: str
    steps: tuple[int, int]  # (rows step, columns step), 0-based
    rows_title: str
    rows_scale: tuple[str, ...]
    columns_title: str
    columns_scale: tuple[str, ...]
    cells: tuple[tuple[tuple[str, ...], ...], ...]  # cells[row][column]: item labels
    left_out: tuple[str, ...]  # labels with too few answers on a scale yet
    texts: tuple[tuple[str, str], ...]  # (label, text) of every item placed
    threshold: int

    @property
    def placed(self) -> int:
        return sum(len(cell) for row in self.cells for cell in row)


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
    quorum: int = 1  # votes a poll closed now would need (of ``present_count``)
    # (newcomer, earlier member away) who chose the same name: perhaps one
    # person who rejoined after a crash, for the facilitator to match (u).
    possible_returns: tuple[tuple[str, str], ...] = ()

    @property
    def present_count(self) -> int:
        """Members present: not declared away (SPEC §6.1 "Presence")."""
        return sum(1 for m in self.members if not m.away)

    def quorum_line(self) -> str:
        """The quorum rule as it stands now, e.g. "quorum: 3 of 4 present"."""
        return f"quorum: {self.quorum} of {self.present_count} present"

    # Admission (SPEC §12.11, §12.12): joining open, the address form of the
    # code (on the laptop that admits), the room displays, never members.
    joining_open: bool = True
    join_addresses: tuple[str, ...] = ()
    displays: tuple[str, ...] = ()
    rating: RatingBoard | None = None  # the current step, if it is a rating
    grids: tuple[GridView, ...] = ()  # every likelihood x impact grid of the meeting
    decisions: tuple[Decision, ...] = ()  # every closed poll, in the order opened

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

    @property
    def current_grid(self) -> GridView | None:
        """The grid the current step feeds, if it is one of a grid's steps."""
        for grid in self.grids:
            if self.current in grid.steps:
                return grid
        return None

    @property
    def earlier_decisions(self) -> tuple[Decision, ...]:
        """The decisions the poll panel is not showing now."""
        shown = self.open_poll or self.latest_poll
        return tuple(d for d in self.decisions if shown is None or d.poll.id != shown.id)


def display_names(state: MeetingState) -> dict[bytes, str]:
    """Every member's name as shown; two people who chose the same name are
    told apart by their join order, so a vote or a line is never ambiguous.
    A key retired by ``roster.replace`` is the same person as its newcomer:
    it shows "(replaced)" and does not make the newcomer a second one."""
    ordered = sorted(state.members.values(), key=lambda m: m.order)
    counts: dict[str, int] = {}
    for member in ordered:
        if member.gone == "replaced":
            continue  # the same person as the member who took their place
        name = safe_text(member.name, newlines=False)
        counts[name] = counts.get(name, 0) + 1
    names: dict[bytes, str] = {}
    for member in ordered:
        name = safe_text(member.name, newlines=False)
        if counts.get(name, 0) > 1:
            name = f"{name} #{member.order + 1}"
        if member.gone:
            name = f"{name} ({member.gone})"
        names[member.key] = name
    return names


def possible_returns(state: MeetingState, names: dict[bytes, str]) -> tuple[tuple[str, str], ...]:
    """Each present newcomer who chose the name of an earlier member now
    away (compared without case), with that member: the match is the
    facilitator's to make (``roster.replace``, SPEC §6.1), never assumed."""
    members = state.active_members()  # join order
    pairs = []
    for index, newcomer in enumerate(members):
        if newcomer.away or newcomer.replaces is not None:
            continue
        name = safe_text(newcomer.name, newlines=False).casefold()
        for earlier in members[:index]:
            if earlier.away and safe_text(earlier.name, newlines=False).casefold() == name:
                pairs.append((names[newcomer.key], names[earlier.key]))
    return tuple(pairs)


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
    labels = item_labels(state)
    numbered = proposal_labels(state)
    for c in state.contributions:
        author = names.get(c.author, "?")
        tag = None if c.tag is None else safe_text(c.tag, newlines=False)
        about = "" if c.ref is None else labels.get(c.ref, "")
        named.setdefault(c.step, []).append(
            NamedItem(
                c.id,
                author,
                safe_text(c.text, newlines=False),
                tag=tag,
                label=labels[c.id],
                about=about,
            )
        )
    for p in state.proposals.values():
        author = names.get(p.author, "?")
        named.setdefault(p.step, []).append(
            NamedItem(
                p.id, author, safe_text(p.text, newlines=False), proposal=True, label=numbered[p.id]
            )
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
            _anonymous_round(number, items, labels) for number, items in sorted(by_round.items())
        )
        values = ratings.get(step.index, [])
        scale = tuple((label, values.count(i)) for i, label in enumerate(step.scale))
        held = 0
        count = sum(len(r.texts) for r in anon)
        if step.status == "open" and count < threshold:
            anon, held = (), count
        groups.append(StepGroup(step, tuple(named.get(step.index, ())), anon, scale, held))
    return tuple(groups)


def _anonymous_round(
    number: int, items: list[AnonContribution], labels: dict[bytes, str]
) -> AnonymousRound:
    # In fold order, which within a round is the shuffle's: it says nothing
    # about who sent what or when, and every screen shows the same (issue 12.5).
    shown = tuple(
        NamedItem(
            item.id,
            "",
            safe_text(item.text, newlines=False),
            tag=None if item.tag is None else safe_text(item.tag, newlines=False),
            label=labels.get(item.id, ""),
            about="" if item.ref is None else labels.get(item.ref, ""),
        )
        for item in items
    )
    return AnonymousRound(
        number,
        int(items[0].members),
        int(items[0].slots),
        tuple(item_line(item) for item in shown),
        shown,
    )


def item_line(item: NamedItem) -> str:
    """An anonymous item as one line: its number, label, what it is about, text."""
    parts = [item.label] if item.label else []
    if item.tag:
        parts.append(f"[{item.tag}]")
    if item.about:
        parts.append(f"↳ about {item.about}")
    head = " ".join(parts)
    if not head:
        return item.text
    # "1.4 text", or "1.4 [internal] ↳ about 1.1: text" as a named line reads.
    return f"{head}: {item.text}" if len(parts) > 1 else f"{head} {item.text}"


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
        counts_anonymously=state.poll_counts_anonymously(poll),
        named=poll.tally(),
        voters=len(latest),
        members=len(state.present_members()),
        anonymous=poll.anonymous_tally(threshold),
        threshold=threshold,
        my_vote=latest.get(me),
        outcome=None if result is None else result.outcome,
        counts=poll.shown_counts(state.poll_counts_anonymously(poll), threshold),
        rule=None if result is None else result.rule(),
        record=None if poll.outcome is None else safe_text(poll.outcome, newlines=False),
        cosigners=len(poll.cosigners),
        counted=0 if poll.deciding is None else len(poll.deciding.members),
        final=poll.final,
        objections=objection_lines(poll, names, me),
        reasons=poll_reasons(state, poll, names, threshold),
    )


def poll_reasons(
    state: MeetingState, poll: Poll, names: dict[bytes, str], threshold: int
) -> tuple[tuple[str, str, str | None], ...]:
    """The reasons of a poll's latest votes, for the screens: named ones with
    their voter (the room sees who said what), anonymous ones only where the
    poll's counts may show, since a reason can tell which choice it is."""
    named, anonymous = poll.latest_reasons()
    rows: list[tuple[str, str, str | None]] = [
        (choice, safe_text(reason, newlines=False), names.get(author, "?"))
        for author, choice, reason in named
    ]
    counts_anonymously = state.poll_counts_anonymously(poll)
    shown = (
        poll.anonymous_tally(threshold) is not None
        if poll.status == "open"
        else poll.shown_counts(counts_anonymously, threshold) is not None
    )
    if shown:
        rows += sorted(
            (choice, safe_text(reason, newlines=False), None) for choice, reason in anonymous
        )
    return tuple(rows)


@lru_cache(maxsize=4096)
def _my_link_tag(secret: bytes, event: bytes) -> bytes | None:
    """This laptop's link tag for a rated thing: it marks its own anonymous
    rating in the log without anyone else being able to (core/ring.py)."""
    try:
        return link_tag(secret, event)
    except LocalProtocolError:
        return None


def rating_board(
    state: MeetingState,
    index: int,
    *,
    me: bytes,
    ring_secret: bytes | None,
    template: Template | None,
) -> RatingBoard:
    """Every item of rating step ``index`` with its count, its aggregate once
    enough answered, and whether this laptop's own rating is in."""
    step = state.steps[index]
    threshold = int(state.settings["anon_threshold"])
    counts = rating_counts(state, index)
    scale = tuple(safe_text(label, newlines=False) for label in step.scale)
    tags = {c.id: c.tag for c in state.contributions}
    tags.update((a.id, a.tag) for a in state.anonymous_contributions)
    by_label = {label: ref for ref, label in item_labels(state).items()}
    items = []
    for row in step_ratings(state, index, template=template):
        # Record rows name what they rate by label, never by id.
        ref = None if row["about"] is None else by_label.get(row["about"])
        if step.counts_anonymously():
            mine_tag = (
                None
                if ring_secret is None
                else _my_link_tag(ring_secret, rating_event(state.mid, index, ref))
            )
            mine = mine_tag is not None and mine_tag in state.anonymous_ratings.get(
                (index, ref), {}
            )
        else:
            mine = (index, ref, me) in state.ratings
        tag = tags.get(ref) if ref is not None else None
        spread = row.get("spread")
        items.append(
            RatedItem(
                ref=ref,
                label=row["about"] or "",
                text=safe_text(row["about_text"] or step.prompt, newlines=False),
                tag=None if tag is None else safe_text(tag, newlines=False),
                rated=counts.get(ref, 0),
                mine=mine,
                middle=None if row.get("middle") is None else safe_text(row["middle"]),
                spread=None if spread is None else tuple(spread[label] for label in step.scale),
            )
        )
    return RatingBoard(
        step=index,
        prompt=safe_text(step.prompt, newlines=False),
        scale=scale,
        items=tuple(items),
        members=len(state.active_members()),
        threshold=threshold,
        anonymous=step.counts_anonymously(),
    )


def grid_views(state: MeetingState, template: Template | None) -> tuple[GridView, ...]:
    """The record's likelihood x impact grids, for a screen."""
    ids = [s.id for s in state.steps]
    labels = item_labels(state)
    texts = {label: state.item_text(ref) or "" for ref, label in labels.items()}
    threshold = int(state.settings["anon_threshold"])
    grids = []
    for matrix in rating_grids(state, template=template):
        rows, columns = matrix["rows"], matrix["columns"]
        cells = tuple(tuple(tuple(cell) for cell in row) for row in matrix["cells"])
        placed = [label for row in cells for cell in row for label in cell]
        grids.append(
            GridView(
                title=safe_text(matrix["title"], newlines=False),
                steps=(ids.index(rows["step"]), ids.index(columns["step"])),
                rows_title=safe_text(rows["title"], newlines=False),
                rows_scale=tuple(safe_text(x, newlines=False) for x in rows["scale"]),
                columns_title=safe_text(columns["title"], newlines=False),
                columns_scale=tuple(safe_text(x, newlines=False) for x in columns["scale"]),
                cells=cells,
                left_out=tuple(matrix["left_out"]),
                texts=tuple(
                    (label, safe_text(texts.get(label, ""), newlines=False)) for label in placed
                ),
                threshold=threshold,
            )
        )
    return tuple(grids)


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
    join_addresses: tuple[str, ...] = (),
    template: Template | None = None,
    ring_secret: bytes | None = None,
) -> MeetingView:
    """The view of ``state`` from this laptop. ``template`` pairs rating steps
    into grids as the record does; ``ring_secret`` lets this laptop mark its
    own anonymous ratings (✓), which no other laptop can."""
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
            away=m.away,
            rejoined=m.replaces is not None,
        )
        for m in state.active_members()
    )
    current = state.current
    all_polls = {
        poll.id: _poll_view(state, poll, names, me, threshold) for poll in state.polls.values()
    }
    polls = tuple(
        all_polls[poll.id]
        for poll in state.polls.values()
        if current is not None and poll.step == current
    )
    numbered = proposal_labels(state)
    proposals = tuple(
        NamedItem(
            p.id,
            names.get(p.author, "?"),
            safe_text(p.text, newlines=False),
            proposal=True,
            label=numbered[p.id],
        )
        for p in state.proposals.values()
        if p.step == current
    )
    decisions = tuple(
        Decision(poll.step, numbered.get(poll.proposal, ""), all_polls[poll.id])
        for poll in state.polls.values()
        if poll.status == "closed"
    )
    rating = None
    if current is not None and state.steps[current].kind == "rating":
        rating = rating_board(state, current, me=me, ring_secret=ring_secret, template=template)
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
        quorum=quorum_of(len(state.present_members()), state.settings),
        possible_returns=possible_returns(state, names),
        joining_open=state.joining_open,
        join_addresses=join_addresses,
        displays=tuple(
            safe_text(name, newlines=False) for _, name in sorted(state.viewers.items())
        ),
        rating=rating,
        grids=grid_views(state, template),
        decisions=decisions,
    )


def anonymous_heading(rounds: tuple[AnonymousRound, ...]) -> str:
    """One heading over all of a step's anonymous batches (never one per
    round, which would set a lone item apart), with each distinct round size
    so a suppressed slot still shows."""
    count = sum(len(r.texts) for r in rounds)
    batches = "1 batch" if len(rounds) == 1 else f"{len(rounds)} batches"
    sizes = sorted({(r.members, r.slots) for r in rounds}, reverse=True)
    figures = "; ".join(f"{m} members, {s} slots" for m, s in sizes)
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


CHOICE_TEXT_MAX = 160  # characters of an item's text in a choice list


def choice_label(label: str, text: str) -> str:
    """An item as a choice list offers it: its number as in the record, then
    its text, shortened only between words (the list wraps it whole)."""
    if len(text) > CHOICE_TEXT_MAX:
        cut = text[:CHOICE_TEXT_MAX].rsplit(" ", 1)[0] or text[:CHOICE_TEXT_MAX]
        text = cut.rstrip(" ,;:.") + " …"
    return f"{label}  {text}" if label else text
