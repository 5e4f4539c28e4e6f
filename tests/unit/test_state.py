"""The fold of the log into the meeting (core/rules.py): every rule, its
authority checks and refusal codes, the consensus rule and the speaking queue.

Entries are written with ``Scribe`` (fakenet.py), which signs what a modified
client could write, so each rule is checked where it matters: in the fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakenet import AGENDA, IDENTITIES, OUTSIDER, PROPOSAL, RATING, TEXT, Scribe

from relsec_p2p.core.feed import Entry
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.poll_rules import decide
from relsec_p2p.core.refusals import Refusal, Refused
from relsec_p2p.core.rules import RULES, apply_entry, why_ignored
from relsec_p2p.core.state import CHOICES, DEFAULT_SETTINGS, Close, Poll, PollResult

A, B, C, D, E = IDENTITIES[:5]
SMALL_ORDER_POINT = b"\x01" + bytes(31)  # the identity point: not of prime order
NOT_FACILITATOR = Refused(Refusal.NOT_FACILITATOR, "only the facilitator may do this")


def verdict(
    scribe: Scribe, who: Identity, kind: str, data: dict[str, Any], **kw: Any
) -> Refused | None:
    """Write the entry, fold, and return why it was ignored (``None``: applied).

    Checks the contract of the rules header on the way: an ignored entry
    leaves the folded meeting exactly as it was, an applied one changes it."""
    before = scribe.state()
    entry = scribe.write(who, kind, data, **kw)
    after = scribe.state()
    reasons = [reason for h, reason in after.ignored if h == entry.hash]
    if reasons:
        assert after.digest() == before.digest()
        return reasons[0]
    assert after.digest() != before.digest()
    return None


# --- scenarios the table starts from ----------------------------------------------


@dataclass
class Ctx:
    scribe: Scribe
    ids: dict[str, bytes] = field(default_factory=dict)


def empty() -> Ctx:
    return Ctx(Scribe(A))


def room() -> Ctx:
    """A created meeting: A (creator, facilitator), B, C, D; no step open."""
    scribe = Scribe(A)
    scribe.create()
    scribe.add(A, B, "Bo")
    scribe.add(A, C, "Cy")
    scribe.add(B, D, "Di")  # any member may add
    return Ctx(scribe)


def text_open() -> Ctx:
    ctx = room()
    ctx.scribe.write(A, "step.open", {"step": TEXT})
    ctx.ids["contrib"] = ctx.scribe.write(B, "contrib.add", {"step": TEXT, "text": "A"}).hash
    return ctx


def linked_open() -> Ctx:
    ctx = text_open()
    ctx.scribe.write(A, "step.open", {"step": 1})
    return ctx


def rating_open() -> Ctx:
    ctx = room()
    ctx.scribe.write(A, "step.open", {"step": RATING})
    return ctx


def proposal_open() -> Ctx:
    ctx = room()
    ctx.scribe.write(A, "step.open", {"step": PROPOSAL})
    ctx.ids["proposal"] = ctx.scribe.write(B, "proposal.add", {"step": PROPOSAL, "text": "P"}).hash
    return ctx


def poll_open() -> Ctx:
    ctx = proposal_open()
    ctx.ids["poll"] = ctx.scribe.write(A, "poll.open", {"proposal": ctx.ids["proposal"]}).hash
    return ctx


def full_cut(ctx: Ctx) -> list[list[Any]]:
    """A cut of everything the scribe has written: what an honest close names."""
    return sorted([e.author, e.seq] for e in ctx.scribe.heads())


def poll_closed() -> Ctx:
    ctx = poll_open()
    ctx.scribe.write(A, "poll.close", {"poll": ctx.ids["poll"], "cut": full_cut(ctx)})
    return ctx


def poll_signed() -> Ctx:
    ctx = poll_closed()
    digest = ctx.scribe.state().polls[ctx.ids["poll"]].tally_digest
    assert digest is not None
    ctx.ids["tally"] = digest
    ctx.scribe.write(C, "tally.sign", {"poll": ctx.ids["poll"], "digest": digest})
    return ctx


def poll_signed_then_added() -> Ctx:
    ctx = poll_signed()
    ctx.scribe.add(A, E, "Eve")
    return ctx


def poll_with_late_vote() -> Ctx:
    """C votes (inside the cut), A closes with a cut that stops before C's
    second vote, which was written before the close (it sorts before it)."""
    ctx = poll_open()
    early = ctx.scribe.write(C, "vote.cast", {"poll": ctx.ids["poll"], "choice": "agree"})
    late = ctx.scribe.write(C, "vote.cast", {"poll": ctx.ids["poll"], "choice": "block"})
    cut = [[a, seq if a != C.key else early.seq] for a, seq in full_cut(ctx)]
    ctx.scribe.write(A, "poll.close", {"poll": ctx.ids["poll"], "cut": cut})
    digest = ctx.scribe.state().polls[ctx.ids["poll"]].tally_digest
    assert digest is not None
    ctx.ids["tally"] = digest
    ctx.ids["early_seq"], ctx.ids["late_seq"] = bytes([early.seq]), bytes([late.seq])
    return ctx


def b_facilitates_poll() -> Ctx:
    """B facilitates (A handed over) and a poll is open."""
    ctx = poll_open()
    ctx.scribe.write(A, "facil.handover", {"to": B.key})
    return ctx


def b_facilitates() -> Ctx:
    ctx = room()
    ctx.scribe.write(A, "facil.handover", {"to": B.key})
    return ctx


def b_left() -> Ctx:
    ctx = room()
    ctx.scribe.write(B, "roster.leave", {})
    return ctx


def d_away() -> Ctx:
    """A, B and C (3 of the 4 present) declared D away (SPEC §6.1 "Presence")."""
    ctx = room()
    for declarer in (A, B, C):
        ctx.scribe.write(declarer, "roster.away", {"who": D.key, "returns": 0})
    return ctx


def e_rejoined() -> Ctx:
    """E joined after the others: a newcomer the facilitator may match."""
    ctx = room()
    ctx.scribe.add(B, E, "Cy")
    return ctx


def hand_raised() -> Ctx:
    ctx = room()
    ctx.scribe.write(B, "hand.raise", {})
    return ctx


def _create_data(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "T",
        "name": "Ana",
        "ring": A.ring_key,
        "agenda": AGENDA,
        "settings": {},
    }
    data.update(change)
    return data


def _step(**change: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"id": "s", "title": "S", "prompt": "P", "mode": "named", "kind": "text"}
    step.update(change)
    return {k: v for k, v in step.items() if v is not None}


def _add(member: Identity, **change: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"key": member.key, "ring": member.ring_key, "name": "Ed"}
    data.update(change)
    return data


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[], Ctx]
    who: Identity
    kind: str
    data: Callable[[Ctx], dict[str, Any]]
    expect: str | None  # a phrase of the reason it is ignored; None: applied


def _(value: dict[str, Any]) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: value


def _vote_data(choice: str) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"poll": ctx.ids["poll"], "choice": choice}


CASES = [
    # meeting.create
    Case("creator creates", empty, A, "meeting.create", _(_create_data()), None),
    Case("non-creator creates", empty, B, "meeting.create", _(_create_data()), "only the creator"),
    Case("second create", room, A, "meeting.create", _(_create_data()), "already exists"),
    Case("small-order ring", empty, A, "meeting.create", _(_create_data(ring=SMALL_ORDER_POINT)),
         "prime-order"),
    Case("short ring", empty, A, "meeting.create", _(_create_data(ring=b"\x01" * 31)),
         "prime-order"),
    Case("blank title", empty, A, "meeting.create", _(_create_data(title="  ")), "non-empty"),
    Case("extra field", empty, A, "meeting.create", _({**_create_data(), "x": 1}),
         "meeting.create has"),
    Case("duplicate step ids", empty, A, "meeting.create",
         _(_create_data(agenda=[_step(), _step()])), "unique"),
    Case("link to nowhere", empty, A, "meeting.create",
         _(_create_data(agenda=[_step(links=["zz"])])), "does not exist"),
    Case("rating without scale", empty, A, "meeting.create",
         _(_create_data(agenda=[_step(kind="rating")])), "scale labels"),
    Case("text with scale", empty, A, "meeting.create",
         _(_create_data(agenda=[_step(scale=["a", "b"])])), "scale labels"),
    Case("unknown mode", empty, A, "meeting.create",
         _(_create_data(agenda=[_step(mode="secret")])), "mode or kind"),
    Case("agenda too long", empty, A, "meeting.create",
         _(_create_data(agenda=[_step(id=f"s{i}") for i in range(65)])), "at most"),
    Case("quorum 0", empty, A, "meeting.create", _(_create_data(settings={"quorum_pct": 0})),
         "quorum_pct"),
    Case("quorum 101", empty, A, "meeting.create", _(_create_data(settings={"quorum_pct": 101})),
         "quorum_pct"),
    Case("unknown setting", empty, A, "meeting.create", _(_create_data(settings={"x": 1})),
         "settings are a map"),
    Case("attribute as int", empty, A, "meeting.create",
         _(_create_data(settings={"attribute_named": 1})), "true or false"),
    Case("anon threshold 0", empty, A, "meeting.create",
         _(_create_data(settings={"anon_threshold": 0})), "anon_threshold"),
    # before the meeting exists, and unknown types
    Case("act before create", empty, A, "hand.raise", _({}), "does not exist yet"),
    Case("unknown type", room, A, "meeting.rename", _({"title": "x"}), "unknown entry type"),
    # roster.add
    Case("facilitator adds", room, A, "roster.add", _(_add(E)), None),
    Case("member adds", room, C, "roster.add", _(_add(E)), None),
    Case("outsider adds", room, OUTSIDER, "roster.add", _(_add(E)), "not a current member"),
    Case("add a member again", room, A, "roster.add", _(_add(B, ring=E.ring_key)),
         "already a member"),
    Case("re-add who left", b_left, A, "roster.add", _(_add(B, ring=E.ring_key)),
         "already a member"),
    Case("reuse a ring key", room, A, "roster.add", _(_add(E, ring=B.ring_key)), "distinct"),
    Case("small-order ring on add", room, A, "roster.add", _(_add(E, ring=SMALL_ORDER_POINT)),
         "valid ring point"),
    Case("short key", room, A, "roster.add", _(_add(E, key=E.key[:31])), "32-byte key"),
    Case("blank name", room, A, "roster.add", _(_add(E, name="")), "short name"),
    Case("long name", room, A, "roster.add", _(_add(E, name="x" * 65)), "short name"),
    # roster.leave
    Case("member leaves", room, C, "roster.leave", _({}), None),
    Case("facilitator leaves", room, A, "roster.leave", _({}), None),
    Case("leave with fields", room, C, "roster.leave", _({"why": "x"}), "no fields"),
    Case("leave twice", b_left, B, "roster.leave", _({}), "after the author left"),
    Case("outsider leaves", room, OUTSIDER, "roster.leave", _({}), "not a current member"),
    # roster.remove
    Case("facilitator removes", room, A, "roster.remove", _({"who": C.key, "upto": 0}), None),
    Case("member removes", room, B, "roster.remove", _({"who": C.key, "upto": 0}),
         "only the facilitator"),
    Case("remove self", room, A, "roster.remove", _({"who": A.key, "upto": 1}), "roster.leave"),
    Case("remove outsider", room, A, "roster.remove", _({"who": OUTSIDER.key, "upto": 0}),
         "not a current member"),
    Case("remove who left", b_left, A, "roster.remove", _({"who": B.key, "upto": 1}),
         "not a current member"),
    Case("remove without upto", room, A, "roster.remove", _({"who": C.key}), "upto"),
    Case("remove with bool upto", room, A, "roster.remove", _({"who": C.key, "upto": True}),
         "upto"),
    # roster.replace
    Case("facilitator replaces", e_rejoined, A, "roster.replace",
         _({"who": C.key, "by": E.key, "upto": 0}), None),
    Case("member replaces", e_rejoined, B, "roster.replace",
         _({"who": C.key, "by": E.key, "upto": 0}), "only the facilitator"),
    Case("replace by an earlier member", e_rejoined, A, "roster.replace",
         _({"who": E.key, "by": C.key, "upto": 0}), "joined after who"),
    Case("replace without by", e_rejoined, A, "roster.replace",
         _({"who": C.key, "upto": 0}), "has by (key)"),
    # roster.away and roster.back
    Case("declare away", room, B, "roster.away", _({"who": D.key, "returns": 0}), None),
    Case("declare oneself away", room, B, "roster.away", _({"who": B.key, "returns": 0}),
         "another member who is present"),
    Case("declare away a stale absence", room, B, "roster.away",
         _({"who": D.key, "returns": 1}), "come back since"),
    Case("declare away without returns", room, B, "roster.away", _({"who": D.key}),
         "has returns"),
    Case("come back", d_away, D, "roster.back", _({}), None),
    Case("come back when present", room, D, "roster.back", _({}), "declared away comes back"),
    Case("come back with fields", d_away, D, "roster.back", _({"x": 1}), "no fields"),
    # facil.handover
    Case("hand over", room, A, "facil.handover", _({"to": B.key}), None),
    Case("member hands over", room, B, "facil.handover", _({"to": C.key}), "only the facilitator"),
    Case("hand over to self", room, A, "facil.handover", _({"to": A.key}), "another current"),
    Case("hand over to outsider", room, A, "facil.handover", _({"to": OUTSIDER.key}),
         "another current"),
    Case("hand over to who left", b_left, A, "facil.handover", _({"to": B.key}),
         "another current"),
    Case("hand over to a list", room, A, "facil.handover", _({"to": [B.key]}), "has to"),
    # facil.absent
    Case("declare absent", room, B, "facil.absent", _({"term": 1}), None),
    Case("stale term", room, B, "facil.absent", _({"term": 0}), "stale term"),
    Case("facilitator absent", room, A, "facil.absent", _({"term": 1}), "themselves"),
    Case("absent without term", room, B, "facil.absent", _({}), "has term"),
    Case("outsider absent", room, OUTSIDER, "facil.absent", _({"term": 1}), "not a current"),
    # step.open / step.close
    Case("open a step", room, A, "step.open", _({"step": TEXT}), None),
    Case("member opens a step", room, B, "step.open", _({"step": TEXT}), "only the facilitator"),
    Case("open past the agenda", room, A, "step.open", _({"step": len(AGENDA)}), "existing step"),
    Case("open step True", room, A, "step.open", _({"step": True}), "existing step"),
    Case("open the open step", text_open, A, "step.open", _({"step": TEXT}), "already open"),
    Case("close the open step", text_open, A, "step.close", _({"step": TEXT}), None),
    Case("member closes", text_open, B, "step.close", _({"step": TEXT}), "only the facilitator"),
    Case("close a pending step", text_open, A, "step.close", _({"step": RATING}), "not open"),
    # contrib.add
    Case("contribute", text_open, C, "contrib.add", _({"step": TEXT, "text": "x"}), None),
    Case("contribute with tag", text_open, C, "contrib.add",
         _({"step": TEXT, "text": "x", "tag": "risk"}), None),
    Case("reply in the same step", text_open, C, "contrib.add",
         lambda ctx: {"step": TEXT, "text": "x", "ref": ctx.ids["contrib"]}, None),
    Case("reply from a linked step", linked_open, C, "contrib.add",
         lambda ctx: {"step": 1, "text": "x", "ref": ctx.ids["contrib"]}, None),
    Case("contribute to a closed step (a step change raced it)", linked_open, C, "contrib.add",
         _({"step": TEXT, "text": "x"}), None),
    Case("contribute to a step not opened yet", room, C, "contrib.add",
         _({"step": TEXT, "text": "x"}), "not been opened"),
    Case("blank text", text_open, C, "contrib.add", _({"step": TEXT, "text": " \n"}), "1 to"),
    Case("text too long", text_open, C, "contrib.add", _({"step": TEXT, "text": "x" * 4001}),
         "1 to"),
    Case("tag too long", text_open, C, "contrib.add",
         _({"step": TEXT, "text": "x", "tag": "t" * 33}), "tag"),
    Case("unknown ref", text_open, C, "contrib.add",
         _({"step": TEXT, "text": "x", "ref": b"\x00" * 32}), "no known contribution"),
    Case("outsider contributes", text_open, OUTSIDER, "contrib.add",
         _({"step": TEXT, "text": "x"}), "not a current member"),
    # rating.set
    Case("rate", rating_open, C, "rating.set", _({"step": RATING, "value": 2}), None),
    Case("rate past the scale", rating_open, C, "rating.set", _({"step": RATING, "value": 3}),
         "position on the step's scale"),
    Case("rate negative", rating_open, C, "rating.set", _({"step": RATING, "value": -1}),
         "position on the step's scale"),
    Case("rate a text step", text_open, C, "rating.set", _({"step": TEXT, "value": 0}),
         "no named ratings"),
    # proposal.add
    Case("propose", proposal_open, C, "proposal.add", _({"step": PROPOSAL, "text": "Q"}), None),
    Case("propose in a text step", text_open, C, "proposal.add", _({"step": TEXT, "text": "Q"}),
         "proposal step"),
    Case("blank proposal", proposal_open, C, "proposal.add", _({"step": PROPOSAL, "text": ""}),
         "1 to"),
    # poll.open
    Case("open a poll", proposal_open, A, "poll.open",
         lambda ctx: {"proposal": ctx.ids["proposal"]}, None),
    Case("member opens a poll", proposal_open, B, "poll.open",
         lambda ctx: {"proposal": ctx.ids["proposal"]}, "only the facilitator"),
    Case("poll on nothing", proposal_open, A, "poll.open", _({"proposal": b"\x00" * 32}),
         "known proposal"),
    Case("poll on a list", proposal_open, A, "poll.open", _({"proposal": [1]}), "known proposal"),
    Case("poll on a map", proposal_open, A, "poll.open", _({"proposal": {}}), "known proposal"),
    Case("second open poll", poll_open, A, "poll.open",
         lambda ctx: {"proposal": ctx.ids["proposal"]}, "already open"),
    Case("new poll after close", poll_closed, A, "poll.open",
         lambda ctx: {"proposal": ctx.ids["proposal"]}, None),
    # vote.cast
    *(
        Case(f"vote {choice}", poll_open, C, "vote.cast", _vote_data(choice), None)
        for choice in CHOICES
    ),
    Case("vote maybe", poll_open, C, "vote.cast",
         lambda ctx: {"poll": ctx.ids["poll"], "choice": "maybe"}, "choice is one of"),
    Case("vote on a closed poll", poll_closed, C, "vote.cast",
         lambda ctx: {"poll": ctx.ids["poll"], "choice": "agree"}, "closed"),
    Case("vote on no poll", poll_open, C, "vote.cast",
         _({"poll": b"\x00" * 32, "choice": "agree"}), "no such poll"),
    Case("outsider votes", poll_open, OUTSIDER, "vote.cast",
         lambda ctx: {"poll": ctx.ids["poll"], "choice": "block"}, "not a current member"),
    # poll.close
    Case("close a poll", poll_open, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": full_cut(ctx)}, None),
    Case("close with a cut of nothing but one's own feed", poll_open, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": []}, None),
    Case("member closes a poll", poll_open, B, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": full_cut(ctx)}, "only the facilitator"),
    Case("a cut past the close's own place", poll_open, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": [[C.key, 99]]}, "come after the close"),
    Case("a member outside the cut's roster closes", b_facilitates_poll, B, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": [[A.key, 1]]}, "not a current member"),
    Case("close twice", poll_closed, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": []}, "closed"),
    Case("cut not a list", poll_open, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": {}}, "cut"),
    Case("cut repeats a key", poll_open, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": [[C.key, 1], [C.key, 2]]}, "cut"),
    Case("cut with negative seq", poll_open, A, "poll.close",
         lambda ctx: {"poll": ctx.ids["poll"], "cut": [[C.key, -1]]}, "cut"),
    # hand.raise / hand.lower / hand.next
    Case("raise a hand", room, B, "hand.raise", _({}), None),
    Case("raise twice", hand_raised, B, "hand.raise", _({}), "already raised"),
    Case("raise with fields", room, B, "hand.raise", _({"x": 1}), "no fields"),
    Case("lower own hand", hand_raised, B, "hand.lower", _({}), None),
    Case("facilitator lowers a hand", hand_raised, A, "hand.lower", _({"who": B.key}), None),
    Case("member lowers another's hand", hand_raised, C, "hand.lower", _({"who": B.key}),
         "only the facilitator"),
    Case("lower a hand not raised", room, B, "hand.lower", _({}), "not raised"),
    Case("facilitator lowers a list", hand_raised, A, "hand.lower", _({"who": [B.key]}),
         "not raised"),
    Case("next speaker", hand_raised, A, "hand.next", _({}), None),
    Case("member calls next", hand_raised, B, "hand.next", _({}), "only the facilitator"),
    Case("next with nobody waiting", room, A, "hand.next", _({}), "nobody"),
    # ack (SPEC §6.10)
    Case("acknowledge", room, B, "ack", _({}), None),
    Case("ack with fields", room, B, "ack", _({"x": 1}), "no fields"),
    Case("outsider acknowledges", room, OUTSIDER, "ack", _({}), "not a current member"),
    # removing the creator
    Case("remove the creator", b_facilitates, B, "roster.remove", _({"who": A.key, "upto": 4}),
         None),
    Case("remove the creator's creation", b_facilitates, B, "roster.remove",
         _({"who": A.key, "upto": 0}), "cannot cut the meeting's creation"),
    # tally.sign
    Case("co-sign the tally", poll_signed, D, "tally.sign",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"]}, None),
    Case("co-sign another tally", poll_signed, D, "tally.sign",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": b"\x00" * 32}, "differs"),
    Case("co-sign twice", poll_signed, C, "tally.sign",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"]}, "already"),
    Case("co-sign an open poll", poll_open, C, "tally.sign",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": b"\x00" * 32}, "not closed"),
    Case("co-sign a list", poll_signed, D, "tally.sign",
         lambda ctx: {"poll": [ctx.ids["poll"]], "digest": ctx.ids["tally"]}, "has poll"),
    Case("outsider co-signs", poll_signed, OUTSIDER, "tally.sign",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"]}, "counted"),
    Case("a member added after the close co-signs", poll_signed_then_added, E, "tally.sign",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"]}, "counted"),
    # tally.object
    Case("object, naming a vote outside the cut", poll_with_late_vote, D, "tally.object",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"],
                      "left_out": [[C.key, ctx.ids["late_seq"][0]]]}, None),
    Case("object, naming a vote inside the cut", poll_with_late_vote, D, "tally.object",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"],
                      "left_out": [[C.key, ctx.ids["early_seq"][0]]]}, "did not miss"),
    Case("object, naming no vote at all", poll_with_late_vote, D, "tally.object",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"],
                      "left_out": [[C.key, 1]]}, "did not miss"),
    Case("object with nothing left out (not the facilitator I knew)", poll_with_late_vote, D,
         "tally.object",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"], "left_out": []},
         None),
    Case("object with a left_out that is not sorted", poll_with_late_vote, D, "tally.object",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"],
                      "left_out": [[C.key, 9], [C.key, 8]]}, "left_out"),
    Case("object after co-signing", poll_signed, C, "tally.object",
         lambda ctx: {"poll": ctx.ids["poll"], "digest": ctx.ids["tally"],
                      "left_out": [[C.key, 1]]}, "already"),
    # outcome.record
    Case("record the outcome", poll_closed, A, "outcome.record",
         lambda ctx: {"poll": ctx.ids["poll"], "text": "We do X"}, None),
    Case("member records", poll_closed, B, "outcome.record",
         lambda ctx: {"poll": ctx.ids["poll"], "text": "We do X"}, "only the facilitator"),
    Case("record while open", poll_open, A, "outcome.record",
         lambda ctx: {"poll": ctx.ids["poll"], "text": "We do X"}, "closed poll"),
    Case("record blank", poll_closed, A, "outcome.record",
         lambda ctx: {"poll": ctx.ids["poll"], "text": ""}, "1 to"),
    # join.code
    Case("publish a join code", room, C, "join.code",
         _({"np": 42, "words": ["harbor", "velvet", "orbit"]}), None),
    Case("nameplate 9", room, C, "join.code", _({"np": 9, "words": ["a", "b", "c"]}), "np"),
    Case("nameplate 100", room, C, "join.code", _({"np": 100, "words": ["a", "b", "c"]}), "np"),
    Case("two words", room, C, "join.code", _({"np": 42, "words": ["a", "b"]}), "three"),
    Case("capital word", room, C, "join.code", _({"np": 42, "words": ["A", "b", "c"]}), "three"),
    Case("outsider join code", room, OUTSIDER, "join.code",
         _({"np": 42, "words": ["a", "b", "c"]}), "not a current member"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    ctx = case.setup()
    reason = verdict(ctx.scribe, case.who, case.kind, case.data(ctx))
    if case.expect is None:
        assert reason is None
    else:
        assert reason is not None and case.expect in reason.text, reason


def test_each_phrase_of_the_table_has_one_stable_code() -> None:
    """A front end words a refusal by its code (app/controller.py), so the
    same phrase must never come with two codes."""
    codes: dict[str, set[Refusal]] = {}
    for case in CASES:
        if case.expect is None:
            continue
        ctx = case.setup()
        reason = verdict(ctx.scribe, case.who, case.kind, case.data(ctx))
        assert reason is not None and isinstance(reason.code, Refusal), case.name
        codes.setdefault(reason.text, set()).add(reason.code)
    assert {text: found for text, found in codes.items() if len(found) > 1} == {}
    assert codes["only the facilitator may do this"] == {Refusal.NOT_FACILITATOR}
    assert codes["that step is not open"] == {Refusal.STEP_NOT_OPEN}
    assert codes["author is not a current member"] == {Refusal.NOT_A_CURRENT_MEMBER}


# Rules whose checks need machinery of their own (shuffle rounds) are tested
# in their own module; each must exist and name the rule.
COVERED_ELSEWHERE = {
    "anon.round": "test_anon_state.py",
    "anon.blame": "test_anon_state.py",
    "join.open": "test_admission_rules.py",
    "viewer.add": "test_admission_rules.py",
    "viewer.remove": "test_admission_rules.py",
}


def test_every_rule_has_accepted_and_ignored_cases() -> None:
    accepted = {c.kind for c in CASES if c.expect is None}
    ignored = {c.kind for c in CASES if c.expect is not None}
    elsewhere = set(COVERED_ELSEWHERE)
    assert set(RULES) <= accepted | elsewhere, set(RULES) - accepted - elsewhere
    assert set(RULES) <= ignored | elsewhere, set(RULES) - ignored - elsewhere
    here = Path(__file__).parent
    for kind, module in COVERED_ELSEWHERE.items():
        if kind in RULES:
            assert f'"{kind}"' in (here / module).read_text(), (kind, module)


def test_why_ignored_does_not_mutate() -> None:
    # The table checks digests; this checks the whole state for one entry per rule.
    for case in CASES:
        ctx = case.setup()
        state = ctx.scribe.state()
        entry = ctx.scribe.write(case.who, case.kind, case.data(ctx), keep=False)
        before = repr(state)
        why_ignored(state, entry)
        assert repr(state) == before, case.name


# --- what applied rules do --------------------------------------------------------


def test_create_sets_up_the_meeting() -> None:
    state = room().scribe.state()
    assert state.created and state.title == "Relational security"
    assert state.facilitator == A.key and state.term == 1
    assert [m.key for m in state.active_members()] == [A.key, B.key, C.key, D.key]
    assert [m.order for m in state.active_members()] == [0, 1, 2, 3]
    assert state.epoch == 4  # creation, then one per addition
    assert state.settings == DEFAULT_SETTINGS
    assert [s.id for s in state.steps] == [s["id"] for s in AGENDA]


def test_opening_a_step_closes_the_current_one() -> None:
    ctx = text_open()
    ctx.scribe.write(A, "step.open", {"step": RATING})
    state = ctx.scribe.state()
    assert state.current == RATING
    assert [s.status for s in state.steps][: RATING + 1] == ["closed", "pending", "open"]
    ctx.scribe.write(A, "step.close", {"step": RATING})
    assert ctx.scribe.state().current is None


def test_contributions_keep_their_author_step_and_reply() -> None:
    ctx = text_open()
    reply = ctx.scribe.write(
        C, "contrib.add", {"step": TEXT, "text": "B", "ref": ctx.ids["contrib"]}
    )
    state = ctx.scribe.state()
    assert [(c.author, c.text, c.ref) for c in state.contributions] == [
        (B.key, "A", None),
        (C.key, "B", ctx.ids["contrib"]),
    ]
    assert state.contribution_index[reply.hash].step == TEXT
    assert state.named_counts == {B.key: 1, C.key: 1}


def test_reply_across_unlinked_steps_is_ignored() -> None:
    ctx = text_open()
    ctx.scribe.write(A, "step.open", {"step": PROPOSAL})  # "forward" links to nothing
    reason = verdict(
        ctx.scribe, C, "contrib.add", {"step": PROPOSAL, "text": "x", "ref": ctx.ids["contrib"]}
    )
    assert reason is not None and reason.code is Refusal.BAD_REF and "links to" in reason.text


def test_named_answers_are_refused_on_an_anonymous_step() -> None:
    ctx = room()
    ctx.scribe.write(A, "step.open", {"step": 4})
    reason = verdict(ctx.scribe, C, "contrib.add", {"step": 4, "text": "x"})
    assert reason is not None and reason.code is Refusal.ANONYMOUS_ONLY
    assert "anonymous" in reason.text


def test_named_votes_are_refused_on_an_anonymous_step() -> None:
    agenda = [_step(id="p", kind="proposal", mode="anonymous")]
    scribe = Scribe(A)
    scribe.create(agenda=agenda)
    scribe.add(A, B)
    scribe.write(A, "step.open", {"step": 0})
    proposal = scribe.write(B, "proposal.add", {"step": 0, "text": "P"})
    poll = scribe.write(A, "poll.open", {"proposal": proposal.hash})
    reason = verdict(scribe, B, "vote.cast", {"poll": poll.hash, "choice": "agree"})
    assert reason is not None and reason.code is Refusal.ANONYMOUS_ONLY
    assert "anonymous votes only" in reason.text


def test_latest_rating_wins() -> None:
    ctx = rating_open()
    ctx.scribe.write(C, "rating.set", {"step": RATING, "value": 0})
    ctx.scribe.write(C, "rating.set", {"step": RATING, "value": 2})
    ctx.scribe.write(D, "rating.set", {"step": RATING, "value": 1})
    assert ctx.scribe.state().ratings == {(RATING, None, C.key): 2, (RATING, None, D.key): 1}


# --- facilitation -------------------------------------------------------------------


def test_handover_moves_authority() -> None:
    ctx = room()
    scribe = ctx.scribe
    scribe.write(C, "facil.absent", {"term": 1})
    scribe.write(A, "facil.handover", {"to": B.key})
    state = scribe.state()
    assert state.facilitator == B.key and state.term == 2
    assert state.absent_votes == set()  # a new term starts clean
    assert verdict(scribe, A, "step.open", {"step": TEXT}) == NOT_FACILITATOR
    assert verdict(scribe, B, "step.open", {"step": TEXT}) is None
    # And back again.
    assert verdict(scribe, B, "facil.handover", {"to": A.key}) is None
    assert verdict(scribe, B, "step.close", {"step": TEXT}) == NOT_FACILITATOR


def test_absent_majority_passes_facilitation_to_the_successor() -> None:
    scribe = room().scribe  # 4 members: a majority of the 3 others is 2
    scribe.write(B, "facil.absent", {"term": 1})
    scribe.write(B, "facil.absent", {"term": 1})  # the same member twice counts once
    assert scribe.state().facilitator == A.key
    scribe.write(D, "facil.absent", {"term": 1})
    state = scribe.state()
    assert state.facilitator == B.key  # the next in join order after A
    assert state.term == 2 and state.absent_votes == set()
    # Declarations for the old term are stale now.
    assert verdict(scribe, C, "facil.absent", {"term": 1}) is not None


def test_successor_wraps_round_and_skips_who_is_gone() -> None:
    scribe = room().scribe
    scribe.write(A, "facil.handover", {"to": D.key})  # D joined last
    scribe.write(C, "roster.leave", {})
    scribe.write(B, "facil.absent", {"term": 2})
    scribe.write(A, "facil.absent", {"term": 2})  # 3 members: 2 of the 2 others
    assert scribe.state().facilitator == A.key  # wraps to the first active member
    scribe.write(B, "roster.leave", {})
    state = scribe.state()
    assert state.successor(A.key) == D.key  # B and C are gone


def test_the_absent_quorum_is_a_majority_of_the_others() -> None:
    scribe = Scribe(A)
    scribe.create()
    members = IDENTITIES[1:6]
    for member in members:
        scribe.add(A, member)
    # 6 members: 5 others, a majority is 3.
    for voter in members[:2]:
        scribe.write(voter, "facil.absent", {"term": 1})
    assert scribe.state().facilitator == A.key
    scribe.write(members[2], "facil.absent", {"term": 1})
    assert scribe.state().facilitator == B.key


def test_facilitator_leaving_hands_over_to_the_successor() -> None:
    scribe = room().scribe
    scribe.write(A, "roster.leave", {})
    state = scribe.state()
    assert state.facilitator == B.key and state.term == 2
    assert not state.is_member(A.key) and state.members[A.key].gone == "left"
    assert verdict(scribe, A, "step.open", {"step": TEXT}) is not None
    assert verdict(scribe, B, "step.open", {"step": TEXT}) is None


def test_last_member_leaving_leaves_no_facilitator() -> None:
    scribe = Scribe(A)
    scribe.create()
    scribe.write(A, "roster.leave", {})
    assert scribe.state().facilitator is None


# --- leaving and removal ----------------------------------------------------------------


def test_left_member_has_no_more_say() -> None:
    ctx = text_open()
    leave = ctx.scribe.write(C, "roster.leave", {})
    member = ctx.scribe.state().members[C.key]
    assert (member.active, member.gone, member.upto) == (False, "left", leave.seq)
    assert verdict(ctx.scribe, C, "contrib.add", {"step": TEXT, "text": "x"}) is not None


def test_removed_member_later_entries_have_no_effect() -> None:
    ctx = text_open()
    scribe = ctx.scribe
    scribe.write(C, "hand.raise", {})
    scribe.write(A, "roster.remove", {"who": C.key, "upto": 1})
    state = scribe.state()
    member = state.members[C.key]
    assert (member.active, member.gone, member.upto) == (False, "removed", 1)
    assert C.key not in state.queue.waiting  # their raised hand went with them
    for kind, data in [
        ("contrib.add", {"step": TEXT, "text": "still here"}),
        ("hand.raise", {}),
        ("roster.add", _add(E)),
        ("facil.absent", {"term": 1}),
    ]:
        assert verdict(scribe, C, kind, data) is not None, kind


def test_removed_member_back_dated_entry_has_no_effect() -> None:
    """C writes a contribution with a Lamport clock below the removal's (as a
    modified client may). It folds before the removal, so the fold has to
    start again knowing C's cap."""
    ctx = text_open()
    scribe = ctx.scribe
    c1 = scribe.write(C, "hand.raise", {})
    scribe.write(B, "hand.raise", {})
    scribe.write(D, "hand.raise", {})
    removal = scribe.write(A, "roster.remove", {"who": C.key, "upto": c1.seq})
    before = scribe.state()
    back_dated = scribe.write(C, "contrib.add", {"step": TEXT, "text": "sneaky"}, lam=c1.lam + 1)
    assert back_dated.order_key < removal.order_key  # it does fold first
    after = scribe.state()
    assert "sneaky" not in [c.text for c in after.contributions]
    assert after.digest() == before.digest()
    assert any(h == back_dated.hash for h, _ in after.ignored)


