"""A node: one member's laptop on the LAN, driving a core ``Session``.

Rules of this file:
- Every laptop is an equal peer: it listens, advertises by mDNS, dials every
  relsec instance it discovers and lets the link handshake decide who is a
  member. Losing any one node, the facilitator's included, loses nothing:
  every accepted entry is on every connected laptop, and facilitation passes
  on by the log's own rule (``facil.absent``).
- The core decides; this file moves bytes and keeps time. After every call
  into the Session its outgoing frames are routed to the links at once, and
  ``Node._after_change`` is the one place that tells the front end the
  meeting changed (``core.events.MeetingChanged``).
- The node is the pump; its collaborators do the rest: ``net/dialer.py``
  (whom to dial, and when), ``net/joining.py`` (joining by code, sponsoring
  others), ``net/autosave.py`` (the save file). What it does on its own
  initiative (co-signing tallies, declaring an unreachable facilitator
  absent) is decided by ``core/policies.py``.
- Front ends use its public methods only (``perform``, ``join``, ``panic``,
  ``nearby_meetings``...), never its attributes starting with ``_``.
- Logs name peers by short key fingerprints and errors by their codes; never
  contribution text, names, codes or keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..core import joincode, shuffle
from ..core.anon import Report, RoundStarted
from ..core.codec import unpack
from ..core.errors import LocalProtocolError, RemoteProtocolError
from ..core.events import Event, InputRejected, MeetingChanged, OwnEntryIgnored, short
from ..core.feed import Entry
from ..core.identity import Identity
from ..core.link import HANDSHAKE_LIMITS, HANDSHAKE_TIMEOUT_S, keep_link
from ..core.policies import DEFAULT_ABSENT_AFTER_MS, FacilitatorWatch, tally_answers
from ..core.record import roster_safety_number
from ..core.requests import TEXT_CAPACITY, AnonymousRequest
from ..core.session import Session
from ..core.state import MeetingState
from ..core.template import Template
from ..templates import template_for
from .autosave import Autosave, SaveFailed
from .dialer import Dialer
from .discovery import Discovery
from .files import SaveFile, export_record
from .joining import JOIN_FIRST_TYPE, Sponsor, ask_to_join, wait_until_member
from .link import FrameReader, Link, LinkClosed

log = logging.getLogger("relsec.node")

TICK_S = 1.0
ROUND_TICK_S = 0.05  # anonymous round deadlines and schedule (core.anon)
DEFAULT_ABSENT_AFTER_S = DEFAULT_ABSENT_AFTER_MS / 1000
# How long an owed ack waits (SPEC §6.10): long enough that an entry this
# laptop writes anyway (a vote, a co-signature) carries the acknowledgement
# instead, short enough that settlement follows within about a round trip.
ACK_DELAY_S = 0.5
LISTEN_ATTEMPTS = 5  # ephemeral ports to try until every address has the same one


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class PeerUp:
    peer: bytes

    def __str__(self) -> str:
        return f"link up {short(self.peer)}"


@dataclass(frozen=True, slots=True)
class PeerDown:
    peer: bytes
    reason: str

    def __str__(self) -> str:
        return f"link down {short(self.peer)}: {self.reason}"


NodeEvent = Event | PeerUp | PeerDown | SaveFailed | Report


class Node:
    """Owns the listener, discovery, links and the Session of one member."""

    def __init__(
        self,
        *,
        interfaces: list[str],
        identity: Identity | None = None,
        port: int = 0,
        clock: Callable[[], int] = wall_clock_ms,
        on_event: Callable[[NodeEvent], None] | None = None,
        absent_after_s: float = DEFAULT_ABSENT_AFTER_S,
        use_mdns: bool = True,
    ) -> None:
        self.identity = identity or Identity.generate()
        self.interfaces = interfaces
        self.port = port
        self.clock = clock
        self.session: Session | None = None
        self.links: dict[bytes, Link] = {}
        self._on_event = on_event
        self._use_mdns = use_mdns
        self._discovery: Discovery | None = None
        self._servers: list[asyncio.Server] = []
        self._bootstrap: set[bytes] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._facilitator_watch = FacilitatorWatch(round(absent_after_s * 1000))
        self._known_epoch = -1
        self._closing = False
        self._cosigning = False
        self._ack_scheduled = False
        self._reported_ignored: set[bytes] = set()
        self._seen_log_size = 0
        self.rejections: list[InputRejected] = []
        self.template: Template | None = None  # the template this laptop started from
        self._sponsor = Sponsor(self)
        self._dialer = Dialer(
            self, spawn=self._spawn, may_link=self.may_link, on_link=self.add_link
        )
        self._autosave = Autosave(self, spawn=self._spawn, on_failed=self._emit)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()
        if self._use_mdns:
            self._discovery = Discovery(self.interfaces, on_change=self._on_discovery_change)
            await self._discovery.async_start()
            self._spawn(self._discovery.async_advertise(self.port, None))
        self._spawn(self._timer_loop())
        self._spawn(self._round_loop())
        log.info("listening on %s, port %d", ", ".join(self.interfaces), self.port)

    async def _listen(self) -> None:
        """One listener per chosen address, all on one port: mDNS advertises
        exactly these addresses with that port (SPEC §12.2), so a peer that
        reaches this laptop through any of its interfaces can connect, and
        nothing listens where nothing is advertised (never the wildcard)."""
        for attempt in range(LISTEN_ATTEMPTS):
            port = self.port
            servers: list[asyncio.Server] = []
            try:
                for host in self.interfaces:
                    server = await asyncio.start_server(self._on_connection, host, port)
                    servers.append(server)
                    port = server.sockets[0].getsockname()[1]
            except OSError:
                for server in servers:
                    server.close()
                # A port the OS picked on the first address can be taken on
                # another one: pick again. A port the person chose cannot move.
                if self.port != 0 or attempt == LISTEN_ATTEMPTS - 1:
                    raise
                continue
            self._servers = servers
            self.port = port
            return

    @property
    def listening(self) -> list[tuple[str, int]]:
        """The (address, port) pairs this laptop accepts connections on."""
        names = [sock.getsockname() for server in self._servers for sock in server.sockets]
        return [(str(name[0]), int(name[1])) for name in names]

    async def close(self) -> None:
        self._closing = True
        self._dialer.stop()
        await self._autosave.final_save()
        for link in list(self.links.values()):
            link.close("node closing")
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._discovery is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._discovery.async_close(), 3)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    def panic(self) -> None:
        """Cut every link and drop the meeting at once, writing nothing; then
        ``close()`` withdraws the mDNS record (the panic key)."""
        for link in list(self.links.values()):
            link.close("closing")
        self.session = None

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def add_endpoint(self, host: str, port: int) -> None:
        """A place to dial that did not come from mDNS (tests, ``--peer``)."""
        self._dialer.add(host, port)

    # -- reading --------------------------------------------------------------------

    @property
    def state(self) -> MeetingState | None:
        return None if self.session is None else self.session.state

    @property
    def is_member(self) -> bool:
        state = self.state
        return state is not None and state.is_member(self.identity.key)

    def safety_number(self) -> str:
        state = self.state
        return "" if state is None else roster_safety_number(state)

    def join_code(self) -> str:
        state = self.state
        if state is None or state.join_code is None:
            return ""
        return str(joincode.JoinCode(state.join_code[0], state.join_code[1]))

    @property
    def discovering(self) -> bool:
        """True once the node browses and advertises by mDNS."""
        return self._discovery is not None

    def nearby_meetings(self) -> list[tuple[int, int]]:
        """(nameplate, laptops advertising it) for the meetings discovery sees,
        by nameplate only: nothing else about a meeting is on the LAN."""
        if self._discovery is None:
            return []
        counts: dict[int, int] = {}
        for peer in self._discovery.peers():
            if peer.nameplate is not None:
                counts[peer.nameplate] = counts.get(peer.nameplate, 0) + 1
        return sorted(counts.items())

    # -- the session ------------------------------------------------------------------

    def _emit(self, event: NodeEvent) -> None:
        if isinstance(event, InputRejected):
            self.rejections.append(event)
            del self.rejections[:-1000]
            log.warning("%s", event)
        if self._on_event is not None:
            self._on_event(event)

    def _flush(self, *, changed: bool = False) -> None:
        """After every call into the Session: send what it produced, pass on
        its round reports, then ``_after_change`` (``changed``: the Session
        said the meeting changed, whether or not the log grew)."""
        if self.session is None:
            return
        for send in self.session.take_sends():
            link = self.links.get(send.peer)
            if link is not None:
                link.send(send.payload)
        for report in self.session.take_round_reports():
            if not isinstance(report, RoundStarted | shuffle.Released):
                log.info("%s", report)  # fingerprints and reasons, never content
            self._emit(report)
        self._after_change(changed)

    def _after_change(self, changed: bool = False) -> None:
        """The one place ``MeetingChanged`` is emitted, and what follows a change."""
        state = self.state
        if state is None or self.session is None:
            return
        size = len(self.session.log)
        if changed or size != self._seen_log_size:
            # Whatever path added entries (a local action, a received frame, a
            # round this laptop released, a co-signature), the UI hears of it once.
            self._seen_log_size = size
            self._emit(MeetingChanged())
            self._report_own_ignored()
        self._cosign_tallies(state)
        self._schedule_ack()
        if state.epoch != self._known_epoch:
            self._known_epoch = state.epoch
            # New members may now be admitted; departed ones must go.
            self._dialer.redial()
            for peer, link in list(self.links.items()):
                if not self.may_link(peer):
                    link.close("no longer a member")
            if self._discovery is not None and state.join_code is not None:
                self._spawn(self._discovery.async_advertise(self.port, state.join_code[0]))

    def _schedule_ack(self) -> None:
        """Write an ``ack`` shortly, if this laptop owes one (the core
        decides: ``Session.ack_due``)."""
        if self._ack_scheduled or self._closing or self.session is None:
            return
        if self.session.ack_due():
            self._ack_scheduled = True
            self._spawn(self._ack_later())

    async def _ack_later(self) -> None:
        try:
            await asyncio.sleep(ACK_DELAY_S)
        finally:
            self._ack_scheduled = False
        # Anything written meanwhile may have acknowledged it already.
        if self.session is not None and not self._closing and self.session.ack_due():
            with contextlib.suppress(LocalProtocolError):
                self.perform(lambda s: s.ack())

    def _report_own_ignored(self) -> None:
        """Tell the person when an entry of theirs stopped counting (another
        entry sorted before it): nothing of theirs vanishes in silence."""
        if self.session is None:
            return
        for entry, refused in self.session.own_ignored():
            if entry.hash not in self._reported_ignored:
                self._reported_ignored.add(entry.hash)
                self._emit(OwnEntryIgnored(entry.hash, entry.type, refused))

    def _cosign_tallies(self, state: MeetingState) -> None:
        """Answer every close ``core.policies.tally_answers`` names: co-sign
        it, or object that it left out votes this laptop had seen."""
        if self._cosigning or self.session is None:
            return
        answers = tally_answers(state, self.identity.key, self.session.held_at_close)
        self._cosigning = True
        try:
            for answer in answers:
                if answer.object:
                    log.warning(
                        "objecting to a poll close (%d vote(s) left out)", len(answer.left_out)
                    )
                    action = partial(
                        Session.object_to_tally,
                        poll=answer.poll,
                        digest=answer.digest,
                        left_out=list(answer.left_out),
                    )
                else:
                    action = partial(Session.sign_tally, poll=answer.poll, digest=answer.digest)
                with contextlib.suppress(LocalProtocolError):
                    self.perform(action)
        finally:
            self._cosigning = False

    def perform(self, action: Callable[[Session], Entry]) -> Entry:
        """Run one local action on the Session and send what it produced."""
        if self.session is None:
            raise LocalProtocolError("not in a meeting yet")
        entry = action(self.session)
        self._flush()
        return entry

    def start_meeting(
        self,
        *,
        title: str,
        name: str,
        agenda: list[dict[str, Any]],
        settings: dict[str, Any] | None = None,
    ) -> str:
        """Create a meeting with this laptop as facilitator; returns the join code."""
        self.session = Session.create(
            self.identity,
            title=title,
            name=name,
            agenda=agenda,
            settings=settings,
            clock=self.clock,
        )
        self.publish_code(joincode.new_join_code())
        return self.join_code()

    def publish_code(self, code: joincode.JoinCode) -> None:
        """Make ``code`` the meeting's join code and advertise its number."""
        self.perform(lambda s: s.set_join_code(code.nameplate, code.words))
        state = self.state
        if self._discovery is not None and state is not None and state.join_code:
            self._spawn(self._discovery.async_advertise(self.port, state.join_code[0]))

    def _on_payload(self, link: Link, payload: bytes) -> None:
        if self.session is None or self.links.get(link.peer) is not link:
            return
        changed = False
        for event in self.session.receive(link.peer, payload):
            if isinstance(event, MeetingChanged):
                changed = True  # said once, by _flush
                continue
            self._emit(event)
            if isinstance(event, InputRejected) and event.fatal:
                link.close(event.code)
        self._flush(changed=changed)
        self._prepare_rounds_soon()

    # -- links --------------------------------------------------------------------------

    def may_link(self, key: bytes) -> bool:
        """Whether the link handshake admits ``key``: a member of the meeting,
        or, before this laptop is in the roster, the member who sponsored it."""
        state = self.state
        if state is not None and state.created:
            return state.is_member(key) or (
                key in self._bootstrap and not state.is_member(self.identity.key)
            )
        return key in self._bootstrap

    def _epoch(self) -> int:
        state = self.state
        return 0 if state is None else state.epoch

    def add_link(self, link: Link) -> None:
        """Take a link whose handshake is done (dialled or answered) and run it."""
        existing = self.links.get(link.peer)
        if existing is not None and not existing.closed:
            # Two links between one pair: both ends keep the first in an order
            # they share, whatever order they completed in and whoever dialled
            # them, so they agree without talking about it (SPEC §11.9).
            loser = existing if keep_link(self.identity.key, (existing, link)) is link else link
            loser.close("duplicate link")
            if loser is link:
                return
        self.links[link.peer] = link
        link.start(self._on_payload, self._on_link_closed)
        if self.session is not None:
            self.session.peer_connected(link.peer)
            self._flush()
        self._emit(PeerUp(link.peer))

    def _on_link_closed(self, link: Link) -> None:
        if self.links.get(link.peer) is link:
            del self.links[link.peer]
            if self.session is not None:
                self.session.peer_disconnected(link.peer)
            if not self._closing:
                self._emit(PeerDown(link.peer, link.close_reason))

    def _on_discovery_change(self) -> None:
        if self._discovery is not None:
            self._dialer.add_discovered(self._discovery.peers())

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        frames = FrameReader(reader, HANDSHAKE_LIMITS.max_bytes)
        task = asyncio.current_task()
        if task is not None:  # so close() can cancel a handshake in flight
            self._tasks.add(task)
        try:
            first = await asyncio.wait_for(frames.read(), HANDSHAKE_TIMEOUT_S)
            kind = _peek_type(first)
            if kind == "hi1" and self.session is not None:
                link = await Link.accept(
                    frames,
                    writer,
                    first,
                    self.identity,
                    self.session.mid,
                    self._epoch(),
                    self.may_link,
                )
                self.add_link(link)
            elif kind == JOIN_FIRST_TYPE and self.is_member:
                await self._sponsor.sponsor(frames, writer, first)  # it may refuse unanswered
            else:
                writer.close()
        except RemoteProtocolError as error:
            log.warning("incoming connection refused: %s: %s", error.code, error)
            writer.close()
        except LocalProtocolError as error:
            log.warning("incoming connection refused: %s", error)
            writer.close()
        except (LinkClosed, OSError, TimeoutError) as exc:
            log.debug("incoming connection dropped: %s", type(exc).__name__)
            writer.close()
        except asyncio.CancelledError:
            writer.close()  # the node is closing
        finally:
            if task is not None:
                self._tasks.discard(task)

    # -- joining ------------------------------------------------------------------------

    async def join(self, code_text: str, name: str, timeout: float = 10.0) -> None:
        """Join the meeting whose code someone read out; raises ``JoinError``
        (the run itself is ``net/joining.py``'s)."""
        admitted = await ask_to_join(self._discovery, code_text, self.identity, name, timeout)
        granted = admitted.granted
        self.session = Session.join(self.identity, granted.mid, granted.creator, self.clock)
        self._bootstrap.add(granted.sponsor)
        self.add_endpoint(admitted.host, admitted.port)
        self._on_discovery_change()
        self._dialer.dial_all()
        await wait_until_member(lambda: self.is_member, timeout)

    # -- templates, saves and records ------------------------------------------------------

    def start_template(
        self,
        template: Template,
        *,
        name: str,
        title: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> str:
        """Start a meeting from a template (``settings`` override the template's)."""
        code = self.start_meeting(
            title=title or template.title,
            name=name,
            agenda=template.agenda,
            settings={**template.settings, **(settings or {})},
        )
        self.template = template
        return code

    def record_template(self) -> Template | None:
        """The template to show with the record: the one this laptop started
        from, else the built-in one whose agenda the meeting has."""
        state = self.state
        if state is None:
            return None
        if self.template is not None and self.template.matches(state.steps):
            return self.template
        return template_for(state)

    def export(self, *, markdown: Path | None = None, json: Path | None = None) -> None:
        """Write the record as Markdown and/or JSON (only where asked)."""
        state = self.state
        if state is None or not state.created:
            raise LocalProtocolError("There is no meeting to export yet.")
        export_record(
            state,
            safety_number=self.safety_number(),
            template=self.record_template(),
            markdown=markdown,
            json=json,
        )

    async def save(self, path: Path, passphrase: str) -> int:
        """Save the meeting to ``path`` now (encrypted); returns the bytes written."""
        return await self._autosave.save(path, passphrase)

    async def keep_saved(self, path: Path, passphrase: str) -> None:
        """Keep an encrypted save at ``path`` from now on (``net/autosave.py``)."""
        await self._autosave.keep_saved(path, passphrase)

    def save_files(self) -> list[Path]:
        """The save files of this meeting this laptop wrote or opened (``net/autosave.py``)."""
        return self._autosave.files()

    async def delete_saves(self) -> list[Path]:
        """Overwrite and delete those files (the panic key); nothing is saved after."""
        return await self._autosave.delete_saves()

    def resume(
        self,
        session: Session,
        *,
        template: Template | None = None,
        save_file: SaveFile | None = None,
    ) -> None:
        """Carry on a meeting from a restored Session (``core.save.restore_session``)."""
        if self.session is not None:
            raise LocalProtocolError(
                "This laptop is already in a meeting; resume the save in a new relsec."
            )
        self.identity = session.identity
        self.session = session
        self.template = template
        if save_file is not None:
            self._autosave.keep_saving_to(save_file)
        self._flush(changed=True)

    async def resume_from(
        self,
        path: Path,
        passphrase: str,
        *,
        expected_mid: bytes | None = None,
        keep_saving: bool = False,
    ) -> None:
        """Open the save at ``path`` and carry on its meeting; with
        ``keep_saving`` the save is kept up to date at the same path."""
        await self._autosave.resume_from(
            path, passphrase, expected_mid=expected_mid, keep_saving=keep_saving
        )

    # -- anonymous rounds ------------------------------------------------------------------

    def submit_anonymous(self, request: AnonymousRequest) -> None:
        """Queue an anonymous request (``AnonymousAnswer``, ``AnonymousRating``,
        ``AnonymousVote`` or ``PauseRequest``, core/requests.py) for the next
        round. Raises ``LocalProtocolError`` with a plain sentence if it is not
        allowed now."""
        if self.session is None:
            raise LocalProtocolError("Join a meeting before sending anything anonymously.")
        self.session.submit_anonymous(request)

    def anonymous_capacity(self) -> int:
        """The most characters of text one anonymous answer can hold."""
        if self.session is None:
            return TEXT_CAPACITY
        return self.session.anonymous_capacity()

    async def _round_loop(self) -> None:
        while True:
            await asyncio.sleep(ROUND_TICK_S)
            session = self.session
            if session is None:
                continue
            try:
                session.tick_rounds()
                self._flush()
                self._prepare_rounds_soon()
            except Exception:  # a bug here must not stop the meeting's clock
                log.exception("round tick failed")

    def _prepare_rounds_soon(self) -> None:
        """Build a new round's slot (a ring signature) just after the frames
        already queued — this round's keys among them — are written, so the
        others are not kept waiting for them."""
        if self.session is not None and self.session.rounds_to_prepare():
            asyncio.get_running_loop().call_soon(self._prepare_rounds)

    def _prepare_rounds(self) -> None:
        if self.session is not None:
            self.session.prepare_rounds()
            self._flush()

    # -- time -----------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self._on_tick()
            except Exception:  # a bug here must not stop the meeting's clock
                log.exception("timer tick failed")

    def _on_tick(self) -> None:
        if self._discovery is not None:
            self._on_discovery_change()
        self._dialer.dial_all()
        if self.session is None:
            return
        self.session.tick()
        self._flush()
        self._watch_facilitator()
        self._autosave.tick()

    def _watch_facilitator(self) -> None:
        """If the facilitator's laptop has been unreachable for a while, say so
        in the log (``core.policies.FacilitatorWatch`` decides when); a
        majority of such declarations passes facilitation on."""
        state = self.state
        now_ms = int(time.monotonic() * 1000)
        absent = self._facilitator_watch.observe(now_ms, state, self.identity.key, self.links)
        if absent and state is not None and state.facilitator is not None:
            log.info("facilitator %s unreachable; declaring absent", short(state.facilitator))
            with contextlib.suppress(LocalProtocolError):
                self.perform(lambda s: s.declare_absent())


def _peek_type(payload: bytes) -> str:
    message = unpack(payload, HANDSHAKE_LIMITS)
    if isinstance(message, dict) and isinstance(message.get("t"), str):
        return str(message["t"])
    return ""


__all__ = ["Node", "NodeEvent", "PeerDown", "PeerUp"]
