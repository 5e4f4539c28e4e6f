"""``relsec bench soak``: ten real peers on a LAN of network namespaces for a
set time, under churn, a partition and packet loss; then nothing may be lost.

The run: 5 actions a second over all peers (named contributions mostly, hand
raise/lower, anonymous answers, votes; now and then the facilitator's
proposal and poll; polls stay open so every tally can be checked), one
member leaving and a newcomer joining about once a minute, one host unplugged
for up to 20 s, 10 % loss on another host throughout. Then: heal, wait for
one digest, and look for every accepted action in every live peer's state.
Figures: ``actions``, ``lost`` (must be 0; it also covers each leaving
member's ``roster.leave``), ``digests_equal``,
``max_rss_mb`` per host (VmRSS of the ``relsec peer`` process, sampled every
2 s) and ``rss_growth_mb_per_1k``: the least-squares slope of RSS against
actions accepted, after warm-up, the largest over peers that saw at least a
quarter of the run.

Rules of this file:
- It builds its own LAN (``bench.lan``) and deletes it whatever happens; it
  needs root, ``ip`` and ``nft``, and without them says so (``unavailable``)
  rather than measure something else.
- An action counts once its peer answered it (``ok``, or ``queued`` for an
  anonymous one); ``lost`` is what some live peer lacks at the end, checked
  against each peer's own ``state``, never assumed.
- Churn is ``leave`` then quit, and the process goes only once the
  facilitator holds its ``roster.leave`` (so its whole feed: feeds are hash
  chains); the newcomer on that host joins by code as a new identity. Without
  the leave every rejoin would leave a silent "active" member behind, which
  raises the quorum of polls and of absent declarations past what the room
  can reach; a crash without leave is what ``tests/netns`` covers.
- Contribution text is made up here; the output holds counts and sizes only.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.state import CHOICES
from ..peerproc import PeerProcess, wait_all_equal
from .common import rss_mb
from .lan import INTERFACE, Lan, netns_available
from .net import _close_all, _wait_mesh

PEERS = 10
RATE = 5.0  # actions a second, all peers together
DEFAULT_SECONDS = 600
MIN_SECONDS = 30
LOSS_PERCENT = 10
FACILITATOR = 0  # never churned, never cut off: it sponsors the rejoins
PARTITIONED = 5  # unplugged once, for ``partition_s``
LOSSY = 9  # loses LOSS_PERCENT of its packets for the whole run
SAMPLE_S = 2.0  # RSS of every peer, this often
VOTE_AFTER_S = 3.0  # members vote on a poll once it had time to reach them
AGENDA: list[dict[str, Any]] = [
    # One open step for the whole run: named and anonymous answers, proposals.
    {"id": "soak", "title": "Soak", "prompt": "What should we do next?", "mode": "both",
     "kind": "proposal"},
]  # fmt: skip
FILLER = "we talk through what happened, who was affected and what could help next; "


def unavailable() -> str | None:
    """None if the soak can run here, else one sentence saying what to do."""
    reason = netns_available(("ip", "nft"))
    if reason is None:
        return None
    return (
        f"The soak runs its peers on a LAN of network namespaces, but {reason}: "
        "run it as root on a machine with iproute2 and nftables."
    )


@dataclass(slots=True)
class Plan:
    """When the faults happen, scaled to the run's length."""

    seconds: float
    churns: list[float]  # seconds into the run
    partition_at: float
    partition_s: float
    poll_every_s: float
    warmup_s: float

    @classmethod
    def for_seconds(cls, seconds: float) -> Plan:
        count = max(2, round(seconds / 60))  # one rejoin a minute, at least two
        return cls(
            seconds=seconds,
            churns=[seconds * (k + 0.5) / count for k in range(count)],
            partition_at=seconds * 0.4,
            # Longer than the links' idle timeout (10 s), so links really drop.
            partition_s=min(20.0, max(12.0, seconds * 0.3)),
            poll_every_s=max(10.0, seconds / 20),
            warmup_s=min(60.0, seconds * 0.15),
        )


