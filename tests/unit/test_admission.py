"""Join codes (core/joincode), the SPAKE2 join handshake (core/admission) and
the safety number (core/safety).

Two handshakes are joined by an in-memory link (as h11's ConnectionPair) that
also records everything a passive observer on the LAN would see."""

from __future__ import annotations

import os
import re
import time
from collections import deque
from dataclasses import dataclass, field

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.encoding import RawEncoder
from nacl.secret import SecretBox

from relsec_p2p.core import admission
from relsec_p2p.core.admission import (
    BadPakeMessage,
    BadSeal,
    CodeGuard,
    HandshakeStep,
    JoinerHandshake,
    JoinGranted,
    JoinRequest,
    SponsorHandshake,
    UnexpectedMessage,
    WrongCode,
)
from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import (
    LocalError,
    LocalProtocolError,
    MalformedFrame,
    NonCanonical,
    RemoteProtocolError,
)
from relsec_p2p.core.fields import name_problem
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.joincode import (
    EXAMPLE_CODE,
    JOIN_CODE_WORD_COUNT,
    BadJoinCode,
    JoinCode,
    new_join_code,
    parse_join_code,
)
from relsec_p2p.core.safety import safety_number
from relsec_p2p.core.state import MAX_NAME
from relsec_p2p.core.wordlist import ALIASES, WORDS

MID = bytes(range(16))


# --- word list ------------------------------------------------------------


def one_edit_apart(a: str, b: str) -> bool:
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    if abs(len(a) - len(b)) != 1:
        return False
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_word_list_is_large_distinct_and_simple() -> None:
    assert len(WORDS) >= 256
    assert len(set(WORDS)) == len(WORDS)
    for word in WORDS:
        assert re.fullmatch(r"[a-z]{3,8}", word), word


def test_no_two_words_are_one_typo_apart() -> None:
    ordered = sorted(WORDS)
    close = [
        (a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if one_edit_apart(a, b)
    ]
    assert close == []


def test_no_common_homophones_or_heteronyms() -> None:
    # A sample of words that sound like another word or read two ways.
    risky = {
        "bare", "bear", "pair", "pear", "sea", "see", "sun", "son", "night", "knight",
        "flower", "flour", "rose", "rows", "tail", "tale", "plane", "plain", "hole",
        "whole", "road", "rode", "sail", "sale", "week", "weak", "piece", "peace",
        "hair", "hare", "deer", "dear", "steel", "steal", "berry", "board", "cell",
        "knot", "made", "maid", "one", "won", "red", "read", "wind", "bow", "tear",
        "lead", "bass", "dove", "live", "close", "row", "wound", "horse", "fir", "yew",
        "carrot", "pigeon", "cedar", "moose", "stork", "llama", "bread", "colonel",
    }  # fmt: skip
    assert risky.isdisjoint(WORDS)


def test_aliases_point_at_listed_words() -> None:
    for alias, word in ALIASES.items():
        assert word in WORDS
        assert alias not in WORDS


# --- join codes -----------------------------------------------------------

codes = st.builds(
    JoinCode,
    st.integers(10, 99),
    st.lists(st.sampled_from(WORDS), min_size=3, max_size=3).map(tuple),
)


def assert_one_plain_sentence(message: str) -> None:
    assert message[0].isupper() and message.endswith(".")
    assert not re.search(r"[.!?]\s", message[:-1]), message
    assert "\n" not in message


@given(codes)
def test_parse_round_trips(code: JoinCode) -> None:
    assert parse_join_code(str(code)) == code


@given(codes, st.sampled_from([" ", "  ", "-", " - ", "\u2013", "_", "\t"]))
def test_parse_is_tolerant_of_case_and_separators(code: JoinCode, sep: str) -> None:
    typed = f"  {sep.join(str(code).split('-')).upper()}\n"
    assert parse_join_code(typed) == code


def test_str_and_aliases() -> None:
    code = parse_join_code(" 42 Harbour velvet-ORBIT ")
    assert str(code) == EXAMPLE_CODE
    assert code == JoinCode(42, ("harbor", "velvet", "orbit"))


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("42-harbor-velvet", "a number and three words"),
        ("42-harbor-velvet-orbit-amber", "a number and three words"),
        ("harbor-42-velvet-orbit", "a number and three words"),
        ("harbor-velvet-orbit", "a number and three words"),
        ("\u0664\u0662-harbor-velvet-orbit", "a number and three words"),
        ("4x-harbor-velvet-orbit", "a number and three words"),
        ("42-harbor-velvet-orbit" + "-orbit" * 30, "a number and three words"),
        ("9-harbor-velvet-orbit", "between 10 and 99"),
        ("100-harbor-velvet-orbit", "between 10 and 99"),
        ("42-harbr-velvet-orbit", "first word"),
        ("42-harbor-velvett-orbit", "second word"),
        ("42-harbor-velvet-orbits", "third word"),
        ("42-harbor-velvet-\u00f6rbit", "third word"),
    ],
)
def test_bad_codes_say_what_to_do_in_one_sentence(typed: str, hint: str) -> None:
    with pytest.raises(BadJoinCode) as caught:
        parse_join_code(typed)
    message = str(caught.value)
    assert hint in message
    assert_one_plain_sentence(message)
    # A person's typo, on this laptop's side; not the program misusing the core.
    assert isinstance(caught.value, LocalError)
    assert not isinstance(caught.value, LocalProtocolError)
    # What was typed is close to a secret: never echoed back.
    for typo in ("harbr", "velvett", "orbits"):
        assert typo not in message


