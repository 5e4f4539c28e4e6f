"""Statements of protocol/SPEC.md checked against the reference, where the
vectors do not pin them: the word list of Appendix D, the label table of
§3.2, the error table of §8, the decoder's nesting limit (§2.4), optional
keys present with nil (§6.0), the order of sends (§7.6) and the events of a
received message (§7.1).

Each test reads the SPEC's own text where it can, so the document and the
code cannot drift apart unnoticed.
"""

from __future__ import annotations

import hashlib
import importlib
import pathlib
import pkgutil
import re
from typing import Any

import pytest
from fakenet import AGENDA, IDENTITIES, MID, RATING, TEXT, Scribe, entries_frame

import relsec_p2p
from relsec_p2p.core.codec import unpack
from relsec_p2p.core.errors import RelsecError, RemoteProtocolError
from relsec_p2p.core.events import EntryAccepted, MeetingChanged
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.session import Session
from relsec_p2p.core.wordlist import ALIASES, WORDS

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = (ROOT / "protocol" / "SPEC.md").read_text(encoding="utf-8")
A, B, C, D = IDENTITIES[:4]


def section(heading: str) -> str:
    """The text of the SPEC from ``heading`` up to the next heading of the
    same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = SPEC.index("\n" + heading + "\n")
    end = start + 1
    while True:
        end = SPEC.find("\n#", end + 1)
        if end < 0:
            return SPEC[start:]
        marks = SPEC[end + 1 :].split(" ", 1)[0]
        if set(marks) == {"#"} and len(marks) <= len(level):
            return SPEC[start:end]


# --- Appendix D: the word list ------------------------------------------------------


def spec_words() -> tuple[list[str], str]:
    appendix = section("## Appendix D. The join-code word list")
    blocks = re.findall(r"\n```\n(.*?)```", appendix, re.S)
    assert len(blocks) == 1
    check = re.findall(r"`([0-9a-f]{64})`", appendix)
    assert len(check) == 1
    return blocks[0].split(), check[0]


def test_the_spec_word_list_is_the_codes() -> None:
    words, check = spec_words()
    assert tuple(words) == WORDS
    assert len(words) == 333
    assert words == sorted(words)
    assert hashlib.sha256("".join(w + "\n" for w in words).encode("ascii")).hexdigest() == check
    for alias, word in ALIASES.items():
        assert f"`{alias}` for `{word}`" in section("## Appendix D. The join-code word list")


# --- §3.2: every label --------------------------------------------------------------


def code_labels() -> set[str]:
    """Every ``relsec/v2/...`` string in the reference's source."""
    found: set[str] = set()
    for path in (ROOT / "relsec_p2p").rglob("*.py"):
        found.update(re.findall(r"relsec/v2/[a-z0-9-]+", path.read_text(encoding="utf-8")))
    return found


def test_the_label_table_lists_every_label_in_the_code() -> None:
    table = section("### 3.2 Signatures, hashes and domain separation")
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    in_table = {label for row in rows for label in re.findall(r"relsec/v2/[a-z0-9-]+", row)}
    assert in_table == code_labels()
    # Each label without the general form is marked, and each marked one is explained.
    for row in rows:
        labels = re.findall(r"`(relsec/v2/[a-z0-9-]+)(\\0)?`", row)
        general = all(zero for _, zero in labels) and bool(labels)
        assert row.startswith("| †") == (not general), row
    for label in ("box-r", "box-i", "stream-i2r", "stream-r2i"):
        assert f"`{label}`" in table


# --- §8: every error code -------------------------------------------------------------


def test_every_remote_error_code_of_the_reference_is_in_section_8() -> None:
    """Every code a peer's input can be refused with (a ``RemoteProtocolError``
    anywhere in core or net) has its row in §8."""
    for module in pkgutil.walk_packages(relsec_p2p.__path__, "relsec_p2p."):
        if module.name.startswith(("relsec_p2p.core.", "relsec_p2p.net.")):
            importlib.import_module(module.name)
    codes: set[str] = set()
    pending: list[type[RemoteProtocolError]] = [RemoteProtocolError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        codes.add(cls.code)
    codes.discard(RemoteProtocolError.code)  # the base class, never raised itself
    table = section("## 8. Errors")
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))
    assert "bad_round_message" in codes
    assert codes <= listed, codes - listed


# --- §2.4: nesting --------------------------------------------------------------------


def nested(depth: int, inner: bytes = b"\x90") -> bytes:
    """``depth`` containers on one path: one-item arrays around ``inner``."""
    return b"\x91" * (depth - 1) + inner


def code_of(data: bytes) -> str:
    with pytest.raises(RelsecError) as info:
        unpack(data)
    return info.value.code


UNSORTED_MAP = b"\x82\xa1b\x00\xa1a\x00"  # {"b": 0, "a": 0}: keys out of order


