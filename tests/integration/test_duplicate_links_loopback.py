"""Duplicate links between two real nodes on loopback (SPEC §11.9).

Two members' laptops can hold several links to each other at once: both
dialled at the same moment, or one dialled twice (seen live: a joiner found
its sponsor at two addresses and, under the old rule, both ends dropped
different links and the pair had no link for ten seconds). Here real links
(TCP, handshake, secretstream) are handed to each node in chosen orders,
which may differ between the two ends; both must keep the same link, and it
must carry the meeting.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from relsec_p2p.core.codec import pack
from relsec_p2p.core.link import HANDSHAKE_LIMITS
from relsec_p2p.core.session import Session
from relsec_p2p.net.link import FrameReader, Link
from relsec_p2p.net.node import Node
from relsec_p2p.peerproc import SAMPLE_AGENDA


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition never held")
        await asyncio.sleep(0.02)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    """Two members of one meeting, without mDNS and with nothing to dial: the
    tests decide which links exist."""
    ana = Node(interfaces=["127.0.0.1"], use_mdns=False)
    bo = Node(interfaces=["127.0.0.1"], use_mdns=False)
    await ana.start()
    await bo.start()
    try:
        ana.start_meeting(title="t", name="Ana", agenda=SAMPLE_AGENDA)
        ana.perform(lambda s: s.add_member(bo.identity.key, bo.identity.ring_key, "Bo"))
        assert ana.session is not None
        session = ana.session
        bo.session = Session.join(bo.identity, session.mid, session.creator, bo.clock)
        envelopes = [e.envelope for e in sorted(session.log.entries(), key=lambda e: e.order_key)]
        message = pack({"t": "entries", "mid": session.mid, "e": envelopes})
        bo.session.receive(ana.identity.key, message)
        bo.session.take_sends()
        assert bo.is_member
        yield ana, bo
    finally:
        await bo.close()
        await ana.close()


def epoch(node: Node) -> int:
    assert node.state is not None
    return node.state.epoch


async def real_link(dialler: Node, answerer: Node) -> tuple[Link, Link]:
    """One link over loopback, handshake done at both ends, added to neither
    node: (the dialler's end, the answerer's end)."""
    assert dialler.session is not None
    mid = dialler.session.mid
    answered: asyncio.Future[Link] = asyncio.get_running_loop().create_future()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader, HANDSHAKE_LIMITS.max_bytes)
        first = await frames.read()
        link = await Link.accept(
            frames, writer, first, answerer.identity, mid, epoch(answerer), answerer.may_link
        )
        answered.set_result(link)

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        dialled = await Link.connect(
            "127.0.0.1", port, dialler.identity, mid, epoch(dialler), dialler.may_link
        )
        return dialled, await asyncio.wait_for(answered, 5)
    finally:
        server.close()


def held(node: Node, other: Node) -> Link | None:
    link = node.links.get(other.identity.key)
    return None if link is None or link.closed else link


@pytest.mark.parametrize("orders", ["same order", "opposite orders"])
@pytest.mark.parametrize("diallers", ["ana+bo", "ana+ana", "bo+bo", "ana+ana+bo"])
async def test_both_ends_keep_the_same_link(
    pair: tuple[Node, Node], diallers: str, orders: str
) -> None:
    ana, bo = pair
    nodes = {"ana": ana, "bo": bo}
    links: list[tuple[Link, Link]] = []  # (ana's end, bo's end) of each link
    for name in diallers.split("+"):
        dialler = nodes[name]
        answerer = bo if dialler is ana else ana
        dialled, answered = await real_link(dialler, answerer)
        links.append((dialled, answered) if dialler is ana else (answered, dialled))
    assert all(ana_end.link_id == bo_end.link_id for ana_end, bo_end in links)
    # SPEC §11.9: first the links dialled by the lower key, then by link id.
    lower = min(ana.identity.key, bo.identity.key)
    kept = min(
        ((ana.identity.key if ana_end.initiator else bo.identity.key) != lower, ana_end.link_id)
        for ana_end, _ in links
    )[1]
    at_ana = [ends[0] for ends in links]
    at_bo = [ends[1] for ends in links]
    if orders == "opposite orders":
        at_bo.reverse()
    # The ends learn of the links in turn, as if their handshakes finished so.
    for ana_end, bo_end in itertools.zip_longest(at_ana, at_bo):
        ana.add_link(ana_end)
        await asyncio.sleep(0.01)
        bo.add_link(bo_end)
        await asyncio.sleep(0.01)

    await until(lambda: all(end.closed for ends in links for end in ends if end.link_id != kept))
    kept_at_ana, kept_at_bo = held(ana, bo), held(bo, ana)
    assert kept_at_ana is not None and kept_at_bo is not None
    assert kept_at_ana.link_id == kept_at_bo.link_id == kept
    # Exactly one link is left, and the meeting flows over it both ways.
    assert sum(not end.closed for ends in links for end in ends) == 2
    for writer, reader in ((ana, bo), (bo, ana)):
        entry = writer.perform(lambda s: s.raise_hand())
        await until(lambda r=reader, e=entry: e.hash in {x.hash for x in r.session.log.entries()})  # type: ignore[union-attr]
    await asyncio.sleep(0.3)
    assert held(ana, bo) is kept_at_ana and held(bo, ana) is kept_at_bo


async def test_a_laptop_that_dials_its_peer_at_two_addresses_keeps_one_link(
    pair: tuple[Node, Node],
) -> None:
    """The live case, through the nodes' own dialling: bo knows ana at two
    addresses (the same laptop) and ana knows bo, so up to three links race."""
    ana, bo = pair
    bo.add_endpoint("127.0.0.1", ana.port)
    bo.add_endpoint("127.1", ana.port)  # the same listener, under another name
    ana.add_endpoint("127.0.0.1", bo.port)  # both dial on their next tick

    def linked() -> bool:
        a, b = held(ana, bo), held(bo, ana)
        return a is not None and b is not None and a.link_id == b.link_id

    await until(linked)
    kept = held(ana, bo)
    entry = ana.perform(lambda s: s.raise_hand())
    await until(lambda: entry.hash in {x.hash for x in bo.session.log.entries()})  # type: ignore[union-attr]
    # It stays: no end closes the link the other end kept.
    await asyncio.sleep(1.5)
    assert linked() and held(ana, bo) is kept