@given(st.text(max_size=60))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        parse_join_code(text)
    except BadJoinCode as exc:
        assert_one_plain_sentence(str(exc))


def test_new_codes() -> None:
    seen = {new_join_code() for _ in range(200)}
    assert len(seen) == 200
    for code in seen:
        assert 10 <= code.nameplate <= 99
        assert len(code.words) == JOIN_CODE_WORD_COUNT == len(set(code.words))
    assert new_join_code(42).nameplate == 42
    with pytest.raises(BadJoinCode):
        new_join_code(7)


@pytest.mark.parametrize(
    ("nameplate", "words"),
    [
        (42, ("harbor", "velvet")),
        (42, ("harbor", "velvet", "nope")),
        (42, ["harbor", "velvet", "orbit"]),
        (True, ("harbor", "velvet", "orbit")),
        (100, ("harbor", "velvet", "orbit")),
    ],
)
def test_join_code_validates_fields(nameplate: object, words: object) -> None:
    with pytest.raises(BadJoinCode):
        JoinCode(nameplate, words)  # type: ignore[arg-type]


def test_repr_hides_the_words() -> None:
    code = parse_join_code(EXAMPLE_CODE)
    assert "harbor" not in repr(code)
    assert "harbor" not in repr(CodeGuard(code))


# --- the handshake over an in-memory link --------------------------------

Mutation = dict[int, bytes]


@dataclass
class Link:
    """A joiner and a sponsor joined by two ordered queues (as h11's
    ConnectionPair). ``pump`` delivers one message at a time, alternating
    directions; a side that raises stops receiving and its error is kept.
    ``wire`` is what an observer on the LAN sees, with who sent it;
    ``replace`` swaps the n-th message on the wire (tampering, replay)."""

    joiner: JoinerHandshake
    sponsor: SponsorHandshake
    replace: Mutation = field(default_factory=dict)
    sponsor_key: bytes = field(default_factory=lambda: Identity.generate().key)
    to_sponsor: deque[bytes] = field(default_factory=deque)
    to_joiner: deque[bytes] = field(default_factory=deque)
    wire: list[tuple[str, bytes]] = field(default_factory=list)
    errors: dict[str, RemoteProtocolError] = field(default_factory=dict)
    request: JoinRequest | None = None
    granted: JoinGranted | None = None

    def send(self, sender: str, payloads: tuple[bytes, ...] | list[bytes]) -> None:
        queue = self.to_sponsor if sender == "joiner" else self.to_joiner
        for payload in payloads:
            payload = self.replace.get(len(self.wire), payload)
            self.wire.append((sender, payload))
            queue.append(payload)

    def sent_by(self, sender: str) -> list[bytes]:
        return [payload for who, payload in self.wire if who == sender]

    def deliver(self, side: str) -> None:
        queue = self.to_sponsor if side == "sponsor" else self.to_joiner
        payload = queue.popleft()
        if side in self.errors:
            return
        handshake = self.sponsor if side == "sponsor" else self.joiner
        try:
            step = handshake.receive(payload)
        except RemoteProtocolError as exc:
            self.errors[side] = exc
            return
        self.send(side, step.send)
        if isinstance(step.result, JoinRequest):
            self.request = step.result
            self.send("sponsor", [self.sponsor.grant(MID, self.sponsor_key, self.sponsor_key)])
        elif isinstance(step.result, JoinGranted):
            self.granted = step.result

    def pump(self) -> Link:
        while self.to_sponsor or self.to_joiner:
            if self.to_sponsor:
                self.deliver("sponsor")
            if self.to_joiner:
                self.deliver("joiner")
        return self


