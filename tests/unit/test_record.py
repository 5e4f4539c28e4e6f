"""The record: what was entered comes out, attributed only if the meeting
chose that, aggregated only above the threshold, and never a key."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
from fakenet import NAMES, FakeNetwork

from relsec_p2p.core.feed import Entry
from relsec_p2p.core.record import (
    item_labels,
    md,
    render_json,
    render_markdown,
    roster_safety_number,
)
from relsec_p2p.core.session import Session
from relsec_p2p.core.state import AnonContribution, AnonRound, AnonVote, MeetingState
from relsec_p2p.core.template import Template, parse_template

SAFETY = "11111 22222 33333 44444"


def relational(*, attribute_named: bool, named_ratings: bool = True) -> Template:
    """The built-in relational security template; ratings named (not
    anonymous) so the core alone can fill them in."""
    text = (resources.files("relsec_p2p.templates") / "relational-security.toml").read_text()
    if named_ratings:
        text = text.replace('mode = "anonymous"', 'mode = "both"')
    text = text.replace(
        "attribute_named = false", f"attribute_named = {str(attribute_named).lower()}"
    )
    return parse_template(text, "relational-security.toml", name="relational-security")


class Meeting:
    """A relational security meeting of three members on the fake network."""

    def __init__(self, template: Template, n: int = 3) -> None:
        self.template = template
        self.net = FakeNetwork.meeting(n, agenda=template.agenda, settings=template.settings)
        self.ids = [s.id for s in template.steps]

    @property
    def facilitator(self) -> Session:
        return self.net[0]

    def open(self, step_id: str) -> int:
        index = self.ids.index(step_id)
        self.facilitator.open_step(index)
        self.net.settle()
        return index

    def settle(self) -> None:
        self.net.settle()

    def said(self, entry: Entry) -> Entry:
        self.net.settle()
        return entry


def full_meeting(*, attribute_named: bool) -> tuple[Meeting, dict[str, Any]]:
    m = Meeting(relational(attribute_named=attribute_named))
    a, b, c = m.net[0], m.net[1], m.net[2]
    # Settling after each answer fixes the fold order, and so the labels.
    s = m.open("threats")
    t1 = m.said(b.contribute(s, "The funder relationship rests on one member", tag="internal"))
    t2 = m.said(c.contribute(s, "Police watch our public channel", tag="external"))
    t3 = m.said(a.contribute(s, "Meetings run long and one voice dominates", tag="internal"))
    s = m.open("impacts")
    m.said(b.contribute(s, "Fewer women and non-binary members come", ref=t1.hash))
    m.said(c.contribute(s, "People stop posting openly", ref=t2.hash))
    reply = m.said(a.contribute(s, "Emotional labour is piling up", ref=t3.hash))
    b.contribute(s, "Agreed, and nobody asked for it", ref=reply.hash)
    m.settle()
    s = m.open("likelihood")
    for member, value in zip((a, b, c), (3, 3, 4), strict=True):
        member.rate(s, value, ref=t1.hash)
    for member, value in zip((a, b, c), (1, 2, 2), strict=True):
        member.rate(s, value, ref=t2.hash)
    a.rate(s, 4, ref=t3.hash)  # only one answer: below the threshold of 3
    m.settle()
    s = m.open("severity")
    for member, value in zip((a, b, c), (2, 3, 3), strict=True):
        member.rate(s, value, ref=t1.hash)
    for member, value in zip((a, b, c), (4, 4, 0), strict=True):
        member.rate(s, value, ref=t2.hash)
    m.settle()
    s = m.open("options")
    o1 = m.said(c.contribute(s, "Share the funder relationship among three members", ref=t1.hash))
    o2 = m.said(b.contribute(s, "Move organising to an encrypted group", ref=t2.hash))
    s = m.open("tradeoffs")
    m.said(a.contribute(s, "The funder may feel unsettled", tag="risk", ref=o1.hash))
    m.said(b.contribute(s, "More of us know the funder", tag="benefit", ref=o1.hash))
    s = m.open("way")
    proposal = b.propose(s, "Take up [5.1] and [5.2]; start with [5.1] this month. Not [1.1].")
    m.settle()
    poll = a.open_poll(proposal.hash)
    m.settle()
    a.vote(poll.hash, "agree")
    b.vote(poll.hash, "concerns")
    c.vote(poll.hash, "agree")
    m.settle()
    a.close_poll(poll.hash)
    m.settle()
    for member in (a, b, c):
        member.sign_tally(poll.hash)
    m.settle()
    a.record_outcome(poll.hash, "We share the funder relationship, starting now.")
    m.settle()
    entered = {
        "threats": [t1, t2, t3],
        "options": [o1, o2],
        "poll": poll,
        "proposal": proposal,
        "outcome": "We share the funder relationship, starting now.",
    }
    return m, entered


def step_of(record: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(step for step in record["steps"] if step["id"] == step_id)


def test_record_content_matches_what_was_entered() -> None:
    m, _ = full_meeting(attribute_named=False)
    state = m.net[2].state  # any member: every laptop folds the same record
    record = render_json(state, safety_number=SAFETY, template=m.template)
    assert render_json(m.net[0].state, safety_number=SAFETY, template=m.template) == record
    assert record["process"]["credit"] == m.template.credit
    assert record["safety_number"] == SAFETY
    threats = step_of(record, "threats")["items"]
    assert [(i["label"], i["tag"], i["text"]) for i in threats] == [
        ("1.1", "internal", "The funder relationship rests on one member"),
        ("1.2", "external", "Police watch our public channel"),
        ("1.3", "internal", "Meetings run long and one voice dominates"),
    ]
    impacts = step_of(record, "impacts")["items"]
    assert [(i["label"], i["about"]) for i in impacts] == [
        ("2.1", "1.1"),
        ("2.2", "1.2"),
        ("2.3", "1.3"),
        ("2.4", "2.3"),  # a reply within the step
    ]
    tradeoffs = step_of(record, "tradeoffs")["items"]
    assert [(i["tag"], i["about"]) for i in tradeoffs] == [("risk", "5.1"), ("benefit", "5.1")]
    assert step_of(record, "capacity")["items"] == []
    assert step_of(record, "capacity")["status"] == "pending"


def test_record_ratings_aggregate_above_the_threshold_only() -> None:
    m, _ = full_meeting(attribute_named=False)
    record = render_json(m.net[1].state, safety_number=SAFETY, template=m.template)
    scale = m.template.step("likelihood").scale  # type: ignore[union-attr]
    rows = {row["about"]: row for row in step_of(record, "likelihood")["ratings"]}
    assert rows["1.1"]["shown"] and rows["1.1"]["answers"] == 3
    assert rows["1.1"]["middle"] == scale[3]
    assert rows["1.1"]["spread"] == {
        scale[0]: 0,
        scale[1]: 0,
        scale[2]: 0,
        scale[3]: 2,
        scale[4]: 1,
    }
    assert rows["1.2"]["middle"] == scale[2]
    # One answer only: not shown at all, not even how many (it would say who).
    assert rows["1.3"] == {
        "about": "1.3",
        "about_text": "Meetings run long and one voice dominates",
        "answers": None,
        "shown": False,
    }
    matrix = record["matrices"][0]
    severity = m.template.step("severity").scale  # type: ignore[union-attr]
    placed = {
        label: (scale[r], severity[c])
        for r, row in enumerate(matrix["cells"])
        for c, cell in enumerate(row)
        for label in cell
    }
    # 1.1: likelihood [3,3,4] -> 3, severity [2,3,3] -> 3; 1.2: [1,2,2] -> 2, [0,4,4] -> 4.
    assert placed == {"1.1": (scale[3], severity[3]), "1.2": (scale[2], severity[4])}
    assert matrix["left_out"] == ["1.3"]
    text = render_markdown(m.net[1].state, safety_number=SAFETY, template=m.template)
    assert "| **likely** |  |  |  | 1.1 |  |" in text
    assert "Left out (fewer than 3 answers on a scale): 1.3." in text


def test_record_shows_the_proposal_poll_rule_cosigners_and_outcome() -> None:
    m, entered = full_meeting(attribute_named=False)
    state = m.net[1].state
    record = render_json(state, safety_number=SAFETY, template=m.template)
    (proposal,) = step_of(record, "way")["proposals"]
    assert proposal["text"] == entered["proposal"].data["text"]
    # It names options 5.1 and 5.2 (once each); 1.1 is not in a linked step.
    assert [n["label"] for n in proposal["names"]] == ["5.1", "5.2"]
    (poll,) = proposal["polls"]
    closed = state.polls[entered["poll"].hash]
    assert poll["result"]["outcome"] == "consensus"
    assert poll["result"]["counts"] == {"agree": 2, "concerns": 1, "stand_aside": 0, "block": 0}
    assert poll["result"]["rule"] == closed.result.rule()  # type: ignore[union-attr]
    assert poll["tally_digest"] == closed.tally_digest.hex()  # type: ignore[union-attr]
    assert poll["cosigned_by"] == 3 and poll["members"] == 3
    assert poll["outcome"] == entered["outcome"]
    assert record["settings"]["stand_aside_limit"] == 2
    text = render_markdown(state, safety_number=SAFETY, template=m.template)
    assert "Poll closed: **consensus**. 3 of 3 members present voted (quorum 3)" in text
    assert "co-signed by 3 of 3 members' laptops" in text
    assert f"Rule: {closed.result.rule()}." in text  # type: ignore[union-attr]
    assert "Outcome recorded by the facilitator: We share the funder relationship" in text


@pytest.mark.parametrize("attribute", [False, True])
def test_names_appear_only_if_the_meeting_chose_attribution(attribute: bool) -> None:
    m, _ = full_meeting(attribute_named=attribute)
    state = m.net[0].state
    text = render_markdown(state, safety_number=SAFETY, template=m.template)
    data = json.dumps(render_json(state, safety_number=SAFETY, template=m.template))
    for name in NAMES[:3]:
        assert (name in text) is attribute
        assert (f'"{name}"' in data) is attribute
    if attribute:
        items = step_of(render_json(state, safety_number=SAFETY), "threats")["items"]
        assert [i["by"] for i in items] == [NAMES[1], NAMES[2], NAMES[0]]
        assert "Police watch our public channel — Cy" in text


def test_record_never_holds_keys_ids_or_the_join_code() -> None:
    m, _ = full_meeting(attribute_named=True)
    session = m.net[0]
    session.set_join_code(42, ("harbor", "velvet", "orbit"))
    m.settle()
    state = session.state
    outputs = [
        render_markdown(state, safety_number=SAFETY, template=m.template),
        json.dumps(render_json(state, safety_number=SAFETY, template=m.template)),
        render_markdown(state, safety_number=SAFETY),
    ]
    secrets = [state.mid.hex(), "harbor", "velvet"]
    for member in state.members.values():
        secrets += [member.key.hex(), member.ring.hex(), member.key.hex()[:8]]
    for entry in session.log.entries():
        secrets += [entry.hash.hex(), entry.signature.hex()[:32]]
    for output in outputs:
        for secret in secrets:
            assert secret not in output


def test_member_text_cannot_forge_the_markdown() -> None:
    m = Meeting(relational(attribute_named=False))
    s = m.open("threats")
    nasty = (
        "[click me](http://evil.example) <img src=x> | cell\n# Fake heading\n- fake item\n"
        "1. fake list\x1b[31m red\u202eevil"
    )
    m.net[1].contribute(s, nasty)
    m.settle()
    text = render_markdown(m.net[0].state, safety_number=SAFETY)
    assert "](http" not in text.replace("\\](http", "")
    assert "<img" not in text.replace("\\<img", "")
    assert "\n# Fake" not in text and "\n- fake" not in text and "\n1. fake" not in text
    assert "\x1b" not in text and "\u202e" not in text
    record = render_json(m.net[0].state, safety_number=SAFETY)
    assert step_of(record, "threats")["items"][0]["text"].endswith("\ufffd[31m red\ufffdevil")


def test_md() -> None:
    assert md("a\u2028b\u2029c") == "a  \n    b  \n    c"  # line breaks, whichever character
    assert md("*bold* _it_ `code` [x]") == "\\*bold\\* \\_it\\_ \\`code\\` \\[x\\]"
    assert md("a\n- b", cell=True) == "a - b"  # one line: nothing starts a list
    assert md("a\n- b\n2. c") == "a  \n    \\- b  \n    2\\. c"


def test_labels_are_per_step_in_fold_order() -> None:
    m = Meeting(relational(attribute_named=False))
    s = m.open("threats")
    first = m.net[1].contribute(s, "one")
    m.settle()
    second = m.net[2].contribute(s, "two")
    m.settle()
    s2 = m.open("impacts")
    third = m.net[0].contribute(s2, "three", ref=first.hash)
    m.settle()
    labels = item_labels(m.net[0].state)
    assert labels == {first.hash: "1.1", second.hash: "1.2", third.hash: "2.1"}


def test_without_the_template_the_matrix_is_inferred() -> None:
    """A member who joined a meeting with a group's own template has no file:
    rating steps about the same step still make a matrix."""
    m, _ = full_meeting(attribute_named=False)
    record = render_json(m.net[1].state, safety_number=SAFETY)
    assert record["process"] is None
    (matrix,) = record["matrices"]
    assert matrix["rows"]["step"] == "likelihood" and matrix["columns"]["step"] == "severity"
    with_template = render_json(m.net[1].state, safety_number=SAFETY, template=m.template)
    assert matrix["cells"] == with_template["matrices"][0]["cells"]


def test_roster_safety_number_is_the_safety_number() -> None:
    from relsec_p2p.core import safety

    m = Meeting(relational(attribute_named=False))
    state = m.net[0].state
    keys = [member.key for member in state.active_members()]
    assert roster_safety_number(state) == safety.safety_number(state.mid, state.epoch, keys)
    assert roster_safety_number(MeetingState(mid=bytes(16), creator=bytes(32))) == ""


# --- anonymous items --------------------------------------------------------------


def test_anonymous_items_and_ratings_are_unattributed_and_thresholded() -> None:
    """Anonymous answers as the fold keeps them (rounds are tested in the
    shuffle's own tests; here the state is filled in directly)."""
    m = Meeting(relational(attribute_named=True, named_ratings=False))
    s = m.open("threats")
    threat = m.said(m.net[1].contribute(s, "A named threat"))
    state = m.net[0].state
    rating_step = m.ids.index("likelihood")
    state.anonymous_contributions = [
        AnonContribution(b"\x01" * 32, s, "Something I cannot say aloud", 1, 3, 3),
        AnonContribution(b"\x02" * 32, s, "Another one", 2, 3, 3),
    ]
    state.anon_rounds = {bytes([i]) * 32: AnonRound(bytes([i]) * 32, i, 3, 3) for i in (1, 2)}
    tags = [bytes([i]) * 32 for i in range(3)]
    state.anonymous_ratings = {
        (rating_step, threat.hash): dict(zip(tags, [4, 4, 3], strict=True)),
        (rating_step + 1, threat.hash): dict(zip(tags[:2], [1, 2], strict=True)),
    }
    record = render_json(state, safety_number=SAFETY, template=m.template)
    items = step_of(record, "threats")["items"]
    assert items[0]["by"] == NAMES[1]
    anonymous = [i for i in items if i["anonymous"]]
    assert [i["text"] for i in anonymous] == ["Something I cannot say aloud", "Another one"]
    assert all("by" not in i and i["label"] is None for i in anonymous)
    assert anonymous[0]["round"] == {"number": 1, "members": 3, "slots": 3}
    assert record["anonymous_rounds"] == 2
    (row,) = step_of(record, "likelihood")["ratings"]
    assert row["shown"] and row["answers"] == 3 and row["middle"] == "almost certain"
    (row,) = step_of(record, "severity")["ratings"]
    assert not row["shown"] and "spread" not in row  # two answers: under the threshold
    text = render_markdown(state, safety_number=SAFETY, template=m.template)
    assert "*(anonymous)* Something I cannot say aloud (round 1: 3 members, 3 slots)" in text
    assert re.search(r"Something I cannot say aloud — ", text) is None
    assert "- Anonymous rounds released: 2." in text
    for tag in tags:
        assert tag.hex() not in text


def test_an_anonymous_poll_shows_its_tally_only_above_the_threshold() -> None:
    text = (resources.files("relsec_p2p.templates") / "holistic-security.toml").read_text()
    anonymous = text.replace(
        'mode = "both"\nkind = "proposal"', 'mode = "anonymous"\nkind = "proposal"'
    )
    assert anonymous != text
    template = parse_template(anonymous, "h.toml")
    m = Meeting(template)
    s = m.open("together")
    proposal = m.said(m.net[1].propose(s, "Try a weekly check-in"))
    poll = m.said(m.facilitator.open_poll(proposal.hash))
    state = m.net[0].state
    votes = state.polls[poll.hash].anon_votes
    votes.append(AnonVote(b"\x01" * 32, "agree", 1, m.facilitator.me, 1))
    votes.append(AnonVote(b"\x02" * 32, "block", 1, m.facilitator.me, 1))
    (entry,) = step_of(render_json(state, safety_number=SAFETY), "together")["proposals"]
    assert entry["polls"][0]["anonymous_tally"] is None  # 2 votes, threshold 3
    votes.append(AnonVote(b"\x03" * 32, "agree", 1, m.facilitator.me, 1))
    (entry,) = step_of(render_json(state, safety_number=SAFETY), "together")["proposals"]
    assert entry["polls"][0]["anonymous_tally"] == {
        "agree": 2,
        "concerns": 0,
        "stand_aside": 0,
        "block": 1,
    }
