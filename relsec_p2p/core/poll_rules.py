"""The rules of polls, tallies and decisions: poll.open, vote.cast, poll.close,
tally.sign, tally.object and outcome.record.

Rules of this file (normative text: protocol/SPEC.md §6.5):
- A close decides its poll from its own cut alone: the members it counts are
  those active when the membership entries inside the cut are folded again on
  their own, and its quorum is over those of them present there (not declared
  away, or voting inside the cut); the votes are each counted member's latest
  vote inside the cut; its author must have been the facilitator there, and
  must be the facilitator where the close folds too (after settled history,
  SPEC §5.1). No entry outside the cut, whatever its Lamport clock, changes a
  close's members, votes or result.
- A close may only cover entries that the fold has already passed: a cut that
  reaches past the close's own place is refused, so every covered entry is
  known when the close is applied, the same way on every laptop.
- A poll may hold several closes (by different facilitators, when a hand-over
  raced the first). Co-signatures and objections count only from members the
  close counted, one per member per poll. A close co-signed by a majority of
  its members is final and decides the poll whatever else arrives
  (``Poll.deciding``); until one is final, the first in fold order does.
- Every check is pure and total (SPEC §5.2): odd data fails the check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .codec import pack
from .feed import Entry
from .fields import (
    MAX_CUT,
    check_member,
    check_reason,
    has_only,
    is_hash,
    is_key,
    is_text,
    is_uint,
    known_poll,
    open_poll,
    parse_cut,
)
from .refusals import Refusal, Refused
from .state import CHOICES, MAX_TEXT, Close, MeetingState, Poll, PollResult, Vote

TALLY_LABEL = b"relsec/v2/tally\x00"

# The types the membership of a cut is folded from (SPEC §6.5): who was a
# member, and who facilitated, depends on these alone.
MEMBERSHIP_TYPES = frozenset(
    {
        "meeting.create",
        "roster.add",
        "roster.leave",
        "roster.remove",
        "roster.replace",
        "roster.away",
        "roster.back",
        "facil.handover",
        "facil.absent",
    }
)

# How the membership of a cut is folded: core/rules.py's own fold, handed in
# to keep the import one way (rules imports this module).
SubFold = Callable[[MeetingState, list[Entry]], MeetingState]


def _facilitator_check(state: MeetingState, entry: Entry) -> Refused | None:
    if state.facilitator != entry.author:
        return Refused(Refusal.NOT_FACILITATOR, "only the facilitator may do this")
    return None


# poll.open --------------------------------------------------------------------


def check_poll_open(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    # is_hash first: a list or map as the key would raise TypeError in every fold.
    if not has_only(data, ("proposal",), ("anonymous",)) or not is_hash(data["proposal"]):
        return Refused(Refusal.NO_SUCH_PROPOSAL, "poll.open names a known proposal")
    if data["proposal"] not in state.proposals:
        return Refused(Refusal.NO_SUCH_PROPOSAL, "poll.open names a known proposal")
    if "anonymous" in data and not isinstance(data["anonymous"], bool):
        return Refused(Refusal.BAD_FIELDS, "poll.open's anonymous is true or false")
    step = state.steps[state.proposals[data["proposal"]].step]
    if data.get("anonymous") is True and step.mode == "named":
        return Refused(Refusal.NAMED_ONLY, "a poll on a named step takes named votes only")
    if any(p.proposal == data["proposal"] and p.status == "open" for p in state.polls.values()):
        return Refused(Refusal.POLL_ALREADY_OPEN, "a poll on that proposal is already open")
    return None


def apply_poll_open(state: MeetingState, entry: Entry) -> None:
    proposal = state.proposals[entry.data["proposal"]]
    secret = entry.data.get("anonymous") is True and state.steps[proposal.step].mode == "both"
    state.polls[entry.hash] = Poll(entry.hash, proposal.id, proposal.step, secret=secret)


# vote.cast ----------------------------------------------------------------------


def check_vote(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("choice", "poll"), ("reason",)):
        return Refused(Refusal.BAD_FIELDS, "vote.cast has choice, poll and optionally reason")
    poll = open_poll(state, data["poll"])
    if isinstance(poll, Refused):
        return poll
    if state.poll_counts_anonymously(poll):
        return Refused(Refusal.ANONYMOUS_ONLY, "this poll takes anonymous votes only")
    if data["choice"] not in CHOICES:
        return Refused(Refusal.BAD_CHOICE, f"choice is one of {', '.join(CHOICES)}")
    return check_reason(data)


def apply_vote(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    poll = state.polls[data["poll"]]
    poll.votes.append(Vote(entry.author, entry.seq, data["choice"], data.get("reason")))


# poll.close ---------------------------------------------------------------------


def effective_cut(state: MeetingState, entry: Entry) -> dict[bytes, int] | None:
    """The close's cut, with its author's own feed up to the close itself
    (the chain already says what its author had written), and every frozen
    feed cut where its fork begins: a fork found later takes nothing the
    close counted away from it (SPEC §3.5, §6.5)."""
    cut = parse_cut(entry.data.get("cut"))
    if cut is None:
        return None
    cut[entry.author] = entry.seq - 1
    for author, fork_seq in state.frozen.items():
        if author in cut:
            cut[author] = min(cut[author], fork_seq - 1)
    return cut


def membership_in_cut(
    state: MeetingState, cut: dict[bytes, int], sub_fold: SubFold
) -> MeetingState:
    """The roster and facilitation as the close's author had them: the
    membership entries inside ``cut``, folded again on their own."""
    inside = [e for e in state.membership_log if e.seq <= cut.get(e.author, 0)]
    return sub_fold(state, inside)


def check_poll_close(state: MeetingState, entry: Entry, sub_fold: SubFold) -> Refused | None:
    data = entry.data
    if not has_only(data, ("cut", "poll")) or parse_cut(data["cut"]) is None:
        return Refused(Refusal.BAD_FIELDS, "poll.close has poll and cut ([[key, seq], ...])")
    poll = known_poll(state, data["poll"])
    if isinstance(poll, Refused):
        return poll
    # A poll may hold more than one close (a hand-over raced the first one);
    # each author closes it once. Which close decides: ``Poll.deciding``.
    if any(close.author == entry.author for close in poll.closes):
        return Refused(Refusal.POLL_CLOSED, "the poll is closed")
    cut = effective_cut(state, entry)
    assert cut is not None  # noqa: S101 (parsed above)
    if any(seq > state.folded_seq.get(author, 0) for author, seq in cut.items()):
        return Refused(Refusal.CUT_AHEAD, "the cut covers entries that come after the close")
    inside = membership_in_cut(state, cut, sub_fold)
    if not inside.is_member(entry.author):
        return Refused(Refusal.NOT_A_CURRENT_MEMBER, "author is not a current member")
    # The facilitator in the cut and where the close folds: a close that
    # claims not to have seen a settled succession folds after it (§5.1),
    # where its author no longer facilitates, and is ignored there.
    return _facilitator_check(inside, entry) or _facilitator_check(state, entry)


def quorum_of(present: int, settings: dict[str, Any]) -> int:
    """Voters a close needs when ``present`` members count (SPEC §6.5):
    ``quorum_pct`` of them, rounded up, at least one."""
    percent = int(settings["quorum_pct"])
    return max(1, -(-present * percent // 100))


def decide(counts: dict[str, int], members: int, settings: dict[str, Any]) -> PollResult:
    """The consensus rule (SPEC §6.5), in order: any block blocks; fewer
    voters than the quorum is no quorum; more stand-asides than the limit is
    no consensus; otherwise consensus (concerns are recorded, not counted against)."""
    voters = sum(counts.values())
    quorum = quorum_of(members, settings)
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


def apply_poll_close(state: MeetingState, entry: Entry, sub_fold: SubFold) -> None:
    poll = state.polls[entry.data["poll"]]
    cut = effective_cut(state, entry)
    assert cut is not None  # noqa: S101 (checked)
    inside = membership_in_cut(state, cut, sub_fold)
    members = frozenset(m.key for m in inside.active_members())
    # The quorum counts the members present in the cut (SPEC §6.5, §6.1
    # "Presence"); a member declared away who voted inside it was there.
    present = {m.key for m in inside.present_members()}
    counts = dict.fromkeys(CHOICES, 0)
    if state.poll_counts_anonymously(poll):
        # Anonymous votes count if the entry that released them is in the cut.
        for choice in poll.latest_anonymous(cut).values():
            counts[choice] += 1
        counted = max(len(present), sum(counts.values()))
    else:
        # Every ballot inside the cut, whether or not the fold applied it where
        # it sorts: a removal or a close back-dated before it cannot take it out.
        for author, choice in latest_ballots(state, poll.id, cut).items():
            if author in members:
                counts[choice] += 1
                present.add(author)
        counted = len(present)
    poll.status = "closed"
    result = decide(counts, counted, state.settings)
    poll.closes.append(
        Close(
            id=entry.hash,
            author=entry.author,
            cut=cut,
            members=members,
            result=result,
            digest=tally_digest(state.mid, poll.id, entry.hash, result),
        )
    )


def latest_ballots(state: MeetingState, poll: bytes, cut: dict[bytes, int]) -> dict[bytes, str]:
    """Each author's latest ballot on ``poll`` inside ``cut``."""
    latest: dict[bytes, str] = {}
    for vote in state.ballots.get(poll, ()):
        if vote.seq <= cut.get(vote.author, 0):
            latest[vote.author] = vote.choice
    return latest