MEMBER = Identity.generate()


def make_link(
    joiner_code: JoinCode,
    sponsor_code: JoinCode | None = None,
    replace: Mutation | None = None,
    order: str = "joiner",
) -> Link:
    link = Link(
        JoinerHandshake(joiner_code, MEMBER.key, MEMBER.ring_key, "Ana"),
        SponsorHandshake(sponsor_code or joiner_code),
        replace=replace or {},
    )
    if order in ("joiner", "both"):
        link.send("joiner", [link.joiner.start()])
    if order in ("sponsor", "both"):
        link.send("sponsor", [link.sponsor.start()])
    return link


def kinds(link: Link) -> list[str]:
    return [unpack(payload)["t"] for _, payload in link.wire]


# In the joiner-first flow the wire carries, in this order:
FLOW = ["pake", "pake", "confirm", "confirm", "hello", "grant"]
SENDERS = ["joiner", "sponsor", "sponsor", "joiner", "joiner", "sponsor"]


@pytest.mark.parametrize("order", ["joiner", "sponsor", "both"])
def test_round_trip_with_the_right_code(order: str) -> None:
    link = make_link(new_join_code(), order=order).pump()
    assert link.errors == {}
    assert link.request == JoinRequest(key=MEMBER.key, ring_key=MEMBER.ring_key, name="Ana")
    assert link.granted == JoinGranted(mid=MID, creator=link.sponsor_key, sponsor=link.sponsor_key)
    assert link.joiner.done and link.sponsor.done
    assert link.joiner.confirmed and link.sponsor.confirmed
    assert sorted(kinds(link)) == sorted(FLOW)


def test_joiner_first_flow_is_as_documented() -> None:
    link = make_link(new_join_code()).pump()
    assert kinds(link) == FLOW
    assert [who for who, _ in link.wire] == SENDERS


def test_a_name_with_emoji_joiners_gets_through() -> None:
    flag = "Sam \U0001f3f3\ufe0f\u200d\U0001f308"
    code = new_join_code()
    link = Link(JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, flag), SponsorHandshake(code))
    link.send("joiner", [link.joiner.start()])
    request = link.pump().request
    assert request is not None and request.name == flag


