"""Votes with reasons (SPEC §6.5 ``vote.cast`` condition 6): the fold's rule,
the canonical state, the screens' view and the record."""

from __future__ import annotations

from typing import Any

from fakenet import IDENTITIES, Scribe

from relsec_p2p.app.view import build_view
from relsec_p2p.core.record import render_json, render_markdown
from relsec_p2p.core.refusals import Refusal
from relsec_p2p.core.rules import why_ignored
from relsec_p2p.core.state import MAX_REASON

A, B, C, D = IDENTITIES[:4]
AGENDA: list[dict[str, Any]] = [
    {"id": "way", "title": "Way", "prompt": "Propose.", "mode": "both", "kind": "proposal"},
]


def meeting(attribute: bool = True) -> tuple[Scribe, bytes]:
    scribe = Scribe(A)
    scribe.create(agenda=AGENDA, attribute_named=attribute)
    for member, name in ((B, "Bo"), (C, "Cy"), (D, "Di")):
        scribe.add(A, member, name)
    scribe.write(A, "step.open", {"step": 0})
    proposal = scribe.write(B, "proposal.add", {"step": 0, "text": "Meet in the hall."})
    poll = scribe.write(A, "poll.open", {"proposal": proposal.hash}).hash
    return scribe, poll


def test_a_concern_and_a_block_carry_reasons_and_change_no_count() -> None:
    scribe, poll = meeting()
    scribe.write(B, "vote.cast", {"poll": poll, "choice": "concerns", "reason": "Steps."})
    scribe.write(C, "vote.cast", {"poll": poll, "choice": "block", "reason": "The owner."})
    scribe.write(D, "vote.cast", {"poll": poll, "choice": "agree"})
    state = scribe.state()
    votes = state.polls[poll].votes
    assert [(v.choice, v.reason) for v in votes] == [
        ("concerns", "Steps."),
        ("block", "The owner."),
        ("agree", None),
    ]
    assert state.polls[poll].tally() == {"agree": 1, "concerns": 1, "stand_aside": 0, "block": 1}


def test_bad_reasons_are_refused_with_a_reason() -> None:
    scribe, poll = meeting()
    state = scribe.state()
    cases = [
        ({"choice": "agree", "reason": "Close to me."}, Refusal.BAD_FIELDS),
        ({"choice": "stand_aside", "reason": "Away."}, Refusal.BAD_FIELDS),
        ({"choice": "block", "reason": "x" * (MAX_REASON + 1)}, Refusal.BAD_TEXT),
        ({"choice": "block", "reason": "two\nlines"}, Refusal.BAD_TEXT),
        ({"choice": "block", "reason": "   "}, Refusal.BAD_TEXT),
        ({"choice": "block", "reason": 7}, Refusal.BAD_TEXT),
        ({"choice": "block", "why": "extra field"}, Refusal.BAD_FIELDS),
    ]
    for fields, code in cases:
        entry = scribe.write(B, "vote.cast", {"poll": poll, **fields}, keep=False)
        refused = why_ignored(state, entry)
        assert refused is not None and refused.code == code, fields
    ok = scribe.write(B, "vote.cast", {"poll": poll, "choice": "block", "reason": "x" * 200})
    assert why_ignored(state, ok) is None


def test_a_vote_without_a_reason_keeps_the_digest_it_always_had() -> None:
    plain, poll = meeting()
    plain.write(B, "vote.cast", {"poll": poll, "choice": "block"})
    row = plain.state().to_canonical()["polls"][0][3]
    assert row == [[B.key, 2, "block"]]  # three elements, as before reasons
    reasoned, poll = meeting()
    reasoned.write(B, "vote.cast", {"poll": poll, "choice": "block", "reason": "Why"})
    assert reasoned.state().to_canonical()["polls"][0][3] == [[B.key, 2, "block", "Why"]]
    assert reasoned.state().digest() != plain.state().digest()


def test_a_newer_vote_without_a_reason_takes_the_reason_away() -> None:
    scribe, poll = meeting()
    scribe.write(B, "vote.cast", {"poll": poll, "choice": "block", "reason": "No."})
    scribe.write(B, "vote.cast", {"poll": poll, "choice": "agree"})
    assert scribe.state().polls[poll].latest_reasons() == ([], [])


def test_reasons_show_with_the_tally_and_in_the_record() -> None:
    scribe, poll = meeting(attribute=False)
    scribe.write(C, "vote.cast", {"poll": poll, "choice": "concerns", "reason": "Rent *is* high."})
    state = scribe.state()
    view = build_view(state, me=A.key, safety_number="", join_code="", now_ms=0)
    assert view.polls[0].reasons == (("concerns", "Rent *is* high.", "Cy"),)
    record = render_json(state, safety_number="")
    polls = record["steps"][0]["proposals"][0]["polls"]
    assert polls[0]["reasons"] == [{"choice": "concerns", "text": "Rent *is* high.", "by": None}]
    markdown = render_markdown(state, safety_number="")
    assert "  - Concerns: Rent \\*is\\* high." in markdown
