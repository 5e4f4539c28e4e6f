"""The short fuzz pass CI runs on every change: each target over its seed
corpus, over single-byte mutations of every seed, and over random bytes from
hypothesis. The long campaign is ``python tests/fuzz/run.py --all``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from targets import TARGETS

NAMES = sorted(TARGETS)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_their_single_byte_mutations(name: str) -> None:
    function, seeds = TARGETS[name]
    corpus = seeds()
    assert corpus, "a target without seeds would test nothing"
    for seed in corpus:
        function(seed)
        step = max(1, len(seed) // 64)
        for index in range(0, len(seed), step):
            for flip in (0x01, 0x80, 0xFF):
                mutated = bytearray(seed)
                mutated[index] ^= flip
                function(bytes(mutated))
            function(seed[:index])  # every truncation point (sampled)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2048))
def test_random_bytes(name: str, data: bytes) -> None:
    TARGETS[name][0](data)