def test_a_back_dated_entry_of_a_member_still_in_counts() -> None:
    # The control for the test above: the same move by someone not removed works.
    ctx = text_open()
    scribe = ctx.scribe
    d1 = scribe.write(D, "hand.raise", {})
    scribe.write(A, "roster.remove", {"who": C.key, "upto": 0})
    scribe.write(D, "contrib.add", {"step": TEXT, "text": "fine"}, lam=d1.lam + 1)
    assert "fine" in [c.text for c in scribe.state().contributions]


def test_removed_member_entries_up_to_the_cut_still_count() -> None:
    ctx = text_open()
    scribe = ctx.scribe
    c1 = scribe.write(C, "contrib.add", {"step": TEXT, "text": "before"})
    scribe.write(A, "roster.remove", {"who": C.key, "upto": c1.seq})
    assert "before" in [c.text for c in scribe.state().contributions]


# --- polls and the consensus rule -------------------------------------------------------


def _counts(**given: int) -> dict[str, int]:
    counts = dict.fromkeys(CHOICES, 0)
    counts.update(given)
    return counts


DECIDE = [
    # (counts, members, settings, outcome)
    (_counts(agree=4), 4, {}, "consensus"),
    (_counts(agree=3, block=1), 4, {}, "blocked"),
    (_counts(block=1), 4, {}, "blocked"),  # a block blocks even without quorum
    (_counts(agree=2), 4, {}, "no_quorum"),  # 75 % of 4 is 3
    (_counts(agree=3), 4, {}, "consensus"),
    (_counts(agree=3), 5, {}, "no_quorum"),  # 75 % of 5 rounds up to 4
    (_counts(agree=4), 5, {}, "consensus"),
    (_counts(concerns=4), 4, {}, "consensus"),  # concerns are recorded, not counted against
    (_counts(agree=2, stand_aside=2), 4, {}, "consensus"),  # at the limit of 2
    (_counts(agree=1, stand_aside=3), 4, {}, "no_consensus"),  # over it
    (_counts(agree=4, stand_aside=1), 5, {"stand_aside_limit": 0}, "no_consensus"),
    (_counts(stand_aside=3, block=1), 4, {}, "blocked"),  # block before stand-aside
    (_counts(agree=3), 4, {"quorum_pct": 100}, "no_quorum"),
    (_counts(agree=1), 4, {"quorum_pct": 1}, "consensus"),
    (_counts(), 0, {}, "no_quorum"),  # the quorum is at least one voter
    (_counts(stand_aside=1), 1, {}, "consensus"),
]


