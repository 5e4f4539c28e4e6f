"""Fixtures shared by the network-namespace tests: a LAN of ``HOSTS`` hosts
(each test module sets ``HOSTS``), torn down whatever happens. The peer
processes a test starts on it go in ``peers`` (``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lan import Lan, netns_available


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
