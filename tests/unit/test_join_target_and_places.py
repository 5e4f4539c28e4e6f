"""The address form of a join (SPEC §12.3), a display's hello (§12.7,
§12.12) and the ``where`` message (§12.13): typed and remote input is
checked, and a mistake is one sentence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_admission import MEMBER, Link

from relsec_p2p.core.admission import (
    JoinerHandshake,
    JoinRequest,
    SponsorHandshake,
)
from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import MalformedFrame
from relsec_p2p.core.events import InputRejected
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.joincode import (
    BadJoinCode,
    JoinCode,
    format_join_address,
    new_join_code,
    parse_join_target,
)
from relsec_p2p.core.places import MAX_PLACES, PlacesHeard, read_where, where_message
from relsec_p2p.core.session import Session

CODE = JoinCode(42, ("harbor", "velvet", "orbit"))


@pytest.mark.parametrize(
    "typed",
    [
        "42-harbor-velvet-orbit @ 192.168.1.23:4711",
        "42-harbor-velvet-orbit@192.168.1.23:4711",
        "  42 Harbor velvet ORBIT  @  192.168.1.23 : 4711 ",
        "42-harbour-velvet-orbit @ 192.168.1.23:04711",
    ],
)
def test_the_address_form_is_read_forgivingly(typed: str) -> None:
    target = parse_join_target(typed)
    assert (target.code, target.host, target.port) == (CODE, "192.168.1.23", 4711)


def test_the_shown_form_reads_back() -> None:
    code = new_join_code()
    target = parse_join_target(format_join_address(code, "10.77.0.10", 40123))
    assert (target.code, target.host, target.port) == (code, "10.77.0.10", 40123)
    assert parse_join_target(str(code)).host is None


@pytest.mark.parametrize(
    "typed",
    [
        "42-harbor-velvet-orbit @",
        "42-harbor-velvet-orbit @ 192.168.1.23",
        "42-harbor-velvet-orbit @ 192.168.1.23:",
        "42-harbor-velvet-orbit @ :4711",
        "42-harbor-velvet-orbit @ laptop.local:4711",
        "42-harbor-velvet-orbit @ 192.168.1.300:4711",
        "42-harbor-velvet-orbit @ 192.168.1.23:0",
        "42-harbor-velvet-orbit @ 192.168.1.23:65536",
        "42-harbor-velvet-orbit @ 192.168.1.23:47x1",
        "42-harbor-velvet-orbit @ 224.0.0.251:5353",
        "42-harbor-velvet-orbit @ 0.0.0.0:4711",
        "42-harbor-velvet-orbit @ 255.255.255.255:4711",
        "42-harbor-velvet-orbit @ fe80::1:4711",
        "42-harbor-velvet-orbit @ 1.2.3.4:5 @ 6.7.8.9:10",
    ],
)
def test_a_mistyped_address_is_one_sentence_that_says_what_to_copy(typed: str) -> None:
    with pytest.raises(BadJoinCode) as caught:
        parse_join_target(typed)
    message = str(caught.value)
    assert message.startswith("The address after @ is not right")
    assert message.count(".") == message.count("192.168.1.23") * 3 + 1  # one sentence
    assert "orbit" not in message  # never repeats the typed code


def test_a_wrong_code_before_the_address_is_the_code_sentence() -> None:
    with pytest.raises(BadJoinCode, match="not one of relsec's code words"):
        parse_join_target("42-harbor-velvet-orbiter @ 192.168.1.23:4711")


@given(st.text(max_size=300))
def test_parse_join_target_never_raises_anything_else(text: str) -> None:
    try:
        parse_join_target(text)
    except BadJoinCode:
        pass


# --- a display's hello ------------------------------------------------------------


def test_a_display_says_so_in_its_hello() -> None:
    code = new_join_code()
    link = Link(
        JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "Room display", display=True),
        SponsorHandshake(code),
    )
    link.send("joiner", [link.joiner.start()])
    link.pump()
    assert link.errors == {}
    assert link.request == JoinRequest(MEMBER.key, MEMBER.ring_key, "Room display", display=True)


@pytest.mark.parametrize("role", ["member", "", b"display", True])
def test_a_hello_with_another_role_is_malformed(role: Any) -> None:
    code = new_join_code()

    class Odd(JoinerHandshake):
        def hello(self) -> dict[str, object]:
            return {**super().hello(), "as": role}

    link = Link(Odd(code, MEMBER.key, MEMBER.ring_key, "Ana"), SponsorHandshake(code))
    link.send("joiner", [link.joiner.start()])
    link.pump()
    assert isinstance(link.errors.get("sponsor"), MalformedFrame)
    assert link.request is None


# --- where members listen ---------------------------------------------------------

MID = bytes(16)
A, B = Identity.generate(), Identity.generate()


def test_where_round_trips_through_a_session() -> None:
    session = Session.join(Identity.generate(), MID, A.key, lambda: 0)
    payload = where_message(MID, {A.key: [("10.77.0.10", 4711)], B.key: [("10.77.0.11", 80)]})
    (event,) = session.receive(A.key, payload)
    assert event == PlacesHeard(
        A.key, {A.key: (("10.77.0.10", 4711),), B.key: (("10.77.0.11", 80),)}
    )


@pytest.mark.parametrize(
    "rows",
    [
        [[A.key, []]],
        [[A.key, [["10.77.0.10", 0]]]],
        [[A.key, [["10.77.0.010", 80]]]],
        [[A.key, [["224.0.0.251", 5353]]]],
        [[A.key, [["laptop.local", 80]]]],
        [[A.key, [["10.77.0.10", True]]]],
        [[A.key[:31], [["10.77.0.10", 80]]]],
        [[A.key, [["10.77.0.10", 80]]], [A.key, [["10.77.0.11", 80]]]],
        [[A.key, [["10.77.0.10", 80 + i] for i in range(MAX_PLACES + 1)]]],
        [[A.key, [["10.77.0.10", 80]], "extra"]],
    ],
)
def test_a_malformed_where_closes_the_link(rows: list[Any]) -> None:
    with pytest.raises(MalformedFrame):
        read_where(A.key, {"t": "where", "mid": MID, "p": rows})
    session = Session.join(Identity.generate(), MID, A.key, lambda: 0)
    (event,) = session.receive(A.key, pack({"t": "where", "mid": MID, "p": rows}))
    assert isinstance(event, InputRejected) and event.fatal


def test_where_is_bounded_when_written() -> None:
    many = [(f"10.77.0.{i}", 80) for i in range(1, 20)]
    heard = read_where(A.key, _decoded(where_message(MID, {A.key: many})))
    assert len(heard.places[A.key]) == MAX_PLACES


def _decoded(payload: bytes) -> dict[str, Any]:
    value = unpack(payload)
    assert isinstance(value, dict)
    return value