@pytest.mark.parametrize(("counts", "members", "settings", "outcome"), DECIDE)
def test_decide(
    counts: dict[str, int], members: int, settings: dict[str, Any], outcome: str
) -> None:
    result = decide(counts, members, {**DEFAULT_SETTINGS, **settings})
    assert result.outcome == outcome
    assert result.voters == sum(counts.values()) and result.members == members
    assert str(result.quorum) in result.rule()


def _close(ctx: Ctx, cut_from: list[Entry] | None = None) -> PollResult:
    """Close the poll with a cut of every author's latest entry written so far."""
    scribe = ctx.scribe
    heads: dict[bytes, int] = {}
    for entry in scribe.entries if cut_from is None else cut_from:
        heads[entry.author] = max(heads.get(entry.author, 0), entry.seq)
    scribe.write(
        A, "poll.close", {"poll": ctx.ids["poll"], "cut": [[k, v] for k, v in heads.items()]}
    )
    poll = scribe.state().polls[ctx.ids["poll"]]
    assert poll.status == "closed" and poll.result is not None
    return poll.result


def _vote(ctx: Ctx, who: Identity, choice: str, **kw: Any) -> Entry:
    return ctx.scribe.write(who, "vote.cast", {"poll": ctx.ids["poll"], "choice": choice}, **kw)


