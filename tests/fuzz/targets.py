"""Fuzz targets: every decoder that takes bytes from the network.

Each target takes arbitrary bytes and must either accept them or reject them
with a typed ``RelsecError``; anything else (another exception, a hang) is a
bug. Targets that hold state also check that rejected input changed nothing.
Used by the atheris campaign (``tests/fuzz/run.py``) and by the short corpus
pass in CI (``tests/fuzz/test_fuzz_corpus.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import relsec_p2p.templates as templates_package
from relsec_p2p.core import admission, joincode, wordlist
from relsec_p2p.core.codec import FRAME_LIMITS, FrameDecoder, frame, pack, unpack
from relsec_p2p.core.errors import LocalProtocolError, RelsecError, RemoteProtocolError
from relsec_p2p.core.events import EntryAccepted, ForkDetected
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.link import Handshake
from relsec_p2p.core.session import Session
from relsec_p2p.core.shuffle import RoundStart, pad
from relsec_p2p.core.shuffle_round import Round
from relsec_p2p.core.template import TemplateError, parse_template

AGENDA = [
    {"id": "t", "title": "Threats", "prompt": "What threatens us?", "mode": "both", "kind": "text"},
    {"id": "w", "title": "Way", "prompt": "Propose", "mode": "named", "kind": "proposal"},
]
_ticks = iter(range(10**9))


def _clock() -> int:
    return 1_700_000_000_000 + next(_ticks)


class Meeting:
    """A small real meeting: two members, an open step, a proposal and a poll."""

    def __init__(self) -> None:
        self.alice = Identity.from_seed(b"\x01" * 32)
        self.bob = Identity.from_seed(b"\x02" * 32)
        self.host = Session.create(
            self.alice, title="fuzz", name="Alice", agenda=AGENDA, clock=_clock, mid=b"\x07" * 16
        )
        self.host.add_member(self.bob.key, self.bob.ring_key, "Bob")
        self.host.open_step(0)
        self.host.contribute(0, "a first contribution")
        self.host.advance()
        proposal = self.host.propose(1, "we do it")
        self.host.open_poll(proposal.hash)
        self.host.peer_connected(self.bob.key)
        self.host.take_sends()

    def seeds(self) -> list[bytes]:
        """Valid sync messages: the corpus libFuzzer mutates from."""
        entries = [e.envelope for e in sorted(self.host.log.entries(), key=lambda e: e.order_key)]
        mid = self.host.mid
        return [
            pack({"t": "entries", "mid": mid, "e": entries}),
            pack({"t": "entries", "mid": mid, "e": entries[:1]}),
            pack({"t": "have", "mid": mid, "heads": self.host.log.summary(), "forks": []}),
            pack({"t": "have", "mid": mid, "heads": [], "forks": []}),
            pack({"t": "want", "mid": mid, "r": [[self.alice.key, 1, 3]]}),
            pack({"t": "fork", "mid": mid, "p": entries[:2]}),
        ]


_MEETING: Meeting | None = None


def meeting() -> Meeting:
    global _MEETING
    if _MEETING is None:
        _MEETING = Meeting()
    return _MEETING


def fuzz_frames(data: bytes) -> None:
    """The length-prefixed frame splitter and the canonical decoder."""
    decoder = FrameDecoder(max_frame=4096)
    try:
        for payload in decoder.feed(data):
            unpack(payload, FRAME_LIMITS)
    except RemoteProtocolError:
        pass


def fuzz_session(data: bytes) -> None:
    """A member's Session receiving one frame from a linked peer."""
    m = meeting()
    before = (m.host.digest(), m.host.log.summary(), len(m.host.log.forks))
    events = m.host.receive(m.bob.key, data)
    m.host.take_sends()
    if not any(isinstance(e, EntryAccepted | ForkDetected) for e in events):
        after = (m.host.digest(), m.host.log.summary(), len(m.host.log.forks))
        if after != before:
            raise AssertionError("rejected input changed the meeting")


def fuzz_handshake(data: bytes) -> None:
    """A link responder taking a first and a third handshake message."""
    m = meeting()
    responder = Handshake(m.alice, m.host.mid, initiator=False, epoch=1, accept=lambda k: True)
    half = len(data) // 2
    try:
        responder.receive(data[:half])
        responder.receive(data[half:])
    except RemoteProtocolError:
        return
    except LocalProtocolError:
        return  # receive() after the handshake failed or finished
    if responder.done:
        raise AssertionError("a random handshake completed")


_CODE = joincode.parse_join_code("42-" + "-".join(wordlist.WORDS[:3]))