def record_ballot(state: MeetingState, entry: Entry) -> None:
    """Keep every well-formed ``vote.cast`` as a ballot, applied or not (the
    closes count ballots inside their cut; core/rules.py calls this for each
    entry it folds)."""
    data = entry.data
    if (
        has_only(data, ("choice", "poll"), ("reason",))
        and is_hash(data["poll"])
        and data["choice"] in CHOICES
        and check_reason(data) is None
    ):
        state.ballots.setdefault(data["poll"], []).append(
            Vote(entry.author, entry.seq, data["choice"], data.get("reason"))
        )


def tally_digest(mid: bytes, poll: bytes, close: bytes, result: PollResult) -> bytes:
    """The closed tally in a form members co-sign (SPEC §6.5): each client
    recomputes it from its own log and signs only if it agrees. It names the
    close, so two closes with equal results are still answered apart."""
    record = [
        mid,
        poll,
        close,
        result.outcome,
        result.counts,
        result.voters,
        result.members,
        result.quorum,
        result.stand_aside_limit,
    ]
    return hashlib.blake2b(TALLY_LABEL + pack(record), digest_size=32).digest()


# tally.sign and tally.object -------------------------------------------------------


def _answered(poll: Poll, author: bytes) -> bool:
    """A member co-signs or objects once per poll, whichever close it is."""
    return any(author in c.cosigners or author in c.objections for c in poll.closes)