def test_poll_result_follows_the_rule() -> None:
    ctx = poll_open()
    for who in (A, B, C):
        _vote(ctx, who, "agree")
    result = _close(ctx)
    assert (result.outcome, result.voters, result.members, result.quorum) == ("consensus", 3, 4, 3)
    assert result.counts == _counts(agree=3)


def test_votes_change_until_close_and_the_latest_counts_once() -> None:
    ctx = poll_open()
    _vote(ctx, B, "block")
    _vote(ctx, B, "concerns")
    _vote(ctx, B, "agree")
    _vote(ctx, C, "agree")
    _vote(ctx, D, "agree")
    result = _close(ctx)
    assert result.counts == _counts(agree=3) and result.outcome == "consensus"


def test_a_changed_vote_can_also_turn_into_a_block() -> None:
    ctx = poll_open()
    for who in (B, C, D):
        _vote(ctx, who, "agree")
    _vote(ctx, C, "block")
    assert _close(ctx).outcome == "blocked"


def test_votes_outside_the_cut_do_not_count() -> None:
    """A vote the facilitator had not seen when closing (a Lamport clock below
    the close, a seq beyond the cut) is in the log but not in the result."""
    ctx = poll_open()
    for who in (B, C, D):
        _vote(ctx, who, "agree")
    seen = list(ctx.scribe.entries)
    last_c = max(e.lam for e in seen if e.author == C.key)
    late = _vote(ctx, C, "block", lam=last_c + 1)  # folds before the close
    result = _close(ctx, cut_from=seen)
    poll = ctx.scribe.state().polls[ctx.ids["poll"]]
    assert [v.seq for v in poll.votes if v.author == C.key][-1] == late.seq  # it was folded
    assert result.outcome == "consensus" and result.counts == _counts(agree=3)


