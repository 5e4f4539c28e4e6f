"""A member who misbehaves on purpose, over real TCP links on loopback.

The adversary is a real member (it joined by code), so it holds a real link
to each honest node and can put any bytes on it. For each behaviour the test
shows what the honest nodes report and that the meeting goes on for them.
Behaviour → outcome is the adversary matrix in the README.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from relsec_p2p.core.codec import pack
from relsec_p2p.core.feed import encode_entry
from relsec_p2p.core.link import FLOOD_BURST, FloodGuard
from relsec_p2p.core.save import payload_of, restore_session
from relsec_p2p.net.link import Link
from relsec_p2p.net.node import Node, PeerDown
from relsec_p2p.peerproc import SAMPLE_AGENDA

SMALL_QUEUE = 256 * 1024  # bytes a host queues for a member who stops reading


@dataclass
class Room:
    host: Node
    honest: Node
    adversary: Node
    downs: list[PeerDown]

    def link(self, node: Node, to: Node) -> Link:
        return node.links[to.identity.key]

    async def until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("condition never held")
            await asyncio.sleep(0.02)

    async def cut_off(self, reason: str) -> None:
        """The host dropped its link to the adversary, for exactly ``reason``
        (the adversary may well dial again at once: it is still a member)."""
        key = self.adversary.identity.key
        await self.until(lambda: any(d.peer == key and d.reason == reason for d in self.downs))

    async def meeting_goes_on(self) -> None:
        """The honest members still work together."""
        entry = self.honest.perform(lambda s: s.contribute(0, "still working"))
        await self.until(
            lambda: self.host.state is not None and entry.hash in self.host.state.contribution_index
        )


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    downs: list[PeerDown] = []

    def record(event: object) -> None:
        if isinstance(event, PeerDown):
            downs.append(event)

    host = Node(interfaces=["127.0.0.1"], on_event=record)
    honest = Node(interfaces=["127.0.0.1"])
    adversary = Node(interfaces=["127.0.0.1"])
    nodes = [host, honest, adversary]
    for node in nodes:
        await node.start()
    try:
        code = host.start_meeting(title="t", name="Host", agenda=SAMPLE_AGENDA)
        await honest.join(code, "Honest")
        await adversary.join(code, "Mallory")
        host.perform(lambda s: s.open_step(0))
        r = Room(host, honest, adversary, downs)
        await r.until(
            lambda: all(
                n.state is not None and n.state.current == 0 and len(n.links) == 2 for n in nodes
            )
        )
        # The acks the step.open calls for (SPEC §6.10) are written and have
        # reached everyone: no log grows behind a test's back.
        await r.until(
            lambda: (
                all(n.session is not None and not n.session.ack_due() for n in nodes)
                and len({repr(n.session.log.summary()) for n in nodes if n.session}) == 1
            ),
            timeout=15,
        )
        yield r
    finally:
        for node in nodes:
            await node.close()


def rejected_codes(node: Node) -> list[str]:
    return [event.code for event in node.rejections]


async def test_forged_entry_is_rejected_and_the_forger_cut_off(room: Room) -> None:
    session = room.adversary.session
    assert session is not None
    entry = session.contribute(0, "a real one")
    session.take_sends()
    forged = bytearray(entry.envelope)
    forged[-1] ^= 0x01  # one bit of the signature
    digest = room.host.session.digest() if room.host.session else b""
    room.link(room.adversary, room.host).send(
        pack({"t": "entries", "mid": session.mid, "e": [bytes(forged)]})
    )
    await room.until(lambda: "bad_signature" in rejected_codes(room.host))
    await room.cut_off("bad_signature")
    assert room.host.session is not None and room.host.session.digest() == digest
    await room.meeting_goes_on()


async def test_flooding_member_is_cut_off(room: Room) -> None:
    session = room.adversary.session
    assert session is not None
    # Cheap frames for the host to handle, so they arrive faster than any
    # honest laptop sends (on a slow host, TCP itself would throttle them).
    empty_want = pack({"t": "want", "mid": session.mid, "r": []})
    # A lower limit on the host's side of this link, so the flood is caught
    # however busy this machine is (the mechanism is the one every link uses).
    room.link(room.host, room.adversary).flood_guard = FloodGuard(rate=50, burst=100)
    link = room.link(room.adversary, room.host)
    for _ in range(FLOOD_BURST * 5):
        link.send(empty_want)
    await room.cut_off("flooding")
    await room.meeting_goes_on()


async def test_replayed_frames_change_nothing(room: Room) -> None:
    session = room.adversary.session
    assert session is not None and room.host.session is not None
    entry = room.adversary.perform(lambda s: s.contribute(0, "said once"))
    await room.until(
        lambda: room.host.state is not None and len(room.host.state.contributions) == 1
    )
    digest = room.host.session.digest()
    payload = pack({"t": "entries", "mid": session.mid, "e": [entry.envelope]})
    for _ in range(50):
        room.link(room.adversary, room.host).send(payload)
    await asyncio.sleep(0.3)
    assert room.host.session.digest() == digest
    assert room.adversary.identity.key in room.host.links  # replays are harmless, not hostile
    await room.meeting_goes_on()


async def test_equivocation_freezes_the_member_everywhere(room: Room) -> None:
    session = room.adversary.session
    assert session is not None
    head = session.log.head(session.me)
    deps = session.log.dependencies(session.me)
    common = {
        "mid": session.mid,
        "seq": (head.seq + 1) if head else 1,
        "prev": head.hash if head else None,
        "deps": deps,
        "lam": session.log.next_clock(session.me, deps),
        "ts": 1,
        "kind": "contrib.add",
    }
    one = encode_entry(session.identity, data={"step": 0, "text": "to the host"}, **common)
    two = encode_entry(session.identity, data={"step": 0, "text": "to the other"}, **common)
    room.link(room.adversary, room.host).send(
        pack({"t": "entries", "mid": session.mid, "e": [one.envelope]})
    )
    room.link(room.adversary, room.honest).send(
        pack({"t": "entries", "mid": session.mid, "e": [two.envelope]})
    )
    key = room.adversary.identity.key
    await room.until(
        lambda: all(n.state is not None and key in n.state.frozen for n in (room.host, room.honest))
    )
    await room.until(lambda: room.host.session.digest() == room.honest.session.digest())  # type: ignore[union-attr]
    texts = [c.text for c in room.host.state.contributions]  # type: ignore[union-attr]
    assert "to the host" not in texts and "to the other" not in texts
    await room.meeting_goes_on()


async def test_oversized_frame_cuts_the_link(room: Room) -> None:
    link = room.link(room.adversary, room.host)
    # Below the link layer: a raw header announcing 64 MiB on the encrypted stream.
    link.transport.write((64 << 20).to_bytes(4, "big") + os.urandom(1024))
    await room.cut_off("frame_too_large")  # refused from the header alone
    await room.meeting_goes_on()


async def test_a_member_who_stops_reading_is_cut_off_not_buffered(room: Room) -> None:
    """The adversary stops reading its socket; the host's queue to it is
    bounded, so the host drops the link instead of buffering without end."""
    link_on_host = room.link(room.host, room.adversary)
    link_on_host.max_queue_bytes = SMALL_QUEUE  # a small bound, so the test is quick
    adversary_link = room.link(room.adversary, room.host)
    # Small kernel buffers on both ends, so what the host writes backs up into
    # its own queue rather than into megabytes of loopback socket buffers.
    host_socket = link_on_host.transport.get_extra_info("socket")
    host_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    adversary_link.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
    )
    adversary_link.transport.pause_reading()
    big = "x" * 3000
    for _ in range(400):
        room.host.perform(lambda s: s.contribute(0, big))
        if link_on_host.closed:
            break
        await asyncio.sleep(0)
    await room.cut_off(f"peer too slow: over {SMALL_QUEUE} bytes queued")
    await room.meeting_goes_on()


async def test_stolen_identity_is_caught_as_a_fork(room: Room) -> None:
    """Someone copies the adversary's secret keys to a second laptop. Both
    laptops write; whichever of them a member links to, two different entries
    at one place meet somewhere, and the feed freezes everywhere."""
    victim = room.adversary.session
    assert victim is not None
    key = room.adversary.identity.key
    snapshot = payload_of(victim)  # what a save holds, copied off the laptop
    room.adversary.perform(lambda s: s.contribute(0, "from the real laptop"))
    await room.until(
        lambda: room.host.state is not None and len(room.host.state.contributions) == 1
    )
    # The real laptop goes off the network (its lid shut) ...
    await room.adversary.close()
    await room.until(lambda: key not in room.host.links)
    # ... and the copy, resumed from the snapshot taken before that last
    # entry, links to the host in its place and writes something else at that seq.
    thief = Node(interfaces=["127.0.0.1"], identity=room.adversary.identity, use_mdns=False)
    await thief.start()
    try:
        thief.resume(restore_session(snapshot, thief.clock))
        thief.perform(lambda s: s.contribute(0, "from the copy"))
        thief.add_endpoint("127.0.0.1", room.host.port)
        await room.until(
            lambda: all(
                n.state is not None and key in n.state.frozen for n in (room.host, room.honest)
            ),
            timeout=15,
        )
        texts = [c.text for c in room.host.state.contributions]  # type: ignore[union-attr]
        assert "from the real laptop" not in texts and "from the copy" not in texts
        await room.meeting_goes_on()
    finally:
        await thief.close()


def test_flood_guard_refills_at_its_rate() -> None:
    guard = FloodGuard(rate=10, burst=5)
    assert all(guard.allow(0.0) for _ in range(5))
    assert not guard.allow(0.0)  # the burst is spent
    assert guard.allow(0.1)  # one token back after 1/10 s
    assert not guard.allow(0.1)
    assert sum(guard.allow(10.0) for _ in range(10)) == 5  # never more than the burst


async def test_a_member_who_withholds_is_routed_around(room: Room) -> None:
    """The adversary sends its new entry to one member only and relays nothing;
    the other still gets it, through anti-entropy with the honest member."""
    session = room.adversary.session
    assert session is not None
    # From now on nothing it would send the host leaves its laptop (only
    # keepalives, so the link stays up): not its entries, not its sync.
    room.link(room.adversary, room.host).send = lambda payload: True  # type: ignore[method-assign]
    entry = session.contribute(0, "told to one member only")
    session.take_sends()  # withheld from everyone ...
    room.link(room.adversary, room.honest).send(
        pack({"t": "entries", "mid": session.mid, "e": [entry.envelope]})
    )  # ... but the honest member
    await room.until(
        lambda: room.host.state is not None and entry.hash in room.host.state.contribution_index,
        timeout=10,
    )
    await room.meeting_goes_on()


async def test_a_member_trickling_a_frame_holds_only_its_own_link(room: Room) -> None:
    """Slow frames: a header announcing 512 KiB, then a byte now and then. The
    host buffers at most that one frame for that one link and goes on serving
    everyone else meanwhile."""
    link = room.link(room.adversary, room.host)
    link.transport.write((512 * 1024).to_bytes(4, "big"))
    for _ in range(5):
        link.transport.write(b"\x00")
        await room.meeting_goes_on()  # the others are served while it trickles
        await asyncio.sleep(0.2)
    on_host = room.link(room.host, room.adversary)
    assert on_host.buffered_bytes <= 4 + 512 * 1024


async def test_honest_nodes_acknowledge_so_what_the_room_saw_settles(room: Room) -> None:
    """The defence against claimed ignorance (SPEC §5.1) needs history to
    settle: real nodes write an ``ack`` shortly after accepting the host's
    step.open (SPEC §6.10), so it settles on every node within seconds, and
    an entry that claims not to have seen it would fold after it
    (tests/unit/test_finality.py plays those attacks)."""
    assert room.host.session is not None
    opened = next(e for e in room.host.session.log.entries() if e.type == "step.open")
    nodes = (room.host, room.honest, room.adversary)

    def settled(node: Node) -> bool:
        return node.session is not None and opened in node.session.settlement.settled

    await room.until(lambda: all(settled(node) for node in nodes), timeout=15)
    acks = {e.author for e in room.host.session.log.entries() if e.type == "ack"}
    # At least one of the other nodes wrote an ack (two of three settle it:
    # the host's own entry and one acknowledgement).
    assert acks & {room.honest.identity.key, room.adversary.identity.key}
    # Every ack owed is written within about half a second.
    await room.until(
        lambda: all(node.session is not None and not node.session.ack_due() for node in nodes)
    )
    await room.meeting_goes_on()
