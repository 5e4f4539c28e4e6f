"""Fixtures shared by the network-namespace tests: a LAN of ``HOSTS`` hosts
(each test module sets ``HOSTS``) and the peer processes a test starts on it,
both torn down whatever happens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lan import Lan, netns_available

from relsec_p2p.peerproc import PeerProcess


@pytest.fixture
def lan(request: pytest.FixtureRequest) -> Iterator[Lan]:
    reason = netns_available()
    if reason is not None:
        pytest.fail(f"cannot build the test LAN: {reason}")
    network = Lan(request.module.HOSTS)
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def peers() -> Iterator[list[PeerProcess]]:
    started: list[PeerProcess] = []
    yield started
    for peer in started:
        peer.close()
