"""``relsec bench anon``: anonymous shuffle rounds, measured.

- ``round_s``: for N = 5, 10, 30 real ``relsec peer`` processes on loopback
  (one machine: every process shares its cores), one member queues an
  anonymous contribution; the time from the round's start (the leader's
  ``anon_round started`` event) until the last peer has folded the round's
  ``anon.round`` entry. CLOCK_MONOTONIC is shared by all processes on one
  machine, so each peer stamps its own moment. Median of several rounds.
- ``batch_latency_s``: at 10 members, from the moment the author's item is
  queued (Enter) until the last peer has folded the round that carries it:
  median and p95. Items wait for the next beat (core/anon.py ``BEAT_MS``),
  so this is about half a beat on average and at most a beat plus a round;
  each sample waits a random time first, so Enter falls anywhere in a beat.
- ``round_cpu_ms``: the same round's cryptography and encoding, all N
  members in this one process (what a round costs the whole room's CPUs).
- ``ring_*``: linkable ring signatures, from ``bench.ring``.
- ``sealedbox_open_us``: the baseline, one libsodium ``crypto_box_seal_open``
  of a 1 KiB slot in this process, taken in the same run.
"""

from __future__ import annotations

import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nacl import bindings

from ..core.anon import BEAT_MS
from ..core.identity import Identity
from ..core.shuffle import RoundStart, pad
from ..core.shuffle_round import Round
from ..peerproc import PeerProcess
from . import ring
from .common import median, percentile
from .net import _close_all, _wait_mesh

SIZES = (5, 10, 30)
# Peer processes started at once, and how long each may take to say it is
# ready: thirty at once on a small machine shared with other work missed the
# peer's usual 20 s (failed runs of this benchmark, issue 12.8).
START_AT_ONCE = 2
READY_TIMEOUT_S = 120
RELEASE_WAIT_S = 180
LATENCY_AT = 10  # members
LATENCY_SAMPLES = 12
AGENDA: list[dict[str, Any]] = [
    {
        "id": "unsaid",
        "title": "Unsaid",
        "prompt": "What is hard to say?",
        "mode": "anonymous",
        "kind": "text",
    }
]


def sealedbox_open_us(repeat: int = 500) -> float:
    public, secret = bindings.crypto_box_keypair()
    sealed = bindings.crypto_box_seal(bytes(1024), public)
    start = time.perf_counter()
    for _ in range(repeat):
        bindings.crypto_box_seal_open(sealed, public, secret)
    return (time.perf_counter() - start) / repeat * 1e6


def round_cpu_ms(n: int, repeat: int = 3) -> float:
    """One whole round for n members in this process (milliseconds, median)."""
    people = sorted((Identity.generate() for _ in range(n)), key=lambda i: i.key)
    samples = []
    for _ in range(repeat):
        start = RoundStart.new(bytes(16), 1, [p.key for p in people])
        began = time.perf_counter()
        rounds = {p.key: Round(p, start, pad(b"x", 1024 + 64 + 32 * n), now_ms=0) for p in people}
        queue = [(key, peer, m) for key, r in rounds.items() for peer, m in r.begin()]
        while queue:
            src, dst, message = queue.pop(0)
            queue.extend((dst, peer, m) for peer, m in rounds[dst].receive(src, message, 0))
        samples.append((time.perf_counter() - began) * 1000)
        if not all(r.outcome is not None and "released" in str(r.outcome) for r in rounds.values()):
            raise RuntimeError("the in-process round did not release")
    return median(samples)


def _round_time(
    peers: list[PeerProcess], author: PeerProcess, text: str
) -> tuple[float, float, int]:
    """Queue one contribution; seconds from its round's start to the last peer
    holding the release, seconds from Enter to the same moment, and the
    round's slot count."""
    for peer in peers:
        peer.forget_history()
    # The author's own stamp of the moment the item was queued (Enter).
    entered = float(author.ok(cmd="anon", kind="contrib", step=0, text=text)["t"])
    released = author.wait_event(
        lambda e: (
            e.get("event") == "anon_round"
            and e.get("outcome") == "released"
            and e.get("items", 0) >= 1
        ),
        # An item read in a failed round waits for a round holding every
        # member whose key came (SPEC §13.5 "No narrowing"); on a loaded
        # machine rounds fail often. The wait is counted in batch_latency_s.
        timeout=RELEASE_WAIT_S,
    )
    rid = released["rid"]
    starts = []
    folded = []
    appender = None

    def is_round_entry(e: dict[str, Any]) -> bool:
        # This round's entry only: a late entry of an earlier round (or of a
        # round that released a resent item meanwhile) named the wrong
        # appender, whose "released" for this round then never came (issue 12.8).
        return e.get("event") == "entry" and e.get("type") == "anon.round" and e.get("rid") == rid

    # The laptop that appended the round's entry sees no entry event for it:
    # learn who it was from any other laptop first.
    deadline = time.monotonic() + 30
    while appender is None:
        for peer in peers:
            try:
                appender = peer.wait_event(is_round_entry, timeout=0.05)["author"]
                break
            except TimeoutError:
                continue
        if time.monotonic() > deadline:
            raise TimeoutError("no laptop folded the round's entry")
    for peer in peers:
        try:  # a peer the leader could not reach at the start sat the round out
            started = peer.wait_event(
                lambda e: (
                    e.get("event") == "anon_round"
                    and e.get("rid") == rid
                    and e.get("outcome") == "started"
                ),
                timeout=5,
            )
            starts.append(started["t"])
        except TimeoutError:
            pass
        if peer.key == appender:
            continue
        entry = peer.wait_event(is_round_entry, timeout=30)
        folded.append(entry["t"])
    # The laptop that appended folded the entry the moment it released the
    # round (it appends at once): its "released" event is that moment.
    for peer in peers:
        if peer.key == appender:
            own = peer.wait_event(
                lambda e: (
                    e.get("event") == "anon_round"
                    and e.get("rid") == rid
                    and e.get("outcome") == "released"
                ),
                timeout=30,
            )
            folded.append(own["t"])
    shown = max(folded)
    return float(shown - min(starts)), float(shown - entered), int(released["slots"])


