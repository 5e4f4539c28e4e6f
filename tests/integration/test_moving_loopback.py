"""A laptop whose addresses change follows them (SPEC §12.2), on loopback:
two real nodes, no mDNS; one "moves" from 127.0.0.1 to 127.0.0.3 (the
address lookup is the only thing this test chooses). It must listen on the
new address and nowhere else, drop the links of the old one, and be linked
and in sync again by its own dialling. The same over a real address change
in network namespaces: ``tests/netns/test_resilience.py``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from relsec_p2p.core.codec import pack
from relsec_p2p.core.session import Session
from relsec_p2p.net.node import ADDRESS_CHECK_S, Node, following
from relsec_p2p.peerproc import SAMPLE_AGENDA


async def until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition never held")
        await asyncio.sleep(0.05)


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_a_laptop_that_moves_listens_and_links_from_its_new_address() -> None:
    where = ["127.0.0.1"]
    ana = Node(interfaces=["127.0.0.1"], use_mdns=False)
    bo = Node(interfaces=list(where), use_mdns=False, follow=lambda: list(where))
    await ana.start()
    await bo.start()
    try:
        ana.start_meeting(title="t", name="Ana", agenda=SAMPLE_AGENDA)
        ana.perform(lambda s: s.add_member(bo.identity.key, bo.identity.ring_key, "Bo"))
        ana.perform(lambda s: s.open_step(0))
        assert ana.session is not None
        session = ana.session
        bo.session = Session.join(bo.identity, session.mid, session.creator, bo.clock)
        envelopes = [e.envelope for e in sorted(session.log.entries(), key=lambda e: e.order_key)]
        bo.session.receive(
            ana.identity.key, pack({"t": "entries", "mid": session.mid, "e": envelopes})
        )
        bo.session.take_sends()
        bo.add_endpoint("127.0.0.1", ana.port)
        await until(lambda: bo.identity.key in ana.links and ana.identity.key in bo.links)
        old_link = bo.links[ana.identity.key]
        old_port = bo.port

        where[:] = ["127.0.0.3"]  # the laptop moved
        await until(lambda: bo.interfaces == ["127.0.0.3"], timeout=3 * ADDRESS_CHECK_S)
        await until(lambda: old_link.closed)
        assert old_link.close_reason == "this laptop's address changed"
        assert bo.listening == [("127.0.0.3", bo.port)]
        assert bo.port == old_port  # the same port, free at the new address
        assert await asyncio.to_thread(refused, "127.0.0.1", old_port)

        # Linked again by its own dialling, and what it writes arrives.
        await until(lambda: ana.identity.key in bo.links and bo.identity.key in ana.links)
        entry = bo.perform(lambda s: s.contribute(0, "from the new address"))
        await until(lambda: ana.session is not None and entry in ana.session.log.feed(entry.author))
        await until(lambda: ana.session is not None and ana.session.digest() == bo.session.digest())
    finally:
        await bo.close()
        await ana.close()


@pytest.mark.parametrize(
    ("requested", "follows"),
    [(None, True), ("eth0", True), ("10.0.0.7", False), ("127.0.0.1", False)],
)
def test_only_a_named_address_stays_put(requested: str | None, follows: bool) -> None:
    assert (following(requested) is not None) is follows