def test_a_vote_inside_the_cut_counts() -> None:
    # The control for the test above.
    ctx = poll_open()
    for who in (B, C, D):
        _vote(ctx, who, "agree")
    _vote(ctx, C, "block")
    assert _close(ctx).outcome == "blocked"


def test_vote_back_dated_after_the_close_is_not_counted() -> None:
    ctx = poll_open()
    for who in (B, C, D):
        _vote(ctx, who, "agree")
    c_head = max(e.lam for e in ctx.scribe.entries if e.author == C.key)
    before = _close(ctx)
    late = _vote(ctx, C, "block", lam=c_head + 1)
    poll = ctx.scribe.state().polls[ctx.ids["poll"]]
    assert late.lam < max(e.lam for e in ctx.scribe.entries if e.type == "poll.close")
    assert poll.result == before


def test_removed_member_vote_does_not_count() -> None:
    ctx = poll_open()
    for who in (A, B, C, D):
        _vote(ctx, who, "agree")
    _vote(ctx, D, "block")
    d_seq = max(e.seq for e in ctx.scribe.entries if e.author == D.key)
    ctx.scribe.write(A, "roster.remove", {"who": D.key, "upto": d_seq})
    result = _close(ctx)
    assert result.outcome == "consensus" and result.members == 3
    assert result.counts == _counts(agree=3)