def fuzz_join(data: bytes) -> None:
    """A sponsor running the join PAKE with random messages."""
    sponsor = admission.SponsorHandshake(_CODE)
    decoder = FrameDecoder(max_frame=4096)
    try:
        for payload in decoder.feed(data):
            step = sponsor.receive(payload)
            if step.result is not None:
                raise AssertionError("a random joiner was admitted")
    except (RemoteProtocolError, LocalProtocolError):
        pass


def handshake_seeds() -> list[bytes]:
    m = meeting()
    initiator = Handshake(
        m.bob,
        m.host.mid,
        initiator=True,
        epoch=1,
        accept=lambda k: True,
    )
    hi1 = initiator.start()
    return [hi1 + hi1, hi1 + os.urandom(40)]


def join_seeds() -> list[bytes]:
    joiner = admission.JoinerHandshake(
        _CODE,
        Identity.from_seed(b"\x03" * 32).key,
        Identity.from_seed(b"\x03" * 32).ring_key,
        "Joiner",
    )
    return [frame(joiner.start())]


# --- shuffle rounds -----------------------------------------------------------------

_ROUND_IDS = sorted(
    (Identity.from_seed(bytes([i + 1]) * 32) for i in range(3)), key=lambda i: i.key
)
_ROUND_START = RoundStart.new(b"\x07" * 16, 1, [i.key for i in _ROUND_IDS])
_ROUND_SLOT = 256


def _new_round(k: int) -> Round:
    return Round(
        _ROUND_IDS[k],
        _ROUND_START,
        pad(f"item {k}".encode(), _ROUND_SLOT),
        slot=_ROUND_SLOT,
        now_ms=0,
        timeout_ms=60_000,
    )


def _honest_transcript() -> list[tuple[bytes, bytes, bytes]]:
    """Every message of one honest 3-member round: (sender, receiver, bytes)."""
    rounds = {i.key: _new_round(k) for k, i in enumerate(_ROUND_IDS)}
    queue: list[tuple[bytes, bytes, dict[str, Any]]] = []
    for key, round_ in rounds.items():
        queue += [(key, dst, m) for dst, m in round_.begin()]
    sent: list[tuple[bytes, bytes, bytes]] = []
    while queue:
        src, dst, message = queue.pop(0)
        sent.append((src, dst, pack(message)))
        queue += [(dst, d, m) for d, m in rounds[dst].receive(src, message, 1)]
    return sent


_TRANSCRIPT: list[tuple[bytes, bytes, bytes]] | None = None


def transcript() -> list[tuple[bytes, bytes, bytes]]:
    global _TRANSCRIPT
    if _TRANSCRIPT is None:
        _TRANSCRIPT = _honest_transcript()
    return _TRANSCRIPT


def fuzz_shuffle(data: bytes) -> None:
    """Member 0 of a round, part-way through an honest run (the first byte
    says how far), receives one arbitrary message from member 1."""
    if not data:
        return
    me = _ROUND_IDS[0].key
    mine = [(src, m) for src, dst, m in transcript() if dst == me]
    round_ = _new_round(0)
    round_.begin()
    for src, message in mine[: data[0] % (len(mine) + 1)]:
        round_.receive(src, unpack(message, FRAME_LIMITS), 1)
    try:
        message = unpack(data[1:], FRAME_LIMITS)
        if not isinstance(message, dict):
            return
        round_.receive(_ROUND_IDS[1].key, message, 2)
    except RemoteProtocolError:
        pass


def shuffle_seeds() -> list[bytes]:
    me = _ROUND_IDS[0].key
    mine = [(src, m) for src, dst, m in transcript() if dst == me]
    return [bytes([k]) + m for k, (_, m) in enumerate(mine)]


# --- templates ------------------------------------------------------------------------


def fuzz_template(data: bytes) -> None:
    """The template loader: any text gives a Template or one TemplateError."""
    try:
        parse_template(data.decode("utf-8", "replace"), "fuzz.toml")
    except TemplateError as error:
        if "fuzz.toml" not in str(error):
            raise AssertionError("a template error must name the file") from error


def template_seeds() -> list[bytes]:
    folder = Path(templates_package.__file__).parent
    return [path.read_bytes() for path in sorted(folder.glob("*.toml"))]


TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "frames": (fuzz_frames, lambda: [frame(s) for s in meeting().seeds()]),
    "session": (fuzz_session, lambda: meeting().seeds()),
    "handshake": (fuzz_handshake, handshake_seeds),
    "join": (fuzz_join, join_seeds),
    "shuffle": (fuzz_shuffle, shuffle_seeds),
    "template": (fuzz_template, template_seeds),
}

__all__ = ["TARGETS", "RelsecError"]