def _counted_close(state: MeetingState, entry: Entry) -> Close | Refused:
    data = entry.data
    poll = state.polls.get(data["poll"])
    if poll is None or not poll.closes:
        return Refused(Refusal.POLL_NOT_CLOSED, "that poll is not closed")
    close = poll.close_by_digest(data["digest"])
    if close is None:
        return Refused(
            Refusal.TALLY_MISMATCH, "the signed tally differs from the one every laptop computes"
        )
    if entry.author not in close.members:
        return Refused(Refusal.NOT_COUNTED, "only a member the close counted may answer it")
    if _answered(poll, entry.author):
        return Refused(Refusal.ALREADY_COSIGNED, "already co-signed")
    return close


def check_tally_sign(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if not has_only(data, ("digest", "poll")) or not is_hash(data["poll"]):
        return Refused(Refusal.BAD_FIELDS, "tally.sign has poll and digest")
    close = _counted_close(state, entry)
    return close if isinstance(close, Refused) else None


def apply_tally_sign(state: MeetingState, entry: Entry) -> None:
    close = state.polls[entry.data["poll"]].close_by_digest(entry.data["digest"])
    assert close is not None  # noqa: S101 (checked)
    close.cosigners.add(entry.author)


def parse_left_out(raw: Any) -> list[tuple[bytes, int]] | None:
    """``[[author, seq], ...]``: 0 to MAX_CUT distinct pairs, ascending. Empty:
    the objector did not take the close's author for the facilitator."""
    if not isinstance(raw, list) or len(raw) > MAX_CUT:
        return None
    pairs: list[tuple[bytes, int]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and is_key(item[0])):
            return None
        if not (is_uint(item[1]) and item[1] >= 1):
            return None
        pairs.append((item[0], item[1]))
    if pairs != sorted(set(pairs)):
        return None
    return pairs


def check_tally_object(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if not has_only(data, ("digest", "left_out", "poll")) or not is_hash(data["poll"]):
        return Refused(Refusal.BAD_FIELDS, "tally.object has digest, left_out and poll")
    left_out = parse_left_out(data["left_out"])
    if left_out is None:
        return Refused(Refusal.BAD_FIELDS, "left_out is a sorted list of [key, seq]")
    close = _counted_close(state, entry)
    if isinstance(close, Refused):
        return close
    poll = state.polls[data["poll"]]
    # Evidence, not opinion: each vote named is a ballot on this poll (or the
    # round entry that released an anonymous one) that the close did not count.
    named = {(v.author, v.seq) for v in state.ballots.get(poll.id, ())}
    released = {(v.author, v.seq) for v in poll.anon_votes}
    for author, seq in left_out:
        outside = seq > close.cut.get(author, 0)
        if (author, seq) in named and (outside or author not in close.members):
            continue
        if (author, seq) in released and outside:
            continue
        return Refused(Refusal.BAD_OBJECTION, "left_out names a vote the close did not miss")
    return None


def apply_tally_object(state: MeetingState, entry: Entry) -> None:
    close = state.polls[entry.data["poll"]].close_by_digest(entry.data["digest"])
    assert close is not None  # noqa: S101 (checked)
    left_out = parse_left_out(entry.data["left_out"])
    assert left_out is not None  # noqa: S101 (checked)
    close.objections[entry.author] = left_out


# outcome.record ------------------------------------------------------------------


def check_outcome(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(data, ("poll", "text")) or not is_hash(data["poll"]):
        return Refused(Refusal.BAD_FIELDS, "outcome.record has poll and text")
    poll = state.polls.get(data["poll"])
    if poll is None or poll.status != "closed":
        return Refused(Refusal.POLL_NOT_CLOSED, "record the outcome of a closed poll")
    if not is_text(data["text"], MAX_TEXT):
        return Refused(Refusal.BAD_TEXT, f"text must be 1 to {MAX_TEXT} characters")
    return None


def apply_outcome(state: MeetingState, entry: Entry) -> None:
    state.polls[entry.data["poll"]].outcome = entry.data["text"]


__all__ = [
    "MEMBERSHIP_TYPES",
    "TALLY_LABEL",
    "apply_outcome",
    "apply_poll_close",
    "apply_poll_open",
    "apply_tally_object",
    "apply_tally_sign",
    "apply_vote",
    "check_outcome",
    "check_poll_close",
    "check_poll_open",
    "check_tally_object",
    "check_tally_sign",
    "check_vote",
    "decide",
    "effective_cut",
    "latest_ballots",
    "membership_in_cut",
    "parse_left_out",
    "quorum_of",
    "record_ballot",
    "tally_digest",
]