def record_box_keys(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The key of every channel box a handshake derives from now on: a spy on
    the SecretBox class admission seals with."""
    keys: list[bytes] = []

    class Recording(SecretBox):
        def __init__(self, key: bytes, encoder: type[RawEncoder] = RawEncoder) -> None:
            keys.append(bytes(key))
            super().__init__(key, encoder)

    monkeypatch.setattr(admission, "SecretBox", Recording)
    return keys


def test_wrong_code_fails_on_both_sides_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    box_keys = record_box_keys(monkeypatch)
    right = parse_join_code(EXAMPLE_CODE)
    wrong = parse_join_code("42-harbor-velvet-amber")
    started = time.perf_counter()
    link = make_link(wrong, right).pump()
    assert time.perf_counter() - started < 2.0  # generous: about 25 ms here
    assert isinstance(link.errors.get("joiner"), WrongCode)
    assert isinstance(link.errors.get("sponsor"), WrongCode)
    assert link.errors["sponsor"].code == "wrong_code"
    assert link.request is None and link.granted is None
    assert link.joiner.failed and link.sponsor.failed
    # Nothing sealed was sent, and nothing sealed could be opened: each side's
    # two channel keys come from a different SPAKE2 secret, so none is shared
    # (with the right code, both are).
    assert set(kinds(link)) == {"pake", "confirm"}
    assert len(box_keys) == 4 and len(set(box_keys)) == 4
    box_keys.clear()
    assert make_link(right).pump().granted is not None
    assert len(box_keys) == 4 and len(set(box_keys)) == 2


def test_errors_and_reprs_never_show_the_code() -> None:
    right, wrong = parse_join_code(EXAMPLE_CODE), parse_join_code("42-harbor-velvet-amber")
    link = make_link(wrong, right).pump()
    shown = " ".join(
        [str(e) + repr(e) for e in link.errors.values()]
        + [repr(link.joiner), repr(link.sponsor), repr(right)]
    )
    for word in (*right.words, *wrong.words):
        assert word not in shown


def test_a_passive_recorder_learns_nothing_even_with_the_code() -> None:
    code = new_join_code()
    link = make_link(code).pump()
    assert link.granted is not None
    everything = b"".join(payload for _, payload in link.wire)
    for secret in (MEMBER.key, MEMBER.ring_key, b"Ana", MID, link.sponsor_key, code.password):
        assert secret not in everything
    # Knowing the code later does not help: replaying either side's recorded
    # messages into a fresh handshake meets a fresh SPAKE2 secret, so the
    # recorded MAC fails and the sealed payloads are never reached.
    pake_j, confirm_j, _hello = link.sent_by("joiner")
    eve_sponsor = SponsorHandshake(code)
    eve_sponsor.receive(pake_j)
    with pytest.raises(WrongCode):
        eve_sponsor.receive(confirm_j)
    pake_s, confirm_s, _grant = link.sent_by("sponsor")
    eve_joiner = JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "Eve")
    eve_joiner.start()
    eve_joiner.receive(pake_s)
    with pytest.raises(WrongCode):
        eve_joiner.receive(confirm_s)


def test_every_run_has_fresh_messages() -> None:
    code = new_join_code()
    first = {payload for _, payload in make_link(code).pump().wire}
    second = {payload for _, payload in make_link(code).pump().wire}
    assert first.isdisjoint(second)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def tamper(payload: bytes) -> bytes:
    """Flip one bit of the message's value field, keeping the frame well-formed."""
    message = unpack(payload)
    (name,) = set(message) - {"t"}
    message[name] = flip_last_byte(message[name])
    return pack(message)


@pytest.mark.parametrize(
    ("index", "victim", "expected"),
    [
        (0, "sponsor", (BadPakeMessage, WrongCode)),
        (1, "joiner", (BadPakeMessage, WrongCode)),
        (2, "joiner", (WrongCode,)),
        (3, "sponsor", (WrongCode,)),
        (4, "sponsor", (BadSeal,)),
        (5, "joiner", (BadSeal,)),
    ],
)
def test_tampering_with_any_message_is_caught(
    index: int, victim: str, expected: tuple[type[Exception], ...]
) -> None:
    code = new_join_code()
    honest = make_link(code).pump()
    link = make_link(code, replace={index: tamper(honest.wire[index][1])}).pump()
    assert link.granted is None
    assert isinstance(link.errors.get(victim), expected), link.errors


@pytest.mark.parametrize(
    ("index", "victim", "expected"),
    [(3, "sponsor", WrongCode), (4, "sponsor", BadSeal), (5, "joiner", BadSeal)],
)
def test_messages_replayed_from_another_run_are_rejected(
    index: int, victim: str, expected: type[Exception]
) -> None:
    code = new_join_code()
    old = make_link(code).pump()
    link = make_link(code, replace={index: old.wire[index][1]}).pump()
    assert link.granted is None
    assert isinstance(link.errors.get(victim), expected), link.errors


def test_a_message_replayed_in_the_same_run_is_out_of_order() -> None:
    code = new_join_code()
    joiner = JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "Ana")
    sponsor = SponsorHandshake(code)
    pake = joiner.start()
    sponsor.receive(pake)
    with pytest.raises(UnexpectedMessage):
        sponsor.receive(pake)
    assert sponsor.failed