def test_nesting_is_counted_in_containers_and_refused_in_two_phases() -> None:
    assert unpack(nested(8)) == [[[[[[[[]]]]]]]]
    assert code_of(nested(9)) == "limit_exceeded"  # the walk: beyond max_depth
    # Up to 1 024 containers the walk decides, in encoded order: an unsorted
    # map met first is reported as such, before the depth.
    assert code_of(b"\x92" + UNSORTED_MAP + nested(1023)) == "non_canonical"
    # The 1 025th container header stops the parse, before any walk check ...
    assert code_of(b"\x92" + UNSORTED_MAP + nested(1024)) == "limit_exceeded"
    assert code_of(b"\x91" * 1025) == "limit_exceeded"  # ... even cut short after it
    assert code_of(b"\x91" * 1024) == "malformed"  # 1 024 headers, then nothing
    # ... but in byte order: an earlier parse fault wins, a later one does not.
    assert code_of(b"\x92\xc1" + nested(1025)) == "malformed"
    assert code_of(b"\x92" + nested(1025) + b"\xc1") == "limit_exceeded"
    # Maps count as arrays do (a map value is one deeper; keys add nothing).
    assert code_of(b"\x81\xa1a" * 1023 + b"\x80") == "limit_exceeded"
    assert code_of(b"\x92" + UNSORTED_MAP + b"\x81\xa1a" * 1022 + b"\x80") == "non_canonical"
    assert code_of(b"\x92" + UNSORTED_MAP + b"\x81\xa1a" * 1023 + b"\x80") == "limit_exceeded"


# --- §6.0: an optional key present with nil is present --------------------------------


def outcome(scribe: Scribe, who: Identity, kind: str, data: dict[str, Any]) -> str | None:
    """Why the fold ignored the entry (None: applied)."""
    entry = scribe.write(who, kind, data)
    state = scribe.state()
    reasons = [reason for h, reason in state.ignored if h == entry.hash]
    return reasons[0] if reasons else None


def room(*open_steps: int) -> Scribe:
    scribe = Scribe(A)
    scribe.create()
    scribe.add(A, B, "Bo")
    scribe.add(A, C, "Cy")
    for step in open_steps:
        scribe.write(A, "step.open", {"step": step})
    return scribe


@pytest.mark.parametrize(
    ("kind", "data", "step"),
    [
        ("contrib.add", {"step": TEXT, "text": "x", "tag": None}, TEXT),
        ("contrib.add", {"step": TEXT, "text": "x", "ref": None}, TEXT),
        ("rating.set", {"step": RATING, "value": 1, "ref": None}, RATING),
    ],
    ids=["contrib tag nil", "contrib ref nil", "rating ref nil"],
)
def test_an_optional_key_present_with_nil_fails_its_condition(
    kind: str, data: dict[str, Any], step: int
) -> None:
    scribe = room(step)
    assert outcome(scribe, B, kind, data) is not None
    without = {key: value for key, value in data.items() if value is not None}
    assert outcome(scribe, B, kind, without) is None


@pytest.mark.parametrize(
    "change",
    [{"help": None}, {"scale": None}, {"links": None}],
    ids=["help nil", "scale nil", "links nil"],
)
def test_a_step_key_present_with_nil_makes_the_agenda_invalid(change: dict[str, Any]) -> None:
    scribe = Scribe(A)
    scribe.create(agenda=[{**AGENDA[TEXT], **change}])
    assert not scribe.state().created


def test_a_setting_present_with_nil_makes_the_settings_invalid() -> None:
    scribe = Scribe(A)
    scribe.create(quorum_pct=None)
    assert not scribe.state().created


def test_hand_lower_who_nil_is_only_compared() -> None:
    """`who` has no type condition: nil is not the author, so only the
    facilitator may write it; while nobody has the floor, nil is the
    speaker, so the entry is applied and changes nothing but `applied`."""
    scribe = room()
    assert outcome(scribe, B, "hand.lower", {"who": None}) is not None  # not the facilitator
    before = scribe.state()
    assert before.queue.speaker is None
    assert outcome(scribe, A, "hand.lower", {"who": None}) is None
    after = scribe.state()
    assert after.applied == before.applied + 1
    assert after.queue == before.queue
    # With a speaker, nil is neither waiting nor speaking: ignored.
    scribe.write(B, "hand.raise", {})
    scribe.write(A, "hand.next", {})
    assert scribe.state().queue.speaker == B.key
    assert outcome(scribe, A, "hand.lower", {"who": None}) is not None


# --- §7.6 and §7.1: order of sends, events --------------------------------------------


def test_sends_to_several_peers_go_in_ascending_key_order() -> None:
    scribe = Scribe(A)
    scribe.create()
    for identity, name in ((B, "Bo"), (C, "Cy"), (D, "Di")):
        scribe.add(A, identity, name)
    session = Session.join(A, MID, A.key, clock=lambda: 0)
    session.receive(B.key, entries_frame(MID, *(e.envelope for e in scribe.entries)))
    peers = [D.key, B.key, C.key]  # linked in some other order
    for peer in peers:
        session.peer_connected(peer)
    session.take_sends()
    session.tick()
    assert [send.peer for send in session.take_sends()] == sorted(peers)
    session.raise_hand()
    assert [send.peer for send in session.take_sends()] == sorted(peers)


def test_changed_comes_last_and_only_when_something_was_accepted() -> None:
    scribe = Scribe(A)
    scribe.create()
    scribe.add(A, B, "Bo")
    session = Session.join(C, MID, A.key, clock=lambda: 0)
    frame = entries_frame(MID, *(e.envelope for e in scribe.entries))
    events = session.receive(B.key, frame)
    assert [type(event) for event in events] == [EntryAccepted, EntryAccepted, MeetingChanged]
    assert session.receive(B.key, frame) == []  # duplicates only: no `changed`
    late = scribe.write(A, "step.open", {"step": TEXT})
    later = scribe.write(A, "step.close", {"step": TEXT})
    assert session.receive(B.key, entries_frame(MID, later.envelope)) == []  # buffered only
    events = session.receive(B.key, entries_frame(MID, late.envelope))
    assert [(type(e), getattr(e, "seq", None)) for e in events] == [
        (EntryAccepted, 3),
        (EntryAccepted, 4),  # drained from the gap buffer
        (MeetingChanged, None),
    ]
