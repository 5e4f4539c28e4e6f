"""Ring-signature figures for ``relsec bench anon``: bLSAG sign and verify times.

Rings of 5, 20 and 50 members (the room sizes relsec is built for), medians of
several runs. The baseline, taken in the same runs, is one libsodium
``crypto_scalarmult_ed25519_noclamp``: verifying costs about three of those and
one base-point multiplication per member, so ``verify_scalarmults_per_member``
says how much the Python around libsodium adds, whatever the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from nacl import bindings

from ..core import ring
from ..core.identity import random_scalar, ring_point
from .common import median

SIZES = (5, 20, 50)


def scalarmult_us(repeat: int = 200) -> float:
    """Microseconds for one variable-base noclamp multiplication (mean of ``repeat``)."""
    point = ring_point(random_scalar())
    scalar = random_scalar()
    start = time.perf_counter()
    for _ in range(repeat):
        bindings.crypto_scalarmult_ed25519_noclamp(scalar, point)
    return (time.perf_counter() - start) / repeat * 1e6


def run(sizes: Sequence[int] = SIZES, runs: int = 7) -> dict[str, Any]:
    people = [random_scalar() for _ in range(max(sizes))]  # ring secrets
    rings = {n: sorted(ring_point(x) for x in people[:n]) for n in sizes}
    event = b"\xa1" * 32
    sign_ms: dict[int, list[float]] = {n: [] for n in sizes}
    verify_ms: dict[int, list[float]] = {n: [] for n in sizes}
    baseline: list[float] = []
    for attempt in range(runs):
        baseline.append(scalarmult_us())  # interleaved, so load hits both alike
        for n in sizes:
            # Small rings take a few ms: time several signatures per run and
            # keep the mean, so one scheduler hiccup does not become the figure.
            reps = max(1, 50 // n)
            signers = [people[(attempt * 7 + k) % n] for k in range(reps)]
            messages = [f"round {attempt}.{k}: agree".encode() for k in range(reps)]
            start = time.perf_counter()
            signatures = [
                ring.sign(m, rings[n], s, event) for m, s in zip(messages, signers, strict=True)
            ]
            sign_ms[n].append((time.perf_counter() - start) * 1000 / reps)
            start = time.perf_counter()
            for m, signature in zip(messages, signatures, strict=True):
                ring.verify(m, rings[n], signature, event)
            verify_ms[n].append((time.perf_counter() - start) * 1000 / reps)
    base_us = median(baseline)
    return {
        "ring_sizes": list(sizes),
        "runs": runs,
        "ring_sign_ms": {str(n): round(median(sign_ms[n]), 2) for n in sizes},
        "ring_verify_ms": {str(n): round(median(verify_ms[n]), 2) for n in sizes},
        "signature_bytes": {str(n): ring.signature_size(n) for n in sizes},
        "scalarmult_noclamp_us": round(base_us, 1),
        "verify_scalarmults_per_member": {
            str(n): round(median(verify_ms[n]) * 1000 / n / base_us, 2) for n in sizes
        },
    }