def _start_peers(n: int) -> list[PeerProcess]:
    """n peer processes, a few at a time; if one fails to come up, the ones
    that did are closed before the error goes on (none is left running)."""
    with ThreadPoolExecutor(max_workers=START_AT_ONCE) as pool:
        futures = [
            pool.submit(lambda: PeerProcess(ready_timeout=READY_TIMEOUT_S)) for _ in range(n)
        ]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        _close_all(started)
        raise RuntimeError(f"{len(failed)} of {n} peers did not start") from failed[0]
    return started


JOIN_TRIES = 3


def _meeting(peers: list[PeerProcess]) -> None:
    """As ``bench.net``'s meeting, with an anonymous step on the agenda.

    On a loaded machine a join can fail the way it fails for a person on a
    bad network (issue 12.8: failed runs at thirty members): the run times
    out ("Could not reach the meeting"), and the joiner tries again, as its
    message says; or the code was accepted but the meeting did not arrive
    within the join's own wait (15 s), and the joiner keeps its session and
    becomes a member as the meeting syncs (``_wait_mesh`` waits for that)."""
    code = peers[0].ok(cmd="start", title="bench", name="p0", agenda=AGENDA)["code"]
    for i, peer in enumerate(peers[1:], start=1):
        for attempt in range(1, JOIN_TRIES + 1):
            answer = peer.cmd(cmd="join", code=code, name=f"p{i}", timeout=180)
            if answer["event"] != "error" or "did not arrive in time" in answer["message"]:
                break
            if "Could not reach" not in answer["message"] or attempt == JOIN_TRIES:
                raise RuntimeError(f"join failed: {answer}")


def round_seconds(n: int, rounds: int = 5) -> tuple[float, list[float]]:
    """The median round time at n members, and each full round's Enter to
    appearance (seconds)."""
    peers = _start_peers(n)
    try:
        _meeting(peers)
        _wait_mesh(peers, timeout=300)
        peers[0].ok(cmd="open_step", step=0)
        for peer in peers:
            peer.wait_state(lambda s: s["current"] == 0, timeout=30)
        # Only rounds that held every peer count: a link that the mesh was
        # still replacing when a round started makes a smaller round.
        full: list[float] = []
        latencies: list[float] = []
        jitter = random.Random(n)
        for k in range(3 * rounds):
            # Enter falls anywhere in a beat, as a person's would.
            time.sleep(jitter.uniform(0, BEAT_MS / 1000))
            seconds, latency, slots = _round_time(peers, peers[(k * 7 + 1) % n], f"bench round {k}")
            if slots == n:
                full.append(seconds)
                latencies.append(latency)
            if len(full) == rounds:
                return median(full), latencies
        raise RuntimeError(f"only {len(full)} of {3 * rounds} rounds held all {n} peers")
    finally:
        _close_all(peers)


def run() -> dict[str, Any]:
    result: dict[str, Any] = {"sealedbox_open_us": round(sealedbox_open_us(), 2)}
    result["round_cpu_ms"] = {str(n): round(round_cpu_ms(n), 1) for n in SIZES}
    result["round_s"] = {}
    for n in SIZES:
        seconds, latencies = round_seconds(n, rounds=LATENCY_SAMPLES if n == LATENCY_AT else 5)
        result["round_s"][str(n)] = round(seconds, 3)
        print(f"bench anon: round_s at {n}: {seconds:.3f}", file=sys.stderr, flush=True)
        if n == LATENCY_AT:
            result["batch_latency_s"] = {
                "members": n,
                "median": round(median(latencies), 2),
                "p95": round(percentile(latencies, 95), 2),
                "beat_s": BEAT_MS / 1000,
            }
    figures = ring.run()
    result["ring_sign_ms"] = figures["ring_sign_ms"]
    result["ring_verify_ms"] = figures["ring_verify_ms"]
    result["sealedbox_open_us_after"] = round(sealedbox_open_us(), 2)  # load drift check
    return result