def test_reflected_messages_are_rejected() -> None:
    code = new_join_code()
    sponsor = SponsorHandshake(code)
    with pytest.raises(BadPakeMessage):
        sponsor.receive(sponsor.start())
    # A MAC sent back to its sender never verifies: the keys are role-bound.
    joiner = JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "Ana")
    other = SponsorHandshake(code)
    step = joiner.receive(other.start())
    _pake_j, confirm_j = step.send
    with pytest.raises(WrongCode):
        joiner.receive(confirm_j)


def sponsor_in(state: str) -> tuple[SponsorHandshake, JoinerHandshake, list[bytes]]:
    """A sponsor driven to ``state``, its joiner, and the joiner's next messages."""
    code = new_join_code()
    joiner = JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "Ana")
    sponsor = SponsorHandshake(code)
    if state == "new":
        return sponsor, joiner, [joiner.start()]
    if state == "started":
        sponsor.start()
        return sponsor, joiner, [joiner.start()]
    pake_s, confirm_s = sponsor.receive(joiner.start()).send
    (confirm_j,) = joiner.receive(pake_s).send
    (hello,) = joiner.receive(confirm_s).send
    if state == "keyed":
        return sponsor, joiner, [confirm_j, hello]
    sponsor.receive(confirm_j)
    assert sponsor.state == "await_hello"
    return sponsor, joiner, [hello]


GRANT_LIKE = pack({"t": "grant", "s": bytes(64)})
CONFIRM_LIKE = pack({"t": "confirm", "c": bytes(32)})
HELLO_LIKE = pack({"t": "hello", "s": bytes(64)})
PAKE_LIKE = pack({"t": "pake", "m": b"S" + bytes(32)})


@pytest.mark.parametrize(
    ("state", "payload"),
    [
        ("new", CONFIRM_LIKE),
        ("new", HELLO_LIKE),
        ("new", GRANT_LIKE),
        ("started", CONFIRM_LIKE),
        ("keyed", PAKE_LIKE),
        ("keyed", HELLO_LIKE),
        ("keyed", GRANT_LIKE),
        ("await_hello", PAKE_LIKE),
        ("await_hello", CONFIRM_LIKE),
        ("await_hello", GRANT_LIKE),
    ],
)
def test_sponsor_rejects_messages_out_of_order(state: str, payload: bytes) -> None:
    sponsor, _, _ = sponsor_in(state)
    with pytest.raises(UnexpectedMessage):
        sponsor.receive(payload)
    assert sponsor.failed
    with pytest.raises(LocalProtocolError):  # a failed handshake stays dead
        sponsor.receive(payload)


@pytest.mark.parametrize("payload", [CONFIRM_LIKE, HELLO_LIKE, GRANT_LIKE])
def test_joiner_rejects_messages_out_of_order(payload: bytes) -> None:
    joiner = JoinerHandshake(new_join_code(), MEMBER.key, MEMBER.ring_key, "Ana")
    joiner.start()
    with pytest.raises(UnexpectedMessage):
        joiner.receive(payload)


def test_joiner_rejects_a_hello() -> None:
    code = new_join_code()
    joiner = JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "Ana")
    sponsor = SponsorHandshake(code)
    pake_s, confirm_s = sponsor.receive(joiner.start()).send
    joiner.receive(pake_s)
    joiner.receive(confirm_s)
    with pytest.raises(UnexpectedMessage):
        joiner.receive(HELLO_LIKE)