def test_every_member_computes_the_same_tally_digest() -> None:
    ctx = poll_open()
    _vote(ctx, B, "agree")
    _close(ctx)
    digest = ctx.scribe.state().polls[ctx.ids["poll"]].tally_digest
    again = poll_open()
    _vote(again, B, "agree")
    _close(again)
    assert again.scribe.state().polls[again.ids["poll"]].tally_digest == digest
    other = poll_open()
    _vote(other, B, "block")
    _close(other)
    assert other.scribe.state().polls[other.ids["poll"]].tally_digest != digest


def test_a_new_poll_on_the_same_proposal_starts_empty() -> None:
    ctx = poll_open()
    _vote(ctx, B, "block")
    _close(ctx)
    second = ctx.scribe.write(A, "poll.open", {"proposal": ctx.ids["proposal"]})
    state = ctx.scribe.state()
    assert second.hash != ctx.ids["poll"]
    assert state.polls[second.hash].votes == [] and state.polls[second.hash].status == "open"


# --- the speaking queue -----------------------------------------------------------------


def test_speaking_queue_and_talk_time_from_entry_timestamps() -> None:
    scribe = room().scribe
    t0 = 1_000_000
    scribe.write(B, "hand.raise", {}, ts=t0)
    scribe.write(C, "hand.raise", {}, ts=t0 + 5)
    assert scribe.state().queue.waiting == [B.key, C.key]
    scribe.write(A, "hand.next", {}, ts=t0 + 10)  # B speaks
    queue = scribe.state().queue
    assert (queue.speaker, queue.since_ms, queue.waiting) == (B.key, t0 + 10, [C.key])
    scribe.write(A, "hand.next", {}, ts=t0 + 70_010)  # B spoke 70 s; C speaks
    scribe.write(C, "hand.lower", {}, ts=t0 + 100_010)  # C ends their own turn after 30 s
    scribe.write(B, "hand.raise", {}, ts=t0 + 100_020)
    scribe.write(A, "hand.next", {}, ts=t0 + 100_030)
    scribe.write(A, "hand.lower", {"who": B.key}, ts=t0 + 110_030)  # facilitator cuts B at 10 s
    queue = scribe.state().queue
    assert queue.speaker is None and queue.waiting == []
    assert queue.talk_ms == {B.key: 80_000, C.key: 30_000}
    assert queue.turns == {B.key: 2, C.key: 1}


