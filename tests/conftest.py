"""Shared pytest setup. Having this file in ``tests/`` puts ``tests/`` on
``sys.path``, so test modules can ``import fakenet`` (the in-memory network).

Fixtures here are the ones more than one test folder uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relsec_p2p.peerproc import PeerProcess


@pytest.fixture
def peers() -> Iterator[list[PeerProcess]]:
    """A list the test puts the ``relsec peer`` processes it starts in; every
    one is closed afterwards, whatever happened."""
    started: list[PeerProcess] = []
    yield started
    for peer in started:
        peer.close()
