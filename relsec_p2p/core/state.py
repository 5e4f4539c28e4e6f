"""The meeting as the fold leaves it: the data model, and nothing that decides.

Rules of this file (normative text: protocol/SPEC.md §6, the digest §6.8):
- This is what every reader of a meeting needs (the record, the view, the
  node); the rules that change it live in core/rules.py and
  core/anon_rules.py, the checks of single fields in core/fields.py.
- The state holds only what follows from the log, so equal logs give equal
  states, and ``digest()`` gives equal bytes on every laptop.
- Methods here only read: queries a screen or a rule asks of the meeting.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .codec import pack
from .feed import Entry
from .i18n import _
from .refusals import Refused

# --- vocabulary ------------------------------------------------------------

MODES = ("named", "anonymous", "both")
KINDS = ("text", "rating", "proposal")
CHOICES = ("agree", "concerns", "stand_aside", "block")
RESULTS = ("consensus", "blocked", "no_consensus", "no_quorum")

MAX_NAME = 64
MAX_VIEWERS = 8  # room displays of one meeting (SPEC §12.12)
MAX_TITLE = 200
MAX_PROMPT = 2000
MAX_HELP = 4000
MAX_TEXT = 4000
MAX_TAG = 32
# A vote's reason (SPEC §6.5): one line, short enough that an anonymous vote
# with its ring signature still fits a slot (4 UTF-8 bytes a character at most).
MAX_REASON = 200
REASON_CHOICES = ("concerns", "block")  # the votes a reason may go with
MAX_STEPS = 64
# The canonical encoding of a whole agenda, in bytes (SPEC §6.3). 64 steps of
# maximal prompt and help would be far more than one entry carries; with this
# total, any valid agenda fits one meeting.create beside the longest title,
# name and settings (1 328 bytes besides the agenda at worst, of 65 408;
# tests/unit/test_template.py).
MAX_AGENDA_BYTES = 64_000
MAX_SCALE = 11
# Languages a step may carry besides its own text (SPEC §6.3 "Translations").
MAX_TRANSLATIONS = 16
MAX_MEMBERS = 256
# Members ever added (gone ones included): the keys whose feeds a laptop
# takes in (SPEC §3.3), so this bounds feeds, a cut and a `have` alike.
MAX_MEMBERS_EVER = 1024

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
    gone: str | None = None  # "left", "removed" or "replaced"
    upto: int | None = None  # last seq of theirs that counts, once gone
    # Presence (SPEC §6.1 "Presence"): declared away by a majority of the
    # present members, until their own roster.back; ``returns`` counts those
    # returns, so a declaration made before one is stale after it.
    away: bool = False
    returns: int = 0
    replaces: bytes | None = None  # the earlier key of this person (roster.replace)

    @property
    def present(self) -> bool:
        """In the roster and not declared away: the members that count."""
        return self.active and not self.away


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
    # Language tag -> the step's text in that language: some of title,
    # prompt, help and scale (SPEC §6.3 "Translations"). Display only, but
    # part of the digest, so equal digests still mean equal texts.
    translations: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    reason: str | None = None  # what the concern or block is (SPEC §6.5)

    def canonical(self) -> list[Any]:
        # A vote without a reason encodes as it did before reasons existed.
        row: list[Any] = [self.author, self.seq, self.choice]
        return row if self.reason is None else [*row, self.reason]


@dataclass(slots=True)
class AnonVote:
    """An anonymous vote: its link tag (one per member per poll), the round it
    came in, and the log entry that released it (for the close's cut)."""

    tag: bytes
    choice: str
    round: int
    author: bytes
    seq: int
    reason: str | None = None

    def canonical(self) -> list[Any]:
        row: list[Any] = [self.tag, self.choice, self.round, self.author, self.seq]
        return row if self.reason is None else [*row, self.reason]


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
    tag: str | None = None  # the process's label, as a named answer's
    ref: bytes | None = None  # the item it is about, as a named answer's

    def canonical(self) -> list[Any]:
        # Rows without a tag or ref keep the shape they had before either existed.
        row: list[Any] = [self.step, self.text, self.round, self.members, self.slots]
        return row if self.tag is None and self.ref is None else [*row, self.tag, self.ref]


@dataclass(slots=True)
class AnonRound:
    """A released round as the log records it (SPEC §13.4)."""

    rid: bytes
    ordinal: int
    members: int  # active members when its first entry was folded
    slots: int  # participants, one slot each
    applied: set[bytes] = field(default_factory=set)  # item ids that took effect
    # Working state, not in the digest: item ids any entry of the round has
    # carried, taken effect or not (the appenders' "already in the log").
    seen: set[bytes] = field(default_factory=set)


@dataclass(slots=True)
class PollResult:
    outcome: str
    counts: dict[str, int]
    voters: int
    members: int
    quorum: int
    stand_aside_limit: int

    def rule(self) -> str:
        """The rule that produced the outcome, in words people can check
        (in the language shown: display only, never part of the digest)."""
        return _(
            "blocked if any block; no quorum if fewer than {quorum} of the {members} "
            "members present vote; no consensus if more than {limit} stand aside; "
            "otherwise consensus"
        ).format(quorum=self.quorum, members=self.members, limit=self.stand_aside_limit)


@dataclass(slots=True)
class Close:
    """One ``poll.close`` and what it decided (SPEC §6.5). Everything here is
    read from the close's own cut, so no entry outside it changes any of it."""

    id: bytes  # the poll.close entry's hash
    author: bytes
    cut: dict[bytes, int]
    members: frozenset[bytes]  # the members it counted: active in its cut
    result: PollResult
    digest: bytes  # what members co-sign
    cosigners: set[bytes] = field(default_factory=set)
    objections: dict[bytes, list[tuple[bytes, int]]] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """Co-signed by a majority of the members it counted: honest laptops
        co-sign one close per poll, so no other close of it can be final."""
        return len(self.cosigners & self.members) >= len(self.members) // 2 + 1


@dataclass(slots=True)
class Poll:
    id: bytes
    proposal: bytes
    step: int
    status: str = "open"
    votes: list[Vote] = field(default_factory=list)  # every counted-so-far vote, fold order
    closes: list[Close] = field(default_factory=list)  # fold order; usually one
    outcome: str | None = None  # the facilitator's record of what was decided
    anon_votes: list[AnonVote] = field(default_factory=list)  # fold order
    # Opened as an anonymous poll on a step of mode "both" (SPEC §6.5
    # poll.open): its votes then travel in anonymous rounds only.
    secret: bool = False

    @property
    def deciding(self) -> Close | None:
        """The close that decides the poll: the first final one, else the first."""
        for close in self.closes:
            if close.final:
                return close
        return self.closes[0] if self.closes else None

    @property
    def result(self) -> PollResult | None:
        close = self.deciding
        return None if close is None else close.result

    @property
    def tally_digest(self) -> bytes | None:
        close = self.deciding
        return None if close is None else close.digest

    @property
    def cosigners(self) -> set[bytes]:
        close = self.deciding
        return set() if close is None else set(close.cosigners)

    @property
    def final(self) -> bool:
        close = self.deciding
        return close is not None and close.final

    def shown_counts(self, anonymous: bool, threshold: int) -> dict[str, int] | None:
        """The deciding close's counts as a screen or a record may show them:
        on an anonymous poll with fewer than ``threshold`` voters only the
        outcome is shown, since the counts could name someone (small groups
        leak, docs/ARCHITECTURE.md §4)."""
        result = self.result
        if result is None or (anonymous and result.voters < max(1, threshold)):
            return None
        return dict(result.counts)

    def close_by_digest(self, digest: Any) -> Close | None:
        return next((c for c in self.closes if c.digest == digest), None)

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

    def latest_reasons(self) -> tuple[list[tuple[bytes, str, str]], list[tuple[str, str]]]:
        """The reasons of the current votes: (author, choice, reason) of named
        ones and (choice, reason) of anonymous ones, in fold order. A newer
        vote without a reason takes its voter's reason away."""
        named: dict[bytes, Vote] = {}
        for vote in self.votes:
            named[vote.author] = vote
        anonymous: dict[bytes, AnonVote] = {}
        for anon in self.anon_votes:
            anonymous[anon.tag] = anon
        return (
            [(v.author, v.choice, v.reason) for v in named.values() if v.reason is not None],
            [(a.choice, a.reason) for a in anonymous.values() if a.reason is not None],
        )

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

    def spoken_ms(self, key: bytes, now_ms: int) -> int:
        """Talk time of ``key`` so far, the current turn included."""
        spoken = self.talk_ms.get(key, 0)
        if self.speaker == key:
            spoken += max(0, now_ms - self.since_ms)
        return spoken

    def end_turn(self, now_ms: int) -> None:
        if self.speaker is not None:
            self.talk_ms[self.speaker] = self.spoken_ms(self.speaker, now_ms)
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
    # roster.away declarations pending on each present member, by declarer
    # (for the target's current ``returns``; SPEC §6.1 "Presence").
    away_declared: dict[bytes, set[bytes]] = field(default_factory=dict)
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
    # Admission (SPEC §12.11, §12.12): whether the facilitator has joining
    # open, the codes retired by removals, the room displays (key -> name).
    joining_open: bool = True
    retired_codes: set[tuple[str, ...]] = field(default_factory=set)  # secret, like join_code
    viewers: dict[bytes, str] = field(default_factory=dict)
    anonymous_contributions: list[AnonContribution] = field(default_factory=list)
    # Working state, not in the digest (both follow from the log): anonymous
    # answers by id, so an answer or a rating can be about one (SPEC §6.4),
    # and every answer's place in fold order, named or anonymous, from which
    # the record numbers them ("1.3").
    anonymous_index: dict[bytes, AnonContribution] = field(default_factory=dict)
    item_order: dict[bytes, int] = field(default_factory=dict)
    anon_rounds: dict[bytes, AnonRound] = field(default_factory=dict)
    # (step, ref) -> link tag -> value: one anonymous rating per member per thing
    anonymous_ratings: dict[tuple[int, bytes | None], dict[bytes, int]] = field(
        default_factory=dict
    )
    pause_requests: int = 0
    # Withholdings named in the log (``anon.blame``, SPEC §13.4): round id ->
    # (its participants, named key -> the members who named it).
    anon_namings: dict[bytes, tuple[int, dict[bytes, set[bytes]]]] = field(default_factory=dict)
    applied: int = 0
    ignored: list[tuple[bytes, Refused]] = field(default_factory=list)  # diagnostics only
    # Working state of the fold, not in the digest: the highest seq folded so
    # far per author, and the membership entries folded so far (meeting,
    # roster, facilitation), from which a close's own cut is re-folded.
    folded_seq: dict[bytes, int] = field(default_factory=dict)
    # Every facil.absent in the fold's input, as term -> declarers, wherever
    # they sort: a hand-over a majority overruled is void (SPEC §6.2).
    absent_declared: dict[int, frozenset[bytes]] = field(default_factory=dict)
    membership_log: list[Entry] = field(default_factory=list)
    # Every well-formed vote.cast folded so far, applied or not, by poll:
    # what closes count inside their cut (core/poll_rules.py).
    ballots: dict[bytes, list[Vote]] = field(default_factory=dict)

    # -- queries ----------------------------------------------------------

    def is_member(self, key: bytes) -> bool:
        member = self.members.get(key)
        return member is not None and member.active

    def anon_barred(self) -> set[bytes]:
        """Members a majority of the other participants of some round named
        for withholding their inner key (SPEC §13.4 ``anon.blame``): they
        never lead a round again. One member's word alone bars no one."""
        return {
            key
            for size, named in self.anon_namings.values()
            for key, by in named.items()
            if 2 * len(by) > size - 1
        }

    def active_members(self) -> list[Member]:
        """Members in the roster (not gone), present or away, in join order:
        who may write entries, and the bound of ``MAX_MEMBERS``."""
        return sorted((m for m in self.members.values() if m.active), key=lambda m: m.order)

    def is_present(self, key: bytes) -> bool:
        member = self.members.get(key)
        return member is not None and member.present

    def present_members(self) -> list[Member]:
        """The one definition of the members who take part (SPEC §6.1
        "Presence"): in the roster and not declared away, in join order.
        Quorum, succession, anonymous rounds and the "N members" figures
        count these and only these."""
        return [m for m in self.active_members() if not m.away]

    def successor(self, after: bytes) -> bytes | None:
        """The deterministic next facilitator: the next present member in join
        order after ``after``, wrapping round; only if no other member is
        present, the next active one (SPEC §6.2)."""
        ring = [m for m in self.present_members() if m.key != after]
        if not ring:
            ring = [m for m in self.active_members() if m.key != after]
        if not ring:
            return None
        position = self.members[after].order if after in self.members else -1
        later = [m for m in ring if m.order > position]
        return (later or ring)[0].key

    def item_step(self, item: bytes) -> int | None:
        """The step of an answer, named or anonymous, by its id."""
        found = self.contribution_index.get(item) or self.anonymous_index.get(item)
        return None if found is None else found.step

    def item_text(self, item: bytes) -> str | None:
        found = self.contribution_index.get(item) or self.anonymous_index.get(item)
        return None if found is None else found.text

    def poll_counts_anonymously(self, poll: Poll) -> bool:
        """Whether a poll's votes are anonymous (§13.4 one channel): every
        poll of an anonymous step, and one opened as anonymous on a "both" step."""
        return poll.secret or self.steps[poll.step].counts_anonymously()

    def anonymous_open(self) -> bool:
        """Whether anything takes anonymous input now: an open step that takes
        anonymous answers, or an open poll on an anonymous step."""
        return any(s.status == "open" and s.allows_anonymous() for s in self.steps) or any(
            p.status == "open" and self.poll_counts_anonymously(p) for p in self.polls.values()
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
                # The translations only where there are some (SPEC §6.8), so
                # the state of a one-language meeting is what it always was.
                + ([s.translations] if s.translations else [])
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
                    [v.canonical() for v in p.votes],
                    [
                        [
                            c.id,
                            c.author,
                            sorted([k, v] for k, v in c.cut.items()),
                            sorted(c.members),
                            [c.result.outcome, c.result.counts, c.result.voters, c.result.quorum],
                            c.digest,
                            sorted(c.cosigners),
                            sorted(
                                [k, au, seq] for k, left in c.objections.items() for au, seq in left
                            ),
                        ]
                        for c in p.closes
                    ],
                    p.outcome,
                    [v.canonical() for v in p.anon_votes],
                ]
                # A secret poll's row ends with true; others keep their old shape.
                + ([True] if p.secret else [])
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
            "anonymous": [c.canonical() for c in self.anonymous_contributions],
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
            **self._presence_canonical(),
            **self._admission_canonical(),
            # Only once someone is named, so meetings without a withholding
            # keep the digests they had (SPEC §13.4, §6.8).
            **(
                {
                    "anon_namings": sorted(
                        [rid, size, sorted([key, sorted(by)] for key, by in named.items())]
                        for rid, (size, named) in self.anon_namings.items()
                    )
                }
                if self.anon_namings
                else {}
            ),
        }

    def _admission_canonical(self) -> dict[str, Any]:
        """``admission`` (SPEC §6.8, §12.11): present only once it differs
        from a new meeting's (joining open, no retired code, no display), so
        the digest of a meeting that never used it is the one of v2.0."""
        if self.joining_open and not self.retired_codes and not self.viewers:
            return {}
        return {
            "admission": [
                self.joining_open,
                sorted(list(words) for words in self.retired_codes),
                sorted([key, name] for key, name in self.viewers.items()),
            ]
        }

    def _presence_canonical(self) -> dict[str, Any]:
        """Presence and replacements (SPEC §6.8): present only once anyone was
        declared away or replaced, so meetings without either keep the digest
        they had before these rules."""
        rows = [
            [m.key, m.away, m.returns, sorted(self.away_declared.get(m.key, ())), m.replaces]
            for m in sorted(self.members.values(), key=lambda m: m.order)
            if m.away or m.returns or self.away_declared.get(m.key) or m.replaces
        ]
        return {"presence": rows} if rows else {}

    def digest(self) -> bytes:
        return hashlib.blake2b(
            b"relsec/v2/state\x00" + pack(self.to_canonical()), digest_size=32
        ).digest()
