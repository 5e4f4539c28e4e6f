"""``relsec bench net``: real ``relsec peer`` processes on loopback.

- ``discovery_join_s``: N=5 processes started at once; the time from their
  start until all are linked to each other and agree on the roster (the
  facilitator starts the meeting, four join by code over mDNS + SPAKE2).
- ``fanout_ms``: for N=5 and N=20, an author appends a contribution; the
  time until the last peer has folded it (CLOCK_MONOTONIC is shared by all
  processes on one machine, so peers stamp the moment themselves).
- ``sync_10k_s``: a late joiner catches up a log of 10 000 entries.
- ``verify_floor_s``: 10 000 Ed25519 verifications (PyNaCl) of entries in
  this process, the same run: the least any catch-up of 10 000 entries costs.
- ``sync_10k_cpu_s`` and ``verify_floor_cpu_s``: the same two as CPU seconds
  (the joiner process's, from /proc; None where there is no /proc). On a
  shared machine the wall times mostly measure the queue for the cores: the
  joiner waits for its sponsor, the other member and the bench itself, and
  for everything else running; CPU seconds measure the joiner's own work.
- ``tcp_rtt_ms``: the baseline, a raw loopback TCP echo in this process.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from nacl.signing import SigningKey

from ..core.feed import ENTRY_CONTEXT
from ..peerproc import SAMPLE_AGENDA, PeerProcess
from .common import median, percentile


def _close_all(peers: list[PeerProcess]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda p: p.close(), peers))


def _start(n: int) -> list[PeerProcess]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: PeerProcess(), range(n)))


def _meeting(peers: list[PeerProcess]) -> str:
    code: str = peers[0].ok(cmd="start", title="bench", name="p0", agenda=SAMPLE_AGENDA)["code"]
    with ThreadPoolExecutor(max_workers=max(1, len(peers) - 1)) as pool:
        list(
            pool.map(
                lambda ip: ip[1].ok(cmd="join", code=code, name=f"p{ip[0]}", timeout=30),
                enumerate(peers[1:], start=1),
            )
        )
    return code


def _wait_mesh(peers: list[PeerProcess], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    n = len(peers)
    while time.monotonic() < deadline:
        statuses = [p.cmd(cmd="status") for p in peers]
        if (
            all(s.get("members") == n and s.get("links") == n - 1 for s in statuses)
            and len({s.get("digest") for s in statuses}) == 1
        ):
            return
        time.sleep(0.02)
    raise TimeoutError("peers never formed a full mesh")


def discovery_join(n: int = 5) -> float:
    started = time.monotonic()
    peers = _start(n)
    try:
        _meeting(peers)
        _wait_mesh(peers)
        return time.monotonic() - started
    finally:
        _close_all(peers)


def _is_entry(wanted: tuple[str, int], event: dict[str, Any]) -> bool:
    return event.get("event") == "entry" and (event.get("author"), event.get("seq")) == wanted


def fanout(n: int, messages: int = 60) -> dict[str, float]:
    peers = _start(n)
    try:
        _meeting(peers)
        _wait_mesh(peers)
        peers[0].ok(cmd="open_step", step=0)
        for p in peers:
            p.wait_state(lambda s: s["current"] == 0, timeout=30)
        rng = random.Random(1)
        samples: list[float] = []
        for i in range(messages):
            author = peers[rng.randrange(n)]
            answer = author.ok(cmd="contribute", step=0, text=f"fanout {i}")
            wanted = (author.key, answer["seq"])
            latest = answer["t"]
            for peer in peers:
                if peer is author:
                    continue
                event = peer.wait_event(partial(_is_entry, wanted), timeout=30)
                latest = max(latest, event["t"])
            samples.append((latest - answer["t"]) * 1000)
            for peer in peers:
                peer.forget_history()
            time.sleep(0.01)
        return {"p50": round(percentile(samples, 50), 2), "p99": round(percentile(samples, 99), 2)}
    finally:
        _close_all(peers)


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of process ``pid`` so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sync_late_joiner(total: int = 10_000) -> tuple[float, float | None]:
    """Seconds for a late joiner to catch up ``total`` entries, wall and the
    joiner's CPU (None without /proc)."""
    peers = _start(2)
    try:
        code = _meeting(peers)
        peers[0].ok(cmd="open_step", step=0)
        peers[0].ok(cmd="contribute", step=0, text="bulk", repeat=total)
        target = peers[0].cmd(cmd="status")["log_entries"]
        peers[1].wait_state(lambda s: s["log_entries"] == target, timeout=60)
        late = PeerProcess()
        peers.append(late)
        cpu_before = _cpu_seconds(late.proc.pid)
        started = time.monotonic()
        late.ok(cmd="join", code=code, name="late", timeout=60)
        # Polled without the state digest: encoding a 10 000-entry state on
        # every poll would slow down the very catch-up being measured.
        while late.cmd(cmd="status", digest=False)["log_entries"] < target + 1:  # + roster.add
            if time.monotonic() - started > 120:
                raise TimeoutError("late joiner never caught up")
            time.sleep(0.01)
        wall = time.monotonic() - started
        cpu_after = _cpu_seconds(late.proc.pid)
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        return wall, cpu
    finally:
        _close_all(peers)


def verify_floor(total: int = 10_000) -> tuple[float, float]:
    """Seconds to verify ``total`` signatures over the entry label and a body
    of a typical contribution's size, with one VerifyKey (the log keeps one
    per author): wall and CPU."""
    signer = SigningKey(bytes(32))
    bodies = [b"%d" % i + bytes(180) for i in range(total)]
    signed = [(signer.sign(ENTRY_CONTEXT + body).signature, body) for body in bodies]
    verify = signer.verify_key.verify
    started, cpu_started = time.perf_counter(), time.process_time()
    for signature, body in signed:
        verify(ENTRY_CONTEXT + body, signature)
    return time.perf_counter() - started, time.process_time() - cpu_started


def tcp_rtt(rounds: int = 2000) -> float:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(256):
                conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.sendall(b"x" * 64)
        received = 0
        while received < 64:
            received += len(client.recv(256))
        samples.append((time.perf_counter() - start) * 1000)
    client.close()
    server.close()
    return median(samples)


def run() -> dict[str, Any]:
    result: dict[str, Any] = {
        "tcp_rtt_ms": round(tcp_rtt(), 4),
        "discovery_join_s": round(median([discovery_join(5) for _ in range(3)]), 3),
        "fanout_ms": {"5": fanout(5), "20": fanout(20)},
    }
    sync_s, sync_cpu_s = sync_late_joiner()
    floor_s, floor_cpu_s = verify_floor()
    return {
        **result,
        "sync_10k_s": round(sync_s, 3),
        "verify_floor_s": round(floor_s, 3),
        "sync_10k_cpu_s": None if sync_cpu_s is None else round(sync_cpu_s, 3),
        "verify_floor_cpu_s": round(floor_cpu_s, 3),
    }
