"""A node: one member's laptop on the LAN, driving a core ``Session``.

Rules of this file:
- Every laptop is an equal peer: it listens, dials every member whose place
  it hears of (the ``where`` message, SPEC §12.13) and lets the link
  handshake decide who is a member. Only the facilitator's laptop admits
  joiners and is announced on mDNS, and only while joining is open (SPEC
  §12.1, §12.11): a role that follows facilitation, so losing any one node,
  the facilitator's included, loses nothing: every accepted entry is on
  every connected laptop, and facilitation passes on by the log's own rule
  (``facil.absent``), the successor's laptop then admitting and announcing.
- The core decides; this file moves bytes and keeps time. After every call
  into the Session its outgoing frames are routed to the links at once, and
  ``Node._after_change`` is the one place that tells the front end the
  meeting changed (``core.events.MeetingChanged``).
- The node is the pump; its collaborators do the rest: ``net/dialer.py``
  (whom to dial, and when), ``net/joining.py`` (joining by code, sponsoring
  others), ``net/autosave.py`` (the save file). What it does on its own
  initiative (co-signing tallies, declaring an unreachable facilitator
  absent) is decided by ``core/policies.py``.
- Sleep, a dropped network and a move cost links, never entries: links
  die by their timers, the dialer keeps every known place, and a laptop
  whose addresses change follows them (``following``, ``Node._move``; SPEC
  §11.8, §12.2).
- Front ends use its public methods only (``perform``, ``join``, ``panic``,
  ``join_addresses``...), never its attributes starting with ``_``.
- Logs name peers by short key fingerprints and errors by their codes; never
  contribution text, names, codes or keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..core import joincode, shuffle
from ..core.admission import JoinRequest
from ..core.anon import Report, RoundStarted
from ..core.codec import unpack
from ..core.errors import LocalError, LocalProtocolError, RemoteProtocolError
from ..core.events import Event, InputRejected, MeetingChanged, OwnEntryIgnored, short
from ..core.feed import Entry
from ..core.identity import Identity
from ..core.link import HANDSHAKE_LIMITS, HANDSHAKE_TIMEOUT_S, keep_link
from ..core.places import Place, PlacesHeard, where_message
from ..core.policies import (
    DEFAULT_ABSENT_AFTER_MS,
    FacilitatorWatch,
    PresenceWatch,
    tally_answers,
)
from ..core.record import roster_safety_number
from ..core.requests import TEXT_CAPACITY, AnonymousRequest
from ..core.session import Session
from ..core.state import MeetingState
from ..core.template import Template
from ..templates import template_for
from .autosave import Autosave, SaveFailed
from .dialer import Dialer
from .discovery import LOOPBACK, Discovery, choose_interfaces
from .files import SaveFile, export_record
from .joining import (
    ADMIT_WAIT_S,
    JOIN_FIRST_TYPE,
    Joiner,
    Sponsor,
    ask_to_join,
    wait_until_member,
)
from .link import FrameReader, Link, LinkClosed

log = logging.getLogger("relsec.node")

TICK_S = 1.0
ROUND_TICK_S = 0.05  # anonymous round deadlines and schedule (core.anon)
DEFAULT_ABSENT_AFTER_S = DEFAULT_ABSENT_AFTER_MS / 1000
# A clean quit waits at most this long for the linked laptops to take the
# departure in (each closes its link once it has folded it).
DEPART_WAIT_S = 2.0
# How long an owed ack waits (SPEC §6.10): long enough that an entry this
# laptop writes anyway (a vote, a co-signature) carries the acknowledgement
# instead, short enough that settlement follows within about a round trip.
ACK_DELAY_S = 0.5
LISTEN_ATTEMPTS = 5  # ephemeral ports to try until every address has the same one
ADDRESS_CHECK_S = 2.0  # how often a laptop looks whether its addresses changed (SPEC §12.2)


def following(requested: str | None) -> Callable[[], list[str]] | None:
    """How a node finds its addresses again after the network changed under
    it (SPEC §12.2): the same choice as at start (``choose_interfaces``),
    made again. None when the person named an address: that one cannot move."""
    try:
        ipaddress.ip_address((requested or "").strip())
    except ValueError:
        return partial(choose_interfaces, requested)  # an interface name, or the default
    return None


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

# The facilitator's answer to a pending join (SPEC §12.8): True admits.
AdmissionPolicy = Callable[[JoinRequest], Awaitable[bool]]


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
        admission: AdmissionPolicy | None = None,
        follow: Callable[[], list[str]] | None = None,
    ) -> None:
        self.identity = identity or Identity.generate()
        self.interfaces = interfaces
        # Where this laptop is now (``following``): looked up every
        # ADDRESS_CHECK_S; None keeps ``interfaces`` for good.
        self._follow = follow
        self._next_address_check = 0.0
        self._moving = False
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
        self._presence_watch = PresenceWatch(round(absent_after_s * 1000))
        self._known_epoch = -1
        self._closing = False
        self._cosigning = False
        self._ack_scheduled = False
        self._reported_ignored: set[bytes] = set()
        self._seen_log_size = 0
        self.rejections: list[InputRejected] = []
        self.template: Template | None = None  # the template this laptop started from
        self._sponsor = Sponsor(self)
        # None admits every joiner who proved the code (headless peers,
        # benchmarks); the app asks the facilitator (``set_admission``).
        self._admission = admission
        self._places: dict[bytes, tuple[Place, ...]] = {}  # members' listening places
        self._advertised: int | None = None  # the nameplate on the air, if any
        self._nameplate: int | None = None  # the meeting's, kept when a removal retires a code
        self._joining = False  # ask_to_join browses on its own
        self._known_viewers: frozenset[bytes] = frozenset()
        self._dialer = Dialer(
            self, spawn=self._spawn, may_link=self.may_link, on_link=self.add_link
        )
        self._autosave = Autosave(self, spawn=self._spawn, on_failed=self._emit)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()
        if self._use_mdns:
            # Sockets only: nothing is announced or asked from the lobby.
            self._discovery = Discovery(self.interfaces, on_change=self._on_discovery_change)
            await self._discovery.async_start()
        self._spawn(self._timer_loop())
        self._spawn(self._round_loop())
        log.info("listening on %s, port %d", ", ".join(self.interfaces), self.port)

    async def _listen(self) -> None:
        """One listener per chosen address, all on one port: mDNS advertises
        exactly these addresses with that port (SPEC §12.2), so a peer that
        reaches this laptop through any of its interfaces can connect, and
        nothing listens where nothing is advertised (never the wildcard)."""
        self._servers, self.port = await self._open_listeners(self.interfaces, self.port)

    async def _open_listeners(
        self, hosts: list[str], wanted: int
    ) -> tuple[list[asyncio.Server], int]:
        """Listeners on every one of ``hosts`` at one port (``wanted``, or
        one the OS picks when 0); raises ``OSError`` if that cannot be."""
        for attempt in range(LISTEN_ATTEMPTS):
            port = wanted
            servers: list[asyncio.Server] = []
            try:
                for host in hosts:
                    server = await asyncio.start_server(self._on_connection, host, port)
                    servers.append(server)
                    port = server.sockets[0].getsockname()[1]
            except OSError:
                for server in servers:
                    server.close()
                # A port the OS picked on the first address can be taken on
                # another one: pick again. A port the person chose cannot move.
                if wanted != 0 or attempt == LISTEN_ATTEMPTS - 1:
                    raise
                continue
            return servers, port
        raise OSError("no port free on every address")  # not reached: the loop raises

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

    async def depart(self, wait_s: float = DEPART_WAIT_S) -> int:
        """Leave the meeting cleanly (a clean quit): write ``roster.leave``,
        then wait, at most ``wait_s``, until every laptop linked now has taken
        it in. A laptop closes its link to a member once it has folded their
        departure (``_after_change``), so a closed link is the receipt; a
        laptop not linked now hears of it from the others. Returns how many
        linked laptops did not confirm in time (0: all did). The caller
        closes the node after."""
        if self.session is None or not self.is_member:
            return 0
        self.perform(Session.leave)
        waiting = list(self.links.values())
        deadline = time.monotonic() + wait_s
        while any(not link.closed for link in waiting) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        unconfirmed = sum(1 for link in waiting if not link.closed)
        if unconfirmed:
            log.info("departure: %d linked laptop(s) did not confirm in time", unconfirmed)
        return unconfirmed

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
    def is_viewer(self) -> bool:
        """This laptop is a room display of its meeting (SPEC §12.12)."""
        state = self.state
        return state is not None and self.identity.key in state.viewers

    def join_addresses(self) -> list[str]:
        """The address form of the join code, one per listening address
        (SPEC §12.3): what the facilitator's screen shows for networks
        where multicast is blocked. Empty when this laptop does not admit."""
        state = self.state
        if state is None or state.join_code is None or not self.admits_joiners():
            return []
        code = joincode.JoinCode(state.join_code[0], state.join_code[1])
        return [joincode.format_join_address(code, host, port) for host, port in self.listening]

    @property
    def advertising(self) -> bool:
        """True while this laptop announces its meeting on mDNS."""
        return self._advertised is not None

    @property
    def browsing(self) -> bool:
        """True while this laptop asks the LAN for meetings (SPEC §12.1:
        only while joining by the code alone, or while it has no link)."""
        return self._discovery is not None and self._discovery.browsing

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
        viewers = frozenset(state.viewers)
        if state.epoch != self._known_epoch or viewers != self._known_viewers:
            self._known_epoch, self._known_viewers = state.epoch, viewers
            # New members may now be admitted; departed ones must go.
            self._dialer.redial()
            for peer, link in list(self.links.items()):
                if not self.may_link(peer):
                    link.close("no longer a member")
            self._share_places()
        if state.join_code is not None:
            self._nameplate = state.join_code[0]
        self._keep_a_code(state)
        self._sync_advert()

    def _keep_a_code(self, state: MeetingState) -> None:
        """A removal retired the code (SPEC §12.11): while joining is open,
        the facilitator's laptop publishes a fresh one at once."""
        if (
            state.join_code is None
            and state.joining_open
            and state.facilitator == self.identity.key
            and self.is_member
        ):
            with contextlib.suppress(LocalProtocolError):
                # Same nameplate: laptops looking for the meeting still find it.
                self.publish_code(joincode.new_join_code(self._nameplate))

    def _sync_advert(self) -> None:
        """Announce the meeting exactly while this laptop admits joiners
        (SPEC §12.1); withdrawing sends goodbye packets."""
        if self._discovery is None or self._closing:
            return
        state = self.state
        wanted = None
        if state is not None and state.join_code is not None and self.admits_joiners():
            wanted = state.join_code[0]
        if wanted == self._advertised:
            return
        self._advertised = wanted
        if wanted is None:
            self._spawn(self._discovery.async_withdraw())
        else:
            self._spawn(self._discovery.async_advertise(self.port, wanted))

    # -- admission ----------------------------------------------------------------------

    def admits_joiners(self) -> bool:
        """This laptop sponsors joins now: it is the facilitator's, and the
        facilitator has joining open (SPEC §12.8, §12.11)."""
        state = self.state
        return (
            state is not None
            and state.joining_open
            and state.facilitator == self.identity.key
            and self.is_member
        )

    def set_admission(self, policy: AdmissionPolicy | None) -> None:
        """Who answers a pending join: ``policy`` (the app asks the
        facilitator), or None to admit everyone who proved the code."""
        self._admission = policy

    async def decide_admission(self, request: JoinRequest) -> bool:
        """The facilitator's answer to ``request`` (no answer in
        ``ADMIT_WAIT_S`` is a no)."""
        if self._admission is None:
            return True
        try:
            return await asyncio.wait_for(self._admission(request), ADMIT_WAIT_S)
        except TimeoutError:
            return False

    def set_joining(self, open_: bool) -> Entry:
        """The facilitator opens or closes joining (a ``join.open`` entry)."""
        return self.perform(lambda s: s.act("join.open", {"open": open_}))

    # -- where members listen (SPEC §12.13) -----------------------------------------------

    def _places_table(self) -> dict[bytes, list[Place]]:
        state = self.state
        if state is None or not self.is_member:
            return {}  # a display or a joiner not yet in: nothing to tell
        table = {key: list(spots) for key, spots in self._places.items() if state.is_member(key)}
        table[self.identity.key] = list(self.listening)
        return table

    def _where(self) -> bytes | None:
        table = self._places_table()
        if self.session is None or not table:
            return None
        return where_message(self.session.mid, table)

    def _share_places(self) -> None:
        message = self._where()
        if message is not None:
            for link in list(self.links.values()):
                link.send(message)

    def _heard_places(self, heard: PlacesHeard) -> None:
        state = self.state
        if state is None:
            return
        changed = False
        for key, spots in heard.places.items():
            if key == self.identity.key or not state.is_member(key):
                continue
            if self._places.get(key) != spots:
                self._places[key] = spots
                changed = True
            if key not in self.links:
                for host, port in spots:
                    self._dialer.add(host, port)
        if changed:
            self._dialer.dial_all()
            self._share_places()

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
        """Make ``code`` the meeting's join code (advertised by
        ``_sync_advert`` while this laptop admits)."""
        self.perform(lambda s: s.set_join_code(code.nameplate, code.words))

    def _on_payload(self, link: Link, payload: bytes) -> None:
        if self.session is None or self.links.get(link.peer) is not link:
            return
        changed = False
        for event in self.session.receive(link.peer, payload):
            if isinstance(event, MeetingChanged):
                changed = True  # said once, by _flush
                continue
            if isinstance(event, PlacesHeard):
                self._heard_places(event)
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
            if state.is_member(self.identity.key):
                # Members link with members and with the room displays (§12.12).
                return state.is_member(key) or key in state.viewers
            return state.is_member(key) or key in self._bootstrap
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
            where = self._where()
            if where is not None:
                link.send(where)
        self._emit(PeerUp(link.peer))

    def _on_link_closed(self, link: Link) -> None:
        if self.links.get(link.peer) is link:
            del self.links[link.peer]
            if self.session is not None:
                self.session.peer_disconnected(link.peer)
            if not self._closing:
                self._emit(PeerDown(link.peer, link.close_reason))

    def _on_discovery_change(self) -> None:
        if self._discovery is None:
            return
        peers = self._discovery.peers()
        if self._nameplate is not None:  # only our meeting's laptop
            peers = [peer for peer in peers if peer.nameplate == self._nameplate]
        self._dialer.add_discovered(peers)

    def _find_the_meeting_again(self) -> None:
        """A member or display with no link at all (resumed from a save, or
        every other laptop restarted) browses for its meeting's nameplate,
        which the laptop that admits announces while joining is open, and
        stops once it has a link (SPEC §12.1): the `where` message does the
        rest."""
        discovery = self._discovery
        if discovery is None or self._joining or self._closing:
            return
        lost = (
            self._nameplate is not None
            and (self.is_member or self.is_viewer)
            and not self.links
            and not self.admits_joiners()
        )
        if lost and not discovery.browsing:
            self._spawn(discovery.async_browse())
        elif not lost and discovery.browsing:
            self._spawn(discovery.async_stop_browsing())

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

    async def join(
        self,
        code_text: str,
        name: str,
        timeout: float = 10.0,
        *,
        display: bool = False,
        on_waiting: Callable[[], None] | None = None,
    ) -> None:
        """Join the meeting whose code someone read out, or typed with its
        address (``CODE @ HOST:PORT``); a ``display`` joins as a room display
        (SPEC §12.12). ``on_waiting``: the facilitator is being asked. Raises
        ``JoinError`` (the run itself is ``net/joining.py``'s)."""
        joiner = Joiner(self.identity, name, display=display, on_waiting=on_waiting)
        self._joining = True
        try:
            admitted = await ask_to_join(self._discovery, code_text, joiner, timeout)
        finally:
            self._joining = False
        granted = admitted.granted
        self.session = Session.join(self.identity, granted.mid, granted.creator, self.clock)
        self._bootstrap.add(granted.sponsor)
        self.add_endpoint(admitted.host, admitted.port)
        self._dialer.dial_all()
        if display:
            await wait_until_member(lambda: self.is_viewer, timeout)
        else:
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

    def saving_to(self) -> tuple[Path, bool] | None:
        """Where this laptop keeps the meeting saved (``--save``/``--resume``)
        and whether a save has been written there yet; None if nowhere."""
        return self._autosave.kept_at()

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
        self._check_addresses()
        if self._discovery is not None:
            self._find_the_meeting_again()
            self._on_discovery_change()
        self._dialer.dial_all()
        if self.session is None:
            return
        self.session.tick()
        self._flush()
        self._watch_facilitator()
        self._watch_presence()
        self._autosave.tick()

    # -- sleep, moves and drops (SPEC §11.8, §12.2) -------------------------------------

    def _check_addresses(self) -> None:
        """Every ADDRESS_CHECK_S: has this laptop moved to other addresses
        (another network, a new DHCP lease)? Then it follows them. An
        interface that is down or has lost its address is a dropped network,
        not a move: the laptop keeps its listeners and waits for it to come
        back (its links and the dialer do the rest)."""
        if self._follow is None or self._moving or self._closing:
            return
        now = time.monotonic()
        if now < self._next_address_check:
            return
        self._next_address_check = now + ADDRESS_CHECK_S
        try:
            current = self._follow()
        except LocalError:  # the named interface has no address right now
            return
        if not current or current == self.interfaces:
            return
        if current == [LOOPBACK] and self.interfaces != [LOOPBACK]:
            return  # only loopback left: the network is gone for now
        self._moving = True
        self._spawn(self._move(current))

    async def _move(self, addresses: list[str]) -> None:
        """Listen, advertise and link from ``addresses`` instead of the old
        ones: listeners on the new addresses (the same port if it is free
        there), links bound to an address this laptop no longer has closed
        at once (they are dead, whatever their timers say), mDNS started
        again on the new addresses, and every known place dialled again."""
        try:
            try:
                servers, port = await self._open_listeners(addresses, self.port)
            except OSError:
                servers, port = await self._open_listeners(addresses, 0)
        except OSError as exc:
            log.warning("addresses changed but cannot listen there: %s", type(exc).__name__)
            self._moving = False
            return
        try:
            old_servers, self._servers = self._servers, servers
            self.interfaces, self.port = addresses, port
            for server in old_servers:
                server.close()
            for link in list(self.links.values()):
                local = link.local_address
                if isinstance(local, tuple) and local and local[0] not in addresses:
                    link.close("this laptop's address changed")
            log.info("addresses changed: listening on %s, port %d", ", ".join(addresses), port)
            if self._discovery is not None:
                await self._restart_discovery(addresses)
            self._dialer.redial()
            self._dialer.dial_all()
        finally:
            self._moving = False

    async def _restart_discovery(self, addresses: list[str]) -> None:
        """mDNS is bound to addresses: the old ones are gone, so answer again
        from the new ones, under a new random instance name (the others
        resolve it afresh: SPEC §12.2), announcing only while this laptop
        admits joiners (§12.1)."""
        old = self._discovery
        discovery = Discovery(addresses, on_change=self._on_discovery_change)
        await discovery.async_start()
        self._discovery = discovery
        # Quiet mDNS (SPEC §12.1): the new responder announces only if this
        # laptop admits joiners now; _sync_advert decides, as everywhere.
        self._advertised = None
        self._sync_advert()
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.async_close(), 3)

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

    def _watch_presence(self) -> None:
        """Declare away the members this laptop has not reached for the
        absence timeout, and say this laptop is back once it reaches the
        room again (``core.policies.PresenceWatch`` decides; the log's
        majority rule makes a member away, SPEC §6.1)."""
        now_ms = int(time.monotonic() * 1000)
        actions = self._presence_watch.observe(now_ms, self.state, self.identity.key, self.links)
        for key in actions.away:
            log.info("member %s unreachable; declaring away", short(key))
            with contextlib.suppress(LocalProtocolError):
                self.perform(partial(Session.declare_away, who=key))
        if actions.back:
            log.info("declared away, reachable again: writing roster.back")
            with contextlib.suppress(LocalProtocolError):
                self.perform(Session.come_back)


def _peek_type(payload: bytes) -> str:
    message = unpack(payload, HANDSHAKE_LIMITS)
    if isinstance(message, dict) and isinstance(message.get("t"), str):
        return str(message["t"])
    return ""


__all__ = ["Node", "NodeEvent", "PeerDown", "PeerUp"]
