"""Fixtures for the Textual app tests; the fake room they run in is
``fakeroom.py``."""

from __future__ import annotations

import pytest
from fakeroom import Room


@pytest.fixture
def room() -> Room:
    return Room()
