"""``relsec peer``: a node with no UI, driven by JSON lines.

Rules of this file:
- One command per stdin line, one event per stdout line, both JSON objects.
  A command's ``id`` (if any) comes back in its answer, so scripts can match.
- Binary values (keys, ids, digests) travel as lowercase hex.
- Contribution text leaves the process only in answer to a ``state``
  command; events announce *that* something changed, not what was said.
  Anonymous answers never carry an author, and anonymous tallies and
  rating counts appear only from ``anon_threshold`` answers on.
- A bad command gets ``{"event": "error", "code": ..., "message": ...}`` and
  the peer carries on. The ``message`` is in the language shown
  (``relsec peer --lang``); scripts match on ``code``.
- Files are written only on request (``export``, ``save``, ``--save``).
  The passphrase for ``--save``/``--resume`` comes from ``RELSEC_PASSPHRASE``
  (read once by the CLI) or from a ``{"cmd": "passphrase", ...}`` line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from .core import shuffle
from .core.anon import Report, RoundStarted
from .core.anon_rules import round_id_of
from .core.errors import LocalProtocolError, RelsecError
from .core.events import EntryAccepted, ForkDetected, InputRejected
from .core.i18n import _
from .core.requests import (
    AnonymousAnswer,
    AnonymousRating,
    AnonymousRequest,
    AnonymousVote,
    PauseRequest,
)
from .core.session import Session
from .core.state import MeetingState, Poll
from .net.autosave import SaveFailed
from .net.node import Node, NodeEvent, PeerDown, PeerUp
from .templates import builtin_templates, load_template


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _bytes(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise LocalProtocolError(_("{field} must be hex").format(field=what)) from None


def status_summary(node: Node, *, digest: bool = True) -> dict[str, Any]:
    """Counts only: cheap to ask for often. The state digest encodes the whole
    meeting (milliseconds for a large one): a driver polling a laptop while it
    catches up asks without it (``digest: false``), so as not to slow down
    what it measures."""
    listening = [list(place) for place in node.listening]
    state = node.state
    if state is None or node.session is None:
        return {"event": "status", "in_meeting": False, "listening": listening}
    summary = {
        "event": "status",
        "in_meeting": True,
        "member": node.is_member,
        "epoch": state.epoch,
        "members": len(state.active_members()),
        "present": len(state.present_members()),
        "log_entries": len(node.session.log),
        "links": len(node.links),
        "facilitator": _hex(state.facilitator),
        "listening": listening,
    }
    if digest:
        summary["digest"] = node.session.digest().hex()
    return summary


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
        "viewer": node.is_viewer,
        "viewers": [{"key": k.hex(), "name": n} for k, n in sorted(state.viewers.items())],
        "joining_open": state.joining_open,
        "advertising": node.advertising,
        "join_addresses": node.join_addresses(),
        "mid": state.mid.hex(),
        "digest": node.session.digest().hex(),
        "title": state.title,
        "epoch": state.epoch,
        "safety_number": node.safety_number(),
        "code": node.join_code(),
        "facilitator": _hex(state.facilitator),
        "term": state.term,
        "members": [
            {
                "key": m.key.hex(),
                "name": m.name,
                "active": m.active,
                "gone": m.gone,
                "away": m.away,
                "present": m.present,
                "replaces": _hex(m.replaces),
            }
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
        "polls": [_poll_summary(state, p) for p in state.polls.values()],
        # Anonymous answers: never an author; aggregates only from k answers on.
        "anonymous": [
            {
                "step": c.step,
                "text": c.text,
                "round": c.round,
                "members": c.members,
                "slots": c.slots,
            }
            for c in state.anonymous_contributions
        ],
        "anonymous_ratings": _anonymous_ratings(state),
        "pause_requests": state.pause_requests,
        "anon_threshold": state.settings["anon_threshold"],
        "anon_capacity": node.anonymous_capacity(),
        "anon_pending": node.session.anonymous.pending(),
        "queue": [k.hex() for k in state.queue.waiting],
        "speaker": _hex(state.queue.speaker),
        "log_entries": len(node.session.log),
        "frozen": [k.hex() for k in state.frozen],
        "links": sorted(k.hex() for k in node.links),
    }


def _poll_summary(state: MeetingState, poll: Poll) -> dict[str, Any]:
    threshold = int(state.settings["anon_threshold"])
    anonymous = state.poll_counts_anonymously(poll)
    result = poll.result
    return {
        "id": poll.id.hex(),
        "proposal": poll.proposal.hex(),
        "status": poll.status,
        "anonymous": anonymous,
        "tally": poll.anonymous_tally(threshold) if anonymous else poll.tally(),
        "cosigners": sorted(k.hex() for k in poll.cosigners),
        "outcome": poll.outcome,
        "result": None
        if result is None
        else {
            "outcome": result.outcome,
            "counts": poll.shown_counts(anonymous, threshold),
            "voters": result.voters,
            "members": result.members,
            "quorum": result.quorum,
            "rule": result.rule(),
        },
    }


def _anonymous_ratings(state: MeetingState) -> list[dict[str, Any]]:
    threshold = int(state.settings["anon_threshold"])
    shown = []
    for step, ref in sorted(state.anonymous_ratings, key=lambda k: (k[0], k[1] or b"")):
        counts = state.anonymous_rating_counts(step, ref, threshold)
        if counts is not None:
            shown.append({"step": step, "ref": _hex(ref), "counts": counts})
    return shown


def _given(command: dict[str, Any], name: str, convert: Callable[[Any], Any]) -> Any:
    """``convert(command[name])``, or None where the command leaves it out
    (the request then says which field it needs)."""
    return convert(command[name]) if name in command else None


def _hex_given(command: dict[str, Any], name: str) -> Any:
    return _bytes(command[name], name) if command.get(name) else None


def anonymous_request(command: dict[str, Any]) -> AnonymousRequest:
    """The ``anon`` command (``kind``: contrib, rating, vote or pause, and that
    kind's fields) as the request ``Node.submit_anonymous`` takes."""
    kind = command.get("kind")
    if kind == "contrib":
        return AnonymousAnswer(_given(command, "step", int), _given(command, "text", str))
    if kind == "rating":
        step, value = _given(command, "step", int), _given(command, "value", int)
        return AnonymousRating(step, value, _hex_given(command, "ref"))
    if kind == "vote":
        return AnonymousVote(_hex_given(command, "poll"), _given(command, "choice", str))
    if kind == "pause":
        return PauseRequest()
    raise LocalProtocolError(_("Send an anonymous contrib, rating, vote or pause."))


def round_report(report: Report) -> dict[str, Any]:
    """A round's outcome as an event line: counts and fingerprints, no content."""
    event: dict[str, Any] = {"event": "anon_round", "rid": report.rid.hex(), "t": time.monotonic()}
    if isinstance(report, RoundStarted):
        event.update(outcome="started", slots=report.slots)
    elif isinstance(report, shuffle.Released):
        began = report.timeline[0][1] if report.timeline else 0
        event.update(
            outcome="released",
            slots=len(report.start.parts),
            items=len(report.items),
            phases=[[name, at - began] for name, at in report.timeline],
        )
    elif isinstance(report, shuffle.Aborted):
        event.update(outcome="aborted", missing=[k.hex() for k in report.missing])
    else:
        event.update(
            outcome="blamed", culprits={k.hex(): why for k, why in report.culprits.items()}
        )
    return event


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
    "replace": lambda s, a: s.replace_member(_bytes(a["who"], "who"), _bytes(a["by"], "by")),
    "joining": lambda s, a: s.act("join.open", {"open": bool(a["open"])}),
}