@dataclass(slots=True)
class _Process:
    """One ``relsec peer`` process: a member identity on one host."""

    host: int
    peer: PeerProcess
    pid: int
    started: float
    samples: list[tuple[float, int, float]] = field(default_factory=list)  # t, actions, MiB
    cpu_s: float = 0.0  # user + system, at the last sample


@dataclass(slots=True)
class _Slot:
    """A host and the process currently on it."""

    host: int
    process: _Process
    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: bool = True  # the action scheduler may use it
    waiting: bool = False  # its hand is raised

    @property
    def peer(self) -> PeerProcess:
        return self.process.peer


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # contrib, anon, hand, proposal, poll, vote
    host: int
    author: str
    ref: str  # the entry id; an anonymous answer's text; a vote's poll


def peer_pid(pid: int) -> int:
    """The ``relsec peer`` Python process at or under ``pid``: ``ip netns
    exec`` execs in place, but a wrapper that forks would put it below."""
    pending = [pid]
    while pending:
        current = pending.pop(0)
        try:
            argv = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
            if b"relsec_p2p" in argv and b"peer" in argv:
                return current
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    raise RuntimeError(f"no relsec peer process under pid {pid}")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of ``pid`` so far, or None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \S+ (?P<level>[A-Z]+) (?P<message>.*)")


def log_errors(lines: Sequence[str]) -> list[str]:
    """A peer's logged errors, one line each: an ERROR or CRITICAL record's
    message, or for a bare traceback (no record of its own: a crash) its
    exception line. A traceback under a WARNING stays a warning (zeroconf
    logs one when nftables drops a packet it sends). Logs hold no meeting
    content (node.py's rules), so these can be shown."""
    found = []
    for i, line in enumerate(lines):
        record = LOG_RECORD.match(line)
        if record is not None and record["level"] in ("ERROR", "CRITICAL"):
            found.append(record["message"].strip()[:200])
        elif line.startswith("Traceback") and (i == 0 or not LOG_RECORD.match(lines[i - 1])):
            rest = (x for x in lines[i + 1 :] if x.strip() and not x[0].isspace())
            found.append(next(rest, "Traceback").strip()[:200])
    return found


def growth_per_1k(samples: Iterable[tuple[int, float]]) -> float | None:
    """Least-squares slope of MiB against actions, per 1 000 actions."""
    points = list(samples)
    if len(points) < 3 or len({x for x, _ in points}) < 2:
        return None
    slope, _ = statistics.linear_regression([x / 1000 for x, _ in points], [y for _, y in points])
    return slope


