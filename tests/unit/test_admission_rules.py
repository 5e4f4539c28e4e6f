"""The admission entries of the log (SPEC §12.11, §12.12): the facilitator
opens and closes joining, a removal retires the join code for good, and a
room display is admitted as a viewer that is never a member. Entries are
written with ``Scribe`` (fakenet.py), so a modified client's entries are
judged where it matters: in the fold of every laptop."""

from __future__ import annotations

from typing import Any

import pytest
from fakenet import IDENTITIES, OUTSIDER, Scribe

from relsec_p2p.core.identity import Identity
from relsec_p2p.core.refusals import Refusal, Refused
from relsec_p2p.core.state import MAX_VIEWERS

A, B, C, D = IDENTITIES[:4]
DISPLAY = Identity.generate()
CODE = {"np": 42, "words": ["harbor", "velvet", "orbit"]}
OTHER_CODE = {"np": 42, "words": ["harbor", "velvet", "acorn"]}


def room() -> Scribe:
    scribe = Scribe(A)
    scribe.create()
    scribe.add(A, B, "Bo")
    scribe.add(A, C, "Cy")
    scribe.write(A, "join.code", CODE)
    return scribe


def verdict(scribe: Scribe, who: Identity, kind: str, data: dict[str, Any]) -> Refused | None:
    before = scribe.state().digest()
    entry = scribe.write(who, kind, data)
    state = scribe.state()
    reasons = [reason for h, reason in state.ignored if h == entry.hash]
    if reasons:
        assert state.digest() == before  # an ignored entry changes nothing
        return reasons[0]
    assert state.digest() != before
    return None


def test_joining_opens_with_the_meeting_and_only_the_facilitator_closes_it() -> None:
    scribe = room()
    assert scribe.state().joining_open
    refused = verdict(scribe, B, "join.open", {"open": False})
    assert refused is not None and refused.code is Refusal.NOT_FACILITATOR
    refused = verdict(scribe, OUTSIDER, "join.open", {"open": False})
    assert refused is not None and refused.code is Refusal.NOT_A_CURRENT_MEMBER
    assert verdict(scribe, A, "join.open", {"open": False}) is None
    assert not scribe.state().joining_open
    refused = verdict(scribe, A, "join.open", {"open": 1})
    assert refused is not None and refused.code is Refusal.BAD_FIELDS
    assert verdict(scribe, A, "join.open", {"open": True}) is None
    assert scribe.state().joining_open


def test_a_successor_facilitator_inherits_the_closed_state() -> None:
    scribe = room()
    scribe.write(A, "join.open", {"open": False})
    scribe.write(A, "facil.handover", {"to": B.key})
    state = scribe.state()
    assert state.facilitator == B.key and not state.joining_open
    assert verdict(scribe, A, "join.open", {"open": True}) is not None
    assert verdict(scribe, B, "join.open", {"open": True}) is None


def test_a_removal_retires_the_code_for_good() -> None:
    scribe = room()
    scribe.write(A, "roster.remove", {"who": C.key, "upto": 1})
    state = scribe.state()
    assert state.join_code is None  # nobody can sponsor with the old words
    assert ("harbor", "velvet", "orbit") in state.retired_codes
    # The old code never comes back, whoever writes it and in whatever order.
    refused = verdict(scribe, B, "join.code", CODE)
    assert refused is not None and refused.code is Refusal.CODE_RETIRED
    assert verdict(scribe, A, "join.code", OTHER_CODE) is None
    assert scribe.state().join_code == (42, ("harbor", "velvet", "acorn"))


def test_a_leave_does_not_retire_the_code() -> None:
    scribe = room()
    scribe.write(C, "roster.leave", {})
    assert scribe.state().join_code == (42, ("harbor", "velvet", "orbit"))


def test_a_display_is_a_viewer_never_a_member() -> None:
    scribe = room()
    before = scribe.state()
    refused = verdict(scribe, B, "viewer.add", {"key": DISPLAY.key, "name": "Room display"})
    assert refused is not None and refused.code is Refusal.NOT_FACILITATOR
    assert verdict(scribe, A, "viewer.add", {"key": DISPLAY.key, "name": "Room display"}) is None
    state = scribe.state()
    assert state.viewers == {DISPLAY.key: "Room display"}
    assert not state.is_member(DISPLAY.key)
    assert len(state.active_members()) == len(before.active_members()) == 3
    assert state.epoch == before.epoch  # the safety number's roster is unchanged
    # Once only, and never a member's key.
    refused = verdict(scribe, A, "viewer.add", {"key": DISPLAY.key, "name": "Again"})
    assert refused is not None and refused.code is Refusal.ALREADY_A_MEMBER
    refused = verdict(scribe, A, "viewer.add", {"key": B.key, "name": "Bo"})
    assert refused is not None and refused.code is Refusal.ALREADY_A_MEMBER
    refused = verdict(scribe, A, "viewer.add", {"key": D.key, "name": ""})
    assert refused is not None and refused.code is Refusal.BAD_TEXT
    # A display writes nothing that counts.
    refused = verdict(scribe, DISPLAY, "hand.raise", {})
    assert refused is not None and refused.code is Refusal.NOT_A_CURRENT_MEMBER
    refused = verdict(scribe, B, "viewer.remove", {"key": DISPLAY.key})
    assert refused is not None and refused.code is Refusal.NOT_FACILITATOR
    assert verdict(scribe, A, "viewer.remove", {"key": DISPLAY.key}) is None
    assert scribe.state().viewers == {}
    refused = verdict(scribe, A, "viewer.remove", {"key": DISPLAY.key})
    assert refused is not None and refused.code is Refusal.BAD_TARGET


def test_displays_are_bounded() -> None:
    scribe = room()
    for _ in range(MAX_VIEWERS):
        key = Identity.generate().key
        assert verdict(scribe, A, "viewer.add", {"key": key, "name": "Screen"}) is None
    refused = verdict(scribe, A, "viewer.add", {"key": DISPLAY.key, "name": "Screen"})
    assert refused is not None and refused.code is Refusal.ROSTER_FULL


@pytest.mark.parametrize(
    "data", [{"key": b"short", "name": "X"}, {"key": DISPLAY.key}, {"key": DISPLAY.key, "name": 3}]
)
def test_viewer_add_fields(data: dict[str, Any]) -> None:
    assert verdict(room(), A, "viewer.add", data) is not None


def test_a_new_meeting_keeps_its_v2_digest() -> None:
    """The ``admission`` key is absent until used, so a meeting that never
    used it has the canonical state it had before (SPEC §6.8)."""
    scribe = room()
    assert "admission" not in scribe.state().to_canonical()
    scribe.write(A, "join.open", {"open": False})
    assert scribe.state().to_canonical()["admission"] == [False, [], []]
