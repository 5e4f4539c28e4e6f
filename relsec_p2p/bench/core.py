"""``relsec bench core``: how fast a laptop takes in a meeting's log.

10 000 entries from 20 authors are delivered to a fresh Session in shuffled
order, in sync batches, exactly as the network layer would hand them over;
entries whose author is not yet known are held until their roster.add
arrives (SPEC §3.4); any the hold had to evict are re-delivered in a second
anti-entropy pass, as sync does for real. The baseline is raw PyNaCl
Ed25519 verification of the same entries in the same run.
"""

from __future__ import annotations

import gc
import random
import time
from typing import Any

from nacl.signing import VerifyKey

from ..core.codec import pack
from ..core.errors import HoldFull
from ..core.events import InputRejected
from ..core.feed import ENTRY_CONTEXT, Entry, encode_entry
from ..core.identity import Identity
from ..core.session import Session
from .common import median, rss_mb

AGENDA = [
    {
        "id": "threats",
        "title": "Threats",
        "prompt": "What threatens us?",
        "mode": "both",
        "kind": "text",
    }
]


def build_log(total: int, authors: int, seed: int = 7) -> tuple[bytes, bytes, list[Entry]]:
    """A valid meeting log of ``total`` entries: the creator sets up the roster
    and opens the step, then every member contributes in turn."""
    identities = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(authors)]
    creator = identities[0]
    clock_ms = iter(range(1_700_000_000_000, 1_800_000_000_000, 1000))
    session = Session.create(
        creator,
        title="bench",
        name="m0",
        agenda=AGENDA,
        clock=lambda: next(clock_ms),
        mid=bytes(range(16)),
    )
    for i, member in enumerate(identities[1:], start=1):
        session.add_member(member.key, member.ring_key, f"m{i}")
    session.open_step(0)
    entries = [e for e in session.log.entries()]
    heads: dict[bytes, Entry] = {}
    rng = random.Random(seed)
    while len(entries) < total:
        author = identities[1 + len(entries) % (authors - 1)]
        head = heads.get(author.key)
        # Each entry names the one written just before it (SPEC §3.7), so
        # the log is one causal chain and each clock is one more.
        last = entries[-1]
        entry = encode_entry(
            author,
            mid=session.mid,
            seq=head.seq + 1 if head else 1,
            prev=head.hash if head else None,
            lam=last.lam + 1,
            ts=next(clock_ms),
            kind="contrib.add",
            data={"step": 0, "text": f"contribution {rng.random():.12f}"},
            deps=[(last.author, last.seq)] if last.author != author.key else [],
        )
        heads[author.key] = entry
        entries.append(entry)
    return session.mid, creator.key, entries


def ingest_shuffled(
    mid: bytes, creator: bytes, entries: list[Entry], seed: int, batch: int = 256
) -> tuple[float, Session]:
    order = list(entries)
    random.Random(seed).shuffle(order)
    receiver = Session.join(Identity.from_seed(b"\xee" * 32), mid, creator, clock=lambda: 0)
    peer = b"\x01" * 32
    payloads = [
        pack({"t": "entries", "mid": mid, "e": [e.envelope for e in order[i : i + batch]]})
        for i in range(0, len(order), batch)
    ]
    start = time.perf_counter()
    while payloads:
        unknown = 0
        for payload in payloads:
            for event in receiver.receive(peer, payload):
                if isinstance(event, InputRejected) and isinstance(event.error, HoldFull):
                    unknown += 1
        if not unknown:
            break
        # What a second anti-entropy round would send: everything we lack.
        have = {au: seq for au, seq, _ in receiver.log.summary()}
        missing = [e for e in order if e.seq > have.get(e.author, 0)]
        payloads = [
            pack({"t": "entries", "mid": mid, "e": [e.envelope for e in missing[i : i + batch]]})
            for i in range(0, len(missing), batch)
        ]
    receiver.state  # noqa: B018 -- the fold is part of what we time
    elapsed = time.perf_counter() - start
    if len(receiver.log) != len(entries):
        raise RuntimeError(f"lost entries: {len(receiver.log)} of {len(entries)}")
    return elapsed, receiver


def raw_verify(entries: list[Entry]) -> float:
    keys = {e.author: VerifyKey(e.author) for e in entries}
    start = time.perf_counter()
    for e in entries:
        keys[e.author].verify(ENTRY_CONTEXT + e.body, e.signature)
    return time.perf_counter() - start


def run(total: int = 10_000, authors: int = 20, runs: int = 3) -> dict[str, Any]:
    mid, creator, entries = build_log(total, authors)
    ingest_s, verify_s, digest_ms, rss = [], [], [], []
    for attempt in range(runs):
        gc.collect()
        verify_s.append(raw_verify(entries))
        elapsed, receiver = ingest_shuffled(mid, creator, entries, seed=attempt)
        ingest_s.append(elapsed)
        start = time.perf_counter()
        receiver.digest()
        digest_ms.append((time.perf_counter() - start) * 1000)
        rss.append(rss_mb() or 0.0)
        if receiver.state.applied != total:
            raise RuntimeError("not every entry applied")
        del receiver
    events_per_s = total / median(ingest_s)
    verify_per_s = total / median(verify_s)
    return {
        "entries": total,
        "authors": authors,
        "runs": runs,
        "events_per_s": round(events_per_s),
        "ed25519_verify_per_s": round(verify_per_s),
        "ratio": round(events_per_s / verify_per_s, 3),
        "digest_ms_10k": round(median(digest_ms), 2),
        "rss_mb_10k": round(max(rss), 1),
    }