def test_a_clock_going_backwards_gives_no_negative_talk_time() -> None:
    scribe = room().scribe
    scribe.write(B, "hand.raise", {}, ts=5_000)
    scribe.write(A, "hand.next", {}, ts=5_000)
    scribe.write(B, "hand.lower", {}, ts=1_000)
    assert scribe.state().queue.talk_ms == {B.key: 0}


def test_next_skips_who_left_the_queue() -> None:
    scribe = room().scribe
    scribe.write(B, "hand.raise", {})
    scribe.write(C, "hand.raise", {})
    scribe.write(B, "roster.leave", {})
    scribe.write(A, "hand.next", {})
    assert scribe.state().queue.speaker == C.key


# --- the fold as a whole ------------------------------------------------------------------


def test_apply_entry_reports_the_reason_and_counts_applied_entries() -> None:
    ctx = room()
    state = ctx.scribe.state()
    applied = state.applied
    entry = ctx.scribe.write(B, "step.open", {"step": TEXT}, keep=False)
    assert apply_entry(state, entry) == NOT_FACILITATOR
    assert state.applied == applied and state.ignored[-1] == (entry.hash, apply_entry(state, entry))
    good = ctx.scribe.write(A, "step.open", {"step": TEXT}, keep=False)
    assert apply_entry(state, good) is None and state.applied == applied + 1