def _path(value: Any, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise LocalProtocolError(_("{field} must be a file path").format(field=what))
    return Path(value)


class HeadlessPeer:
    def __init__(
        self,
        node_factory: Callable[[Callable[[NodeEvent], None]], Node],
        *,
        save: Path | None = None,
        resume: Path | None = None,
        passphrase: str | None = None,
    ) -> None:
        self.node = node_factory(self._on_event)
        self._stop = asyncio.Event()
        self._save_path = save
        self._resume_path = resume
        self._passphrase = passphrase
        self._pending = save is not None or resume is not None  # waiting for a passphrase

    async def _files_with(self, passphrase: str) -> dict[str, Any]:
        """Do what --resume and --save asked, now that the passphrase is known."""
        resumed = False
        if self._resume_path is not None and self.node.session is None:
            await self.node.resume_from(
                self._resume_path, passphrase, keep_saving=self._resume_path == self._save_path
            )
            resumed = True
        if self._save_path is not None and self._save_path != self._resume_path:
            await self.node.keep_saved(self._save_path, passphrase)
        self._passphrase = passphrase
        self._pending = False
        return {"event": "passphrase_ok", "resumed": resumed, "saving": self._save_path is not None}

    def emit(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def _on_event(self, event: NodeEvent) -> None:
        if isinstance(event, EntryAccepted):
            self.node.state  # noqa: B018 -- fold now, so "t" is when the meeting shows it
            message: dict[str, Any] = {
                "event": "entry",
                "type": event.type,
                "author": event.author.hex(),
                "seq": event.seq,
                "t": time.monotonic(),
            }
            if event.type == "anon.round" and self.node.session is not None:
                # Which round it releases: without it a driver cannot tell a
                # late entry of an earlier round from the one it waits for.
                session = self.node.session
                entry = session.log.feed(event.author)[event.seq - 1]
                rid = round_id_of(session.mid, entry)
                message["rid"] = None if rid is None else rid.hex()
            self.emit(message)
        elif isinstance(event, InputRejected):
            self.emit({"event": "rejected", "code": event.code, "peer": event.peer.hex()})
        elif isinstance(event, ForkDetected):
            self.emit({"event": "fork", "author": event.author.hex(), "seq": event.seq})
        elif isinstance(event, PeerUp):
            self.emit({"event": "peer_up", "peer": event.peer.hex()})
        elif isinstance(event, PeerDown):
            self.emit({"event": "peer_down", "peer": event.peer.hex(), "reason": event.reason})
        elif isinstance(event, SaveFailed):
            self.emit({"event": "save_failed", "message": event.message})
        elif isinstance(event, RoundStarted | shuffle.Released | shuffle.Aborted | shuffle.Blamed):
            self.emit(round_report(event))

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        node = self.node
        if name == "start":
            if command.get("template") is not None:
                if command.get("agenda") is not None:
                    raise LocalProtocolError(_("give either a template or an agenda, not both"))
                code = node.start_template(
                    load_template(str(command["template"])),
                    name=str(command["name"]),
                    title=None if command.get("title") is None else str(command["title"]),
                    settings=command.get("settings"),
                )
            else:
                code = node.start_meeting(
                    title=str(command.get("title", _("Meeting"))),
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
                display=bool(command.get("display", False)),
            )
            return {"event": "joined"}
        if name == "state":
            return state_summary(node)
        if name == "status":
            return status_summary(node, digest=command.get("digest", True) is not False)
        if name == "quit":
            self._stop.set()
            return {"event": "bye"}
        if name == "depart":  # a clean quit: leave, wait for the receipts, stop
            unconfirmed = await node.depart()
            self._stop.set()
            return {"event": "departed", "unconfirmed": unconfirmed}
        if name in FILE_COMMANDS:
            return await FILE_COMMANDS[name](self, command)
        if name == "anon":
            node.submit_anonymous(anonymous_request(command))
            pending = 0 if node.session is None else node.session.anonymous.pending()
            return {"event": "queued", "pending": pending, "t": time.monotonic()}
        action = ACTIONS.get(str(name))
        if action is None:
            raise LocalProtocolError(_("unknown command {name!r}").format(name=name))
        repeat = int(command.get("repeat", 1))
        if not 1 <= repeat <= 100_000:
            raise LocalProtocolError(_("repeat is a count from 1 to 100000"))

        def bulk(session: Session) -> Any:
            # Scripted bulk input (benchmarks): "text #i", sent as one batch.
            for i in range(repeat - 1):
                action(session, {**command, "text": f"{command.get('text')} #{i}"})
            return action(session, command)

        entry = node.perform(bulk)
        return {"event": "ok", "entry": entry.hash.hex(), "seq": entry.seq, "t": time.monotonic()}

    async def run(self) -> None:
        await self.node.start()
        if self._pending and self._passphrase is not None:
            await self._one(json.dumps({"cmd": "passphrase"}).encode())
        self.emit(
            {
                "event": "ready",
                "port": self.node.port,
                "listening": [list(place) for place in self.node.listening],
                "key": self.node.identity.key.hex(),
                "needs_passphrase": self._pending,
            }
        )
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
                raise ValueError(_("a command is a JSON object"))
            answer = await self.handle(command)
        except RelsecError as exc:
            answer = {"event": "error", "code": exc.code, "message": str(exc)}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"event": "error", "code": "bad_command", "message": str(exc)}
        if "id" in command:
            answer["id"] = command["id"]
        self.emit(answer)


# --- files: templates, saves, records ------------------------------------------------


async def _passphrase(peer: HeadlessPeer, command: dict[str, Any]) -> dict[str, Any]:
    """Give the passphrase for --save/--resume (``{"cmd": "passphrase",
    "passphrase": "..."}``); a wrong one changes nothing and can be retried."""
    if not peer._pending:
        raise LocalProtocolError(_("no --save or --resume is waiting for a passphrase"))
    given = command.get("passphrase", peer._passphrase)
    if not isinstance(given, str):
        raise LocalProtocolError(_("passphrase must be text"))
    return await peer._files_with(given)


def _secret(peer: HeadlessPeer, command: dict[str, Any]) -> str:
    given = command.get("passphrase", peer._passphrase)
    if not isinstance(given, str):
        raise LocalProtocolError(_('give the passphrase: {"passphrase": "..."}'))
    return given


async def _save(peer: HeadlessPeer, command: dict[str, Any]) -> dict[str, Any]:
    default = None if peer._save_path is None else str(peer._save_path)
    path = _path(command.get("path", default), "path")
    size = await peer.node.save(path, _secret(peer, command))
    return {"event": "saved", "bytes": size}


async def _resume(peer: HeadlessPeer, command: dict[str, Any]) -> dict[str, Any]:
    default = None if peer._resume_path is None else str(peer._resume_path)
    path = _path(command.get("path", default), "path")
    mid = _bytes(command["mid"], "mid") if command.get("mid") else None
    await peer.node.resume_from(
        path, _secret(peer, command), expected_mid=mid, keep_saving=path == peer._save_path
    )
    state = peer.node.state
    return {
        "event": "resumed",
        "mid": _hex(state.mid if state else None),
        "entries": len(peer.node.session.log) if peer.node.session else 0,
    }


async def _export(peer: HeadlessPeer, command: dict[str, Any]) -> dict[str, Any]:
    markdown = _path(command["markdown"], "markdown") if command.get("markdown") else None
    json_path = _path(command["json"], "json") if command.get("json") else None
    peer.node.export(markdown=markdown, json=json_path)
    return {"event": "exported"}


async def _templates(peer: HeadlessPeer, command: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": "templates",
        "templates": [
            {"name": t.name, "title": t.title, "summary": t.summary, "credit": t.credit}
            for t in builtin_templates()
        ],
    }


FileCommand = Callable[[HeadlessPeer, dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]
FILE_COMMANDS: dict[str, FileCommand] = {
    "passphrase": _passphrase,
    "save": _save,
    "resume": _resume,
    "export": _export,
    "templates": _templates,
}
