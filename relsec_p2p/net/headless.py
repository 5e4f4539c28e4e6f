"""``relsec peer``: a node with no UI, driven by JSON lines.

Rules of this file:
- One command per stdin line, one event per stdout line, both JSON objects.
  A command's ``id`` (if any) comes back in its answer, so scripts can match.
- Binary values (keys, ids, digests) travel as lowercase hex.
- Contribution text leaves the process only in answer to a ``state``
  command; events announce *that* something changed, not what was said.
- A bad command gets ``{"event": "error", "code": ..., "message": ...}`` and
  the peer carries on.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import LocalProtocolError, RelsecError
from ..core.events import EntryAccepted, ForkDetected, InputRejected
from ..core.session import Session
from ..core.state import MeetingState
from .node import JoinError, Node, NodeEvent, PeerDown, PeerUp


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _bytes(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise LocalProtocolError(f"{what} must be hex") from None


def status_summary(node: Node) -> dict[str, Any]:
    """Counts only: cheap to ask for often."""
    state = node.state
    if state is None or node.session is None:
        return {"event": "status", "in_meeting": False}
    return {
        "event": "status",
        "in_meeting": True,
        "member": node.is_member,
        "digest": node.session.digest().hex(),
        "epoch": state.epoch,
        "members": len(state.active_members()),
        "log_entries": len(node.session.log),
        "links": len(node.links),
        "facilitator": _hex(state.facilitator),
    }


def state_summary(node: Node) -> dict[str, Any]:
    """The meeting as JSON: what a UI or a test needs to see."""
    state: MeetingState | None = node.state
    if state is None or node.session is None:
        return {"event": "state", "in_meeting": False}
    return {
        "event": "state",
        "in_meeting": True,
        "me": node.identity.key.hex(),
        "member": node.is_member,
        "mid": state.mid.hex(),
        "digest": node.session.digest().hex(),
        "title": state.title,
        "epoch": state.epoch,
        "safety_number": node.safety_number(),
        "code": node.join_code(),
        "facilitator": _hex(state.facilitator),
        "term": state.term,
        "members": [
            {"key": m.key.hex(), "name": m.name, "active": m.active, "gone": m.gone}
            for m in sorted(state.members.values(), key=lambda m: m.order)
        ],
        "current": state.current,
        "steps": [{"id": s.id, "title": s.title, "status": s.status} for s in state.steps],
        "contributions": [
            {
                "id": c.id.hex(),
                "step": c.step,
                "author": c.author.hex(),
                "text": c.text,
                "tag": c.tag,
                "ref": _hex(c.ref),
            }
            for c in state.contributions
        ],
        "proposals": [
            {"id": p.id.hex(), "step": p.step, "author": p.author.hex(), "text": p.text}
            for p in state.proposals.values()
        ],
        "polls": [
            {
                "id": p.id.hex(),
                "proposal": p.proposal.hex(),
                "status": p.status,
                "tally": p.tally(),
                "cosigners": sorted(k.hex() for k in p.cosigners),
                "outcome": p.outcome,
                "result": None
                if p.result is None
                else {
                    "outcome": p.result.outcome,
                    "counts": p.result.counts,
                    "voters": p.result.voters,
                    "rule": p.result.rule(),
                },
            }
            for p in state.polls.values()
        ],
        "queue": [k.hex() for k in state.queue.waiting],
        "speaker": _hex(state.queue.speaker),
        "log_entries": len(node.session.log),
        "frozen": [k.hex() for k in state.frozen],
        "links": sorted(k.hex() for k in node.links),
    }


# Actions: command name -> (what it does to the Session given the arguments).
Action = Callable[[Session, dict[str, Any]], Any]
ACTIONS: dict[str, Action] = {
    "contribute": lambda s, a: s.contribute(
        int(a["step"]),
        str(a["text"]),
        tag=a.get("tag"),
        ref=_bytes(a["ref"], "ref") if a.get("ref") else None,
    ),
    "rate": lambda s, a: s.rate(
        int(a["step"]), int(a["value"]), ref=_bytes(a["ref"], "ref") if a.get("ref") else None
    ),
    "propose": lambda s, a: s.propose(int(a["step"]), str(a["text"])),
    "open_step": lambda s, a: s.open_step(int(a["step"])),
    "close_step": lambda s, a: s.close_step(int(a["step"])),
    "advance": lambda s, a: s.advance(),
    "open_poll": lambda s, a: s.open_poll(_bytes(a["proposal"], "proposal")),
    "vote": lambda s, a: s.vote(_bytes(a["poll"], "poll"), str(a["choice"])),
    "close_poll": lambda s, a: s.close_poll(_bytes(a["poll"], "poll")),
    "raise_hand": lambda s, a: s.raise_hand(),
    "lower_hand": lambda s, a: s.lower_hand(_bytes(a["who"], "who") if a.get("who") else None),
    "next_speaker": lambda s, a: s.next_speaker(),
    "hand_over": lambda s, a: s.hand_over(_bytes(a["to"], "to")),
    "record_outcome": lambda s, a: s.record_outcome(_bytes(a["poll"], "poll"), str(a["text"])),
    "leave": lambda s, a: s.leave(),
    "remove": lambda s, a: s.remove(_bytes(a["who"], "who")),
}


class HeadlessPeer:
    def __init__(self, node_factory: Callable[[Callable[[NodeEvent], None]], Node]) -> None:
        self.node = node_factory(self._on_event)
        self._stop = asyncio.Event()

    def emit(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def _on_event(self, event: NodeEvent) -> None:
        if isinstance(event, EntryAccepted):
            self.node.state  # noqa: B018 -- fold now, so "t" is when the meeting shows it
            self.emit(
                {
                    "event": "entry",
                    "type": event.type,
                    "author": event.author.hex(),
                    "seq": event.seq,
                    "t": time.monotonic(),
                }
            )
        elif isinstance(event, InputRejected):
            self.emit({"event": "rejected", "code": event.code, "peer": event.peer.hex()})
        elif isinstance(event, ForkDetected):
            self.emit({"event": "fork", "author": event.author.hex(), "seq": event.seq})
        elif isinstance(event, PeerUp):
            self.emit({"event": "peer_up", "peer": event.peer.hex()})
        elif isinstance(event, PeerDown):
            self.emit({"event": "peer_down", "peer": event.peer.hex(), "reason": event.reason})

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        node = self.node
        if name == "start":
            code = node.start_meeting(
                title=str(command.get("title", "Meeting")),
                name=str(command["name"]),
                agenda=list(command.get("agenda", [])),
                settings=command.get("settings"),
            )
            return {
                "event": "started",
                "code": code,
                "mid": _hex(node.state.mid if node.state else None),
            }
        if name == "join":
            await node.join(
                str(command["code"]),
                str(command["name"]),
                timeout=float(command.get("timeout", 15)),
            )
            return {"event": "joined"}
        if name == "state":
            return state_summary(node)
        if name == "status":
            return status_summary(node)
        if name == "quit":
            self._stop.set()
            return {"event": "bye"}
        action = ACTIONS.get(str(name))
        if action is None:
            raise LocalProtocolError(f"unknown command {name!r}")
        repeat = int(command.get("repeat", 1))
        if not 1 <= repeat <= 100_000:
            raise LocalProtocolError("repeat is a count from 1 to 100000")
        for i in range(repeat - 1):  # scripted bulk input (benchmarks): "text #i"
            numbered = {**command, "text": f"{command.get('text')} #{i}"}
            node.act(lambda s: action(s, numbered))  # noqa: B023 -- called at once
        entry = node.act(lambda s: action(s, command))
        return {"event": "ok", "entry": entry.hash.hex(), "seq": entry.seq, "t": time.monotonic()}

    async def run(self) -> None:
        await self.node.start()
        self.emit({"event": "ready", "port": self.node.port, "key": self.node.identity.key.hex()})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while not self._stop.is_set():
                line = await reader.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                await self._one(line)
        finally:
            await self.node.close()

    async def _one(self, line: bytes) -> None:
        command: dict[str, Any] = {}
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
            answer = await self.handle(command)
        except (RelsecError, JoinError) as exc:
            answer = {"event": "error", "code": getattr(exc, "code", "join"), "message": str(exc)}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"event": "error", "code": "bad_command", "message": str(exc)}
        if "id" in command:
            answer["id"] = command["id"]
        self.emit(answer)