def test_the_digest_covers_what_members_see() -> None:
    base = text_open().scribe.state()
    other = text_open()
    other.scribe.write(C, "contrib.add", {"step": TEXT, "text": "different"})
    assert other.scribe.state().digest() != base.digest()
    assert text_open().scribe.state().digest() == base.digest()  # and is deterministic


def test_frozen_authors_are_part_of_the_state() -> None:
    scribe = room().scribe
    assert scribe.state({B.key: 3}).digest() != scribe.state().digest()
    assert scribe.state({B.key: 3}).frozen == {B.key: 3}


def test_a_closed_anonymous_tally_below_the_threshold_shows_only_its_outcome() -> None:
    """One rule for every front end (screens, record, headless peer)."""
    poll = Poll(b"\x01" * 32, b"\x02" * 32, 0)
    assert poll.shown_counts(True, 3) is None  # not closed
    counts = {"agree": 1, "concerns": 0, "stand_aside": 0, "block": 1}
    result = decide(counts, 4, DEFAULT_SETTINGS)
    poll.closes.append(Close(b"\x03" * 32, b"\x04" * 32, {}, frozenset(), result, b"\x05" * 32))
    assert poll.shown_counts(True, 3) is None  # two anonymous voters of four
    assert poll.shown_counts(True, 2) == counts
    assert poll.shown_counts(False, 3) == counts  # named votes are shown as cast