M = b"S" + bytes(32)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", MalformedFrame),
        (b"\xc1", MalformedFrame),
        (pack(["pake", M]), MalformedFrame),
        (pack({"m": M}), MalformedFrame),
        (pack({"t": "hi", "m": M}), MalformedFrame),
        (pack({"t": 1, "m": M}), MalformedFrame),
        (pack({"t": "pake", "m": M, "x": 1}), MalformedFrame),
        (pack({"t": "pake", "c": M}), MalformedFrame),
        (pack({"t": "pake", "m": "S" * 33}), MalformedFrame),
        (pack({"t": "pake", "m": M[:-1]}), BadPakeMessage),
        (pack({"t": "pake", "m": b"A" + bytes(32)}), BadPakeMessage),
        (pack({"t": "pake", "m": M}), BadPakeMessage),  # not a group element
        (pack({"t": "pake", "m": b"S" + b"\xff" * 32}), BadPakeMessage),
        (msgpack.packb({"t": "pake", "m": M}), NonCanonical),  # keys not sorted
        (pack({"t": "pake", "m": bytes(3000)}), MalformedFrame),  # over the limits
    ],
)
def test_malformed_messages_raise_typed_errors(payload: bytes, error: type[Exception]) -> None:
    sponsor = SponsorHandshake(new_join_code())
    with pytest.raises(error) as caught:
        sponsor.receive(payload)
    assert isinstance(caught.value, RemoteProtocolError)


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * (MAX_NAME + 1)},
        {"name": "Ana\u202egnp.exe"},
        {"name": "Ana\x1b[2J"},
        {"name": 7},
        {"key": b"\x01" + bytes(31)},  # the identity point: small order
        {"ring": b"\xff" * 32},  # not canonical
        {"ring": bytes(16)},
        {"extra": 1},
    ],
)
def test_sponsor_checks_the_sealed_hello(change: dict[str, object]) -> None:
    code = new_join_code()

    class Modified(JoinerHandshake):  # a modified client sends what it likes
        def hello(self) -> dict[str, object]:
            return {**super().hello(), **change}

    link = Link(Modified(code, MEMBER.key, MEMBER.ring_key, "Ana"), SponsorHandshake(code))
    link.send("joiner", [link.joiner.start()])
    link.pump()
    assert link.request is None
    assert isinstance(link.errors.get("sponsor"), MalformedFrame)


def test_local_misuse_is_a_local_error() -> None:
    code = new_join_code()
    with pytest.raises(LocalProtocolError):
        JoinerHandshake(code, MEMBER.key, MEMBER.ring_key, "")
    with pytest.raises(LocalProtocolError):
        JoinerHandshake(code, bytes(32), MEMBER.ring_key, "Ana")
    with pytest.raises(LocalProtocolError):
        SponsorHandshake(str(code))  # type: ignore[arg-type]
    sponsor = SponsorHandshake(code)
    sponsor.start()
    with pytest.raises(LocalProtocolError):
        sponsor.start()
    with pytest.raises(LocalProtocolError):
        sponsor.grant(MID, MEMBER.key, MEMBER.key)  # no JoinRequest yet
    confirmed, _, _ = sponsor_in("await_hello")
    with pytest.raises(LocalProtocolError):
        confirmed.grant(MID, MEMBER.key, MEMBER.key)  # still no JoinRequest


def test_grant_checks_its_arguments() -> None:
    sponsor, _, (hello,) = sponsor_in("await_hello")
    step = sponsor.receive(hello)
    assert isinstance(step, HandshakeStep) and isinstance(step.result, JoinRequest)
    with pytest.raises(LocalProtocolError):
        sponsor.grant(MID[:8], MEMBER.key, MEMBER.key)
    with pytest.raises(LocalProtocolError):
        sponsor.grant(MID, bytes(32), MEMBER.key)
    assert sponsor.grant(MID, MEMBER.key, MEMBER.key)
    assert sponsor.done


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Ana", True),
        ("José María", True),
        ("\u0645\u0631\u064a\u0645", True),
        ("\u0928\u092e\u0938\u094d\u200d\u0924\u0947", True),  # ZWJ inside Devanagari
        ("x" * MAX_NAME, True),
        ("x" * (MAX_NAME + 1), False),
        ("", False),
        ("\t", False),
        ("a\nb", False),
        ("a\u2028b", False),
        ("a\u2066b", False),
        ("a\ufeffb", False),
        ("a\u00adb", False),  # soft hyphen: invisible
        ("a\u180eb", False),  # Mongolian vowel separator: format since Unicode 6.3
        ("a\ue000b", False),  # private use
        ("a\U000e0067b", False),  # tag character
        ("a\U0010fffeb", False),  # a noncharacter of the last plane
        ("\u3000", False),  # blank: ideographic space is in the §6.0 list
        ("\u200b", False),  # not blank, but zero-width space is forbidden
        ("a\u200cb", True),  # ZWNJ stays allowed
        ("\U0001f469\u200d\U0001f4bb", True),  # emoji ZWJ sequence
        ("a\ufffdb", True),  # replacement character: visible
        (b"Ana", False),
    ],
)
def test_name_rules(name: object, ok: bool) -> None:
    assert (name_problem(name) is None) == ok