class Soak:
    def __init__(self, lan: Lan, seconds: float, *, seed: int = 1) -> None:
        self.lan = lan
        self.plan = Plan.for_seconds(seconds)
        self.rng = random.Random(seed)  # the scheduler's
        self.fault_rng = random.Random(seed + 1)  # the fault thread's
        self.slots: list[_Slot] = []
        self.processes: list[_Process] = []
        self.accepted: list[Action] = []
        self.refused: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.rounds: dict[str, set[str]] = {"released": set(), "aborted": set(), "blamed": set()}
        self.polls: dict[str, float] = {}  # poll id -> when it opened
        self.voted: set[tuple[str, str]] = set()  # (poll, voter)
        self.churns = 0
        self.fault_failures: list[str] = []
        self.partitions = 0
        self.relink_s: float | None = None
        self.started = 0.0
        self.table = threading.Lock()  # slots, records and counters
        self.stop = threading.Event()
        self._serial = 0

    # -- setup -----------------------------------------------------------------------

    def _spawn(self, host: int) -> _Process:
        peer = PeerProcess(prefix=self.lan.prefix(host), interface=INTERFACE)
        process = _Process(host, peer, peer_pid(peer.proc.pid), time.monotonic())
        with self.table:
            self.processes.append(process)
        return process

    def _meeting(self) -> None:
        with ThreadPoolExecutor(max_workers=PEERS) as pool:
            started = list(pool.map(self._spawn, range(PEERS)))
        self.slots = [_Slot(p.host, p) for p in started]
        peers = [p.peer for p in started]
        code = peers[FACILITATOR].ok(cmd="start", title="soak", name="p0", agenda=AGENDA)["code"]
        for i, peer in enumerate(peers[1:], start=1):
            peer.cmd(timeout=40, cmd="join", code=code, name=f"p{i}")
            if not peer.state().get("member"):
                raise RuntimeError(f"peer {i} could not join the soak meeting")
        peers[FACILITATOR].ok(cmd="open_step", step=0)
        _wait_mesh(peers, timeout=120)

    # -- actions ---------------------------------------------------------------------

    def _record(self, kind: str, slot: _Slot, ref: str) -> None:
        with self.table:
            self.accepted.append(Action(kind, slot.host, slot.peer.key, ref))

    def _try(self, slot: _Slot, **command: Any) -> dict[str, Any] | None:
        """Send one command; the answer if the peer accepted it, else None."""
        try:
            answer = slot.peer.cmd(timeout=20, **command)
        except TimeoutError:
            answer = {"event": "error", "code": "no answer"}
        if answer.get("event") == "error":
            with self.table:
                self.refused[f"{command['cmd']}: {answer.get('code')}"] += 1
            return None
        return answer

    def _text(self) -> str:
        self._serial += 1
        return f"#{self._serial} " + FILLER * self.rng.randint(1, 8)

    def _poll(self) -> None:
        """The facilitator puts a proposal to the room and opens a poll on it."""
        slot = self.slots[FACILITATOR]
        with slot.lock:
            answer = self._try(slot, cmd="propose", step=0, text=self._text())
            if answer is None:
                return
            self._record("proposal", slot, answer["entry"])
            answer = self._try(slot, cmd="open_poll", proposal=answer["entry"])
            if answer is None:
                return
            self._record("poll", slot, answer["entry"])
            with self.table:
                self.polls[answer["entry"]] = time.monotonic()

    def _act(self) -> None:
        with self.table:
            ready = [s for s in self.slots if s.ready]
        if not ready:
            return
        slot = self.rng.choice(ready)
        if not slot.lock.acquire(timeout=1):
            return  # being churned: this tick goes
        try:
            if not slot.ready:
                return
            self._act_as(slot, self.rng.random())
        finally:
            slot.lock.release()

    def _act_as(self, slot: _Slot, draw: float) -> None:
        key = slot.peer.key
        if draw < 0.12:
            name = "lower_hand" if slot.waiting else "raise_hand"
            answer = self._try(slot, cmd=name)
            if answer is not None:
                slot.waiting = not slot.waiting
                self._record("hand", slot, answer["entry"])
            return
        if draw < 0.20:
            text = f"anonymous {self.rng.getrandbits(64):016x} " + FILLER
            if self._try(slot, cmd="anon", kind="contrib", step=0, text=text) is not None:
                self._record("anon", slot, text)
            return
        if draw < 0.30:
            now = time.monotonic()
            with self.table:
                open_polls = [
                    p
                    for p, at in self.polls.items()
                    if now - at > VOTE_AFTER_S and (p, key) not in self.voted
                ]
            if open_polls:
                poll = self.rng.choice(open_polls)
                choice = self.rng.choice(CHOICES)
                if self._try(slot, cmd="vote", poll=poll, choice=choice) is not None:
                    with self.table:
                        self.voted.add((poll, key))
                    self._record("vote", slot, f"{poll}:{choice}")
                return
        answer = self._try(slot, cmd="contribute", step=0, text=self._text())
        if answer is not None:
            self._record("contrib", slot, answer["entry"])

    def _schedule(self) -> None:
        """RATE actions a second until the run ends; a stall is not made up
        in a burst afterwards (at most one second of catching up)."""
        tick = 1 / RATE
        due = self.started
        next_poll = self.started + self.plan.poll_every_s / 2
        end = self.started + self.plan.seconds
        while (now := time.monotonic()) < end:
            if due > now:
                time.sleep(due - now)
            due = max(due + tick, time.monotonic() - 1)
            if time.monotonic() >= next_poll:
                next_poll += self.plan.poll_every_s
                self._poll()
            else:
                self._act()

    # -- faults ----------------------------------------------------------------------

    def _wait(self, until: float) -> None:
        while time.monotonic() < until and not self.stop.is_set():
            time.sleep(min(0.5, max(0.0, until - time.monotonic())))

    def _faults(self) -> None:
        timeline = sorted(
            [(self.started + t, "churn") for t in self.plan.churns]
            + [(self.started + self.plan.partition_at, "partition")]
        )
        for at, what in timeline:
            self._wait(at)
            if self.stop.is_set():
                return
            try:
                if what == "partition":
                    self._partition()
                else:
                    self._churn()
            except Exception as exc:  # reported; the run goes on
                with self.table:
                    self.fault_failures.append(f"{what}: {type(exc).__name__}: {exc}"[:300])

    def _partition(self) -> None:
        slot = self.slots[PARTITIONED]
        self.lan.unplug(PARTITIONED)
        self.partitions += 1
        try:
            self._wait(time.monotonic() + self.plan.partition_s)
        finally:
            self.lan.plug(PARTITIONED)
        healed = time.monotonic()
        deadline = healed + 120
        while time.monotonic() < deadline:
            with slot.lock:
                links = slot.peer.cmd(cmd="status").get("links")
            if links == PEERS - 1:
                self.relink_s = time.monotonic() - healed
                return
            time.sleep(0.2)

    def _churn(self) -> None:
        """A member leaves and quits; a new one joins by code on that host."""
        hosts = [h for h in range(PEERS) if h not in (FACILITATOR, PARTITIONED)]
        slot = self.slots[self.fault_rng.choice(hosts)]
        facilitator = self.slots[FACILITATOR]
        with self.table:
            slot.ready = False
        with slot.lock:
            try:
                self._leave(slot, facilitator)
            finally:
                self._drain(slot.process)
                slot.peer.close()
            with facilitator.lock:
                code = facilitator.peer.state()["code"]
            process = self._join(slot.host, code)
            with self.table:
                slot.process = process
                slot.ready = True
                self.churns += 1

    def _leave(self, slot: _Slot, facilitator: _Slot) -> None:
        # What it queued anonymously would go with it unless a round took it.
        deadline = time.monotonic() + 60
        while slot.peer.state().get("anon_pending") and time.monotonic() < deadline:
            time.sleep(0.5)
        slot.peer.ok(cmd="leave")
        self._record("leave", slot, slot.peer.key)
        slot.waiting = False
        # Quit only once the facilitator holds the leave, hence the whole feed.
        deadline = time.monotonic() + 60
        while True:
            with facilitator.lock:
                members = facilitator.peer.cmd(cmd="status").get("members")
            if members == PEERS - 1:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the facilitator never saw the leave")
            time.sleep(0.2)

    def _join(self, host: int, code: str) -> _Process:
        for attempt in range(3):
            process = self._spawn(host)
            name = f"p{host}.{self.churns + 1}.{attempt}"
            answer = process.peer.cmd(timeout=40, cmd="join", code=code, name=name)
            if answer.get("event") == "joined":
                process.started = time.monotonic()
                return process
            with self.table:
                self.refused[f"join: {answer.get('code')}"] += 1
            process.peer.close()
        raise RuntimeError(f"host {host} could not rejoin")

    # -- measuring -------------------------------------------------------------------

    def _drain(self, process: _Process) -> None:
        """Count the events a peer reported and forget them (the reader only appends)."""
        with self.table:
            history = process.peer.history
            taken = history[: len(history)]
            del history[: len(taken)]
            for event in taken:
                kind = event.get("event")
                if kind == "peer_down":
                    self.events["link down: " + str(event.get("reason")).split(":")[0]] += 1
                elif kind == "rejected":
                    self.events[f"rejected: {event.get('code')}"] += 1
                elif kind == "fork":
                    self.events["fork"] += 1
                elif kind == "anon_round" and event.get("outcome") in self.rounds:
                    self.rounds[event["outcome"]].add(str(event.get("rid")))

    def _sample(self) -> None:
        while not self.stop.wait(SAMPLE_S):
            with self.table:
                live = [s.process for s in self._live()]
                actions = sum(1 for a in self.accepted if a.kind != "leave")
            now = time.monotonic()
            for process in live:
                rss, cpu = rss_mb(process.pid), cpu_seconds(process.pid)
                if rss is not None and cpu is not None:
                    process.samples.append((now, actions, rss))
                    process.cpu_s = cpu
                self._drain(process)

    # -- the end ---------------------------------------------------------------------

    def _settle(self) -> tuple[list[dict[str, Any]], bool, float]:
        """Heal everything, let anonymous queues empty, wait for one digest."""
        self.lan.plug(PARTITIONED)
        self.lan.lossless(LOSSY)
        began = time.monotonic()
        peers = [s.peer for s in self._live()]
        deadline = began + 180
        while time.monotonic() < deadline:
            if not any(p.state().get("anon_pending") for p in peers):
                break
            time.sleep(1)
        try:
            states = wait_all_equal(peers, timeout=max(30.0, deadline - time.monotonic()))
            equal = True
        except TimeoutError:
            states, equal = [p.state() for p in peers], False
        return states, equal, time.monotonic() - began

    def _live(self) -> list[_Slot]:
        return [s for s in self.slots if s.peer.proc.poll() is None]

    def _report(self, states: list[dict[str, Any]], equal: bool, settle_s: float) -> dict[str, Any]:
        waiting = {s.peer.key for s in self._live() if s.waiting}
        missing, duplicated = find_missing(self.accepted, states, waiting)
        errors = [e for process in self.processes for e in log_errors(process.peer.stderr_lines)]
        kinds = Counter(a.kind for a in self.accepted if a.kind != "leave")
        actions = sum(kinds.values())
        max_rss: dict[str, float] = {}
        growth: dict[str, float] = {}
        busy: list[float] = []
        for process in self.processes:
            if not process.samples:
                continue
            top = max(rss for _, _, rss in process.samples)
            max_rss[str(process.host)] = round(max(max_rss.get(str(process.host), 0), top), 1)
            busy.append(100 * process.cpu_s / max(1.0, process.samples[-1][0] - process.started))
            # Warm-up: the first part of the run, and of each process's life.
            begin = max(self.started, process.started) + self.plan.warmup_s
            after = [(n, rss) for t, n, rss in process.samples if t >= begin]
            # Only processes that saw a good part of the run: a rejoiner's short
            # life starts with catching up the whole log, which is no trend.
            if after and after[-1][0] - after[0][0] >= max(50, actions // 4):
                slope = growth_per_1k(after)
                if slope is not None:
                    name = str(process.host)
                    growth[name] = round(max(growth.get(name, slope), slope), 3)
        return {
            "seconds": self.plan.seconds,
            "peers": PEERS,
            "live_peers": len(states),
            "actions": actions,
            "actions_per_s": round(actions / self.plan.seconds, 2),
            "actions_by_kind": dict(sorted(kinds.items())),
            "refused": dict(sorted(self.refused.items())),
            "lost": sum(missing.values()),
            "lost_by_kind": dict(sorted(missing.items())),
            "anonymous_duplicated": duplicated,
            "digests_equal": equal,
            "settle_s": round(settle_s, 1),
            "log_entries": max((s.get("log_entries") or 0) for s in states),
            "churns": self.churns,
            "fault_failures": self.fault_failures,
            "partitions": self.partitions,
            "partition_s": self.plan.partition_s,
            "relink_s": None if self.relink_s is None else round(self.relink_s, 1),
            "loss_pct": LOSS_PERCENT,
            "anon_rounds": {k: len(v) for k, v in self.rounds.items()},
            "events": dict(sorted(self.events.items())),
            # Entries refused because their author was not known yet: held
            # instead since SPEC §3.4, so any count here is waste (issue 13.8).
            "unknown_author_refusals": self.events["rejected: unknown_author"]
            + self.events["rejected: hold_full"],
            "peer_log_errors": len(errors),
            "peer_log_error_lines": sorted(set(errors))[:5],
            "max_rss_mb": dict(sorted(max_rss.items(), key=lambda kv: int(kv[0]))),
            "rss_growth_by_peer": dict(sorted(growth.items(), key=lambda kv: int(kv[0]))),
            "rss_growth_mb_per_1k": max(growth.values()) if growth else None,
            "cpu_pct_per_peer": {
                "mean": round(statistics.mean(busy), 1),
                "max": round(max(busy), 1),
            }
            if busy
            else None,
            "cores": os.cpu_count(),
        }

    # -- the run ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        try:
            self._meeting()
            self.lan.lossy(LOSSY, LOSS_PERCENT)
            self.started = time.monotonic()
            workers = [
                threading.Thread(target=t, daemon=True) for t in (self._faults, self._sample)
            ]
            for worker in workers:
                worker.start()
            try:
                self._schedule()
            finally:
                self.stop.set()
                for worker in workers:
                    worker.join(timeout=240)
            states, equal, settle_s = self._settle()
            for process in self.processes:
                self._drain(process)
            return self._report(states, equal, settle_s)
        finally:
            _close_all([p.peer for p in self.processes])


HELD = ("contrib", "proposal", "poll", "anon", "leave")


def _holdings(state: dict[str, Any]) -> dict[str, set[str]]:
    """What a peer's state holds, by the ``ref`` its action was recorded with."""
    return {
        "contrib": {c["id"] for c in state["contributions"]},
        "proposal": {p["id"] for p in state["proposals"]},
        "poll": {p["id"] for p in state["polls"]},
        "anon": {c["text"] for c in state["anonymous"]},
        "leave": {m["key"] for m in state["members"] if m["gone"] == "left"},
    }


def find_missing(
    accepted: Sequence[Action], states: Sequence[dict[str, Any]], waiting: set[str]
) -> tuple[Counter[str], int]:
    """The accepted actions some peer's ``state`` lacks, by kind; and the most
    anonymous answers any peer holds twice. ``waiting``: the keys whose last
    hand action raised it."""
    missing: Counter[str] = Counter()
    held = [_holdings(state) for state in states]
    for action in accepted:
        if action.kind in HELD and not all(action.ref in h[action.kind] for h in held):
            missing[action.kind] += 1
    # Votes: every poll stays open, so each peer's tally of it must count
    # every vote cast (one per member and poll).
    expected: dict[str, Counter[str]] = {}
    for action in accepted:
        if action.kind == "vote":
            poll, choice = action.ref.split(":")
            expected.setdefault(poll, Counter())[choice] += 1
    for poll, counts in expected.items():
        worst = 0
        for state in states:
            tally = next((p["tally"] for p in state["polls"] if p["id"] == poll), None) or {}
            worst = max(worst, sum(max(0, n - tally.get(c, 0)) for c, n in counts.items()))
        missing["vote"] += worst
    # Hands: nobody calls the next speaker, so the waiting list is exactly
    # the members whose last hand action raised it.
    mismatched: set[str] = set()
    for state in states:
        mismatched |= set(state["queue"]) ^ waiting
    missing["hand"] += len(mismatched)
    anonymous = {a.ref for a in accepted if a.kind == "anon"}
    duplicated = 0
    for state in states:
        counts = Counter(c["text"] for c in state["anonymous"] if c["text"] in anonymous)
        duplicated = max(duplicated, sum(n - 1 for n in counts.values()))
    return +missing, duplicated


def run(seconds: float = DEFAULT_SECONDS) -> dict[str, Any]:
    """The soak, as ``relsec bench soak --json`` prints it (needs root: see
    ``unavailable``)."""
    if seconds < MIN_SECONDS:
        raise ValueError(f"the soak needs at least {MIN_SECONDS} seconds")
    lan = Lan(PEERS)
    try:
        return Soak(lan, seconds).run()
    finally:
        lan.close()