# --- rotating the code ----------------------------------------------------


def test_code_rotates_after_three_wrong_guesses() -> None:
    guard = CodeGuard(parse_join_code(EXAMPLE_CODE))
    wrong = parse_join_code("42-harbor-velvet-amber")
    verdicts = []
    for _ in range(3):
        link = make_link(wrong, guard.code).pump()
        assert isinstance(link.errors.get("sponsor"), WrongCode)
        verdicts.append(guard.settle(link.sponsor))
    assert verdicts == [False, False, True]
    assert guard.should_rotate
    old = guard.code
    new = guard.rotate()
    assert guard.code == new and new.nameplate == old.nameplate and new.words != old.words
    assert guard.failures == 0 and not guard.should_rotate


def test_a_hang_up_after_the_pake_message_is_a_spent_guess() -> None:
    guard = CodeGuard(max_failures=1)
    attacker = JoinerHandshake(new_join_code(), MEMBER.key, MEMBER.ring_key, "Eve")
    sponsor = SponsorHandshake(guard.code)
    sponsor.receive(attacker.start())  # the attacker now holds a MAC to test, and leaves
    assert sponsor.guess_spent and not sponsor.confirmed
    assert guard.settle(sponsor) is True
    assert guard.failures == 1
    guard.settle(sponsor)  # settling twice counts once
    assert guard.failures == 1


def test_successful_and_empty_runs_cost_nothing() -> None:
    guard = CodeGuard()
    link = make_link(guard.code).pump()
    assert link.granted is not None
    assert guard.settle(link.sponsor) is False
    idle = SponsorHandshake(guard.code)
    idle.start()
    assert guard.settle(idle) is False
    assert guard.failures == 0
    assert guard.record_failure() is False and guard.failures == 1


# --- safety number --------------------------------------------------------

KEYS = [bytes([i]) * 32 for i in range(1, 6)]


def test_safety_number_format_and_pinned_value() -> None:
    number = safety_number(MID, 1, KEYS)
    assert re.fullmatch(r"\d{5} \d{5} \d{5} \d{5}", number)
    assert number == PINNED
    assert safety_number(MID, 1, list(KEYS)) == number


@settings(max_examples=25, deadline=None)
@given(st.permutations(KEYS))
def test_safety_number_ignores_key_order(keys: list[bytes]) -> None:
    assert safety_number(MID, 1, keys) == PINNED


def test_safety_number_changes_with_every_input() -> None:
    base = safety_number(MID, 1, KEYS)
    variants = {
        safety_number(MID, 2, KEYS),
        safety_number(bytes(16), 1, KEYS),
        safety_number(MID, 1, KEYS[:-1]),
        safety_number(MID, 1, [*KEYS, os.urandom(32)]),
        safety_number(MID, 1, [*KEYS[:-1], KEYS[0]]),
    }
    for i in range(len(KEYS)):
        changed = list(KEYS)
        changed[i] = flip_last_byte(changed[i])
        variants.add(safety_number(MID, 1, changed))
    assert base not in variants
    assert len(variants) == 5 + len(KEYS)


@pytest.mark.parametrize(
    ("mid", "epoch", "keys"),
    [(b"", 1, KEYS), (MID, -1, KEYS), (MID, 1 << 64, KEYS), (MID, True, KEYS), (MID, 1, [b"x"])],
)
def test_safety_number_rejects_bad_input(mid: bytes, epoch: int, keys: list[bytes]) -> None:
    with pytest.raises(LocalProtocolError):
        safety_number(mid, epoch, keys)


PINNED = "56366 64009 07089 17962"  # also a vector for protocol/vectors
