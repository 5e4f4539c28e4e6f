"""A node: one member's laptop on the LAN, driving a core ``Session``.

Rules of this file:
- Every laptop is an equal peer: it listens, advertises by mDNS, dials every
  relsec instance it discovers and lets the link handshake decide who is a
  member. Losing any one node, the facilitator's included, loses nothing:
  every accepted entry is on every connected laptop, and facilitation passes
  on by the log's own rule (``facil.absent``).
- The core decides; this file moves bytes and keeps time. After every call
  into the Session its outgoing frames are routed to the links at once.
- Logs name peers by short key fingerprints and errors by their codes; never
  contribution text, names, codes or keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..core import admission, joincode, shuffle
from ..core.anon import Report, RoundStarted
from ..core.codec import frame, unpack
from ..core.errors import LocalProtocolError, RemoteProtocolError
from ..core.events import Event, InputRejected, MeetingChanged, short
from ..core.feed import Entry
from ..core.identity import Identity
from ..core.link import HANDSHAKE_LIMITS, HANDSHAKE_TIMEOUT_S, FloodGuard, keep_link
from ..core.record import roster_safety_number
from ..core.requests import TEXT_CAPACITY, AnonymousRequest
from ..core.save import OtherMeeting, SaveError, payload_of, restore_session
from ..core.session import Session
from ..core.state import MeetingState
from ..core.template import Template, TemplateError, parse_template
from ..templates import template_for
from .discovery import Discovery
from .files import SaveFile, export_record
from .joining import JOIN_FIRST_TYPE, JOIN_TIMEOUT_S, drive_joiner, drive_sponsor
from .link import FrameReader, Link, LinkClosed

log = logging.getLogger("relsec.node")

TICK_S = 1.0
ROUND_TICK_S = 0.05  # anonymous round deadlines and schedule (core.anon)
DIAL_BACKOFF_MIN_S = 0.25
DIAL_BACKOFF_MAX_S = 8.0
DEFAULT_ABSENT_AFTER_S = 15.0
MAX_JOIN_REFUSALS = 3
# A join run that spends a guess without proving the code (a wrong code, a
# hang-up) uses up one of these; with none left, joins wait. An online guesser
# gets at most this many guesses a minute from each laptop (SPEC §12.8).
JOIN_ATTEMPTS_PER_MINUTE = 12
AUTOSAVE_S = 2.0  # at most this often while the meeting changes (and once on close)
AUTOSAVE_RETRY_S = 30.0  # after a failed automatic save


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class JoinError(Exception):
    """Joining failed; ``str()`` is one plain sentence for the person joining."""


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


@dataclass(frozen=True, slots=True)
class SaveFailed:
    """An automatic save did not happen; ``message`` is for the person, not the log."""

    message: str

    def __str__(self) -> str:
        return "automatic save failed"


NodeEvent = Event | PeerUp | PeerDown | SaveFailed | Report


@dataclass(slots=True)
class _Endpoint:
    """A discovered listening address and what we know of it."""

    host: str
    port: int
    key: bytes | None = None
    next_try: float = 0.0
    backoff: float = DIAL_BACKOFF_MIN_S
    dialing: bool = False


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
        self._absent_after = absent_after_s
        self._use_mdns = use_mdns
        self._discovery: Discovery | None = None
        self._server: asyncio.Server | None = None
        self._endpoints: dict[tuple[str, int], _Endpoint] = {}
        self._bootstrap: set[bytes] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._facilitator_missing_since: float | None = None
        self._declared_term = -1
        self._known_epoch = -1
        self._code_guard = admission.CodeGuard()
        self._closing = False
        self._cosigning = False
        self._seen_log_size = 0
        self._join_budget = FloodGuard(rate=JOIN_ATTEMPTS_PER_MINUTE / 60, burst=5)
        self.rejections: list[InputRejected] = []
        self.template: Template | None = None  # the template this laptop started from
        self._save_file: SaveFile | None = None  # where --save keeps the meeting
        self._saved_marker: tuple[int, int] | None = None
        self._last_save = 0.0
        self._autosave_task: asyncio.Task[Any] | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        host = self.interfaces[0]
        self._server = await asyncio.start_server(self._on_connection, host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self._use_mdns:
            self._discovery = Discovery(self.interfaces, on_change=self._on_discovery_change)
            await self._discovery.async_start()
            self._spawn(self._discovery.async_advertise(self.port, None))
        self._spawn(self._timer_loop())
        self._spawn(self._round_loop())
        log.info("listening on %s:%d", host, self.port)

    async def close(self) -> None:
        self._closing = True
        await self._final_save()
        for link in list(self.links.values()):
            link.close("node closing")
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._discovery is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._discovery.async_close(), 3)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def add_endpoint(self, host: str, port: int) -> None:
        """A place to dial that did not come from mDNS (tests, ``--peer``)."""
        self._endpoints.setdefault((host, port), _Endpoint(host, port))

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

    # -- the session ------------------------------------------------------------------

    def _emit(self, event: NodeEvent) -> None:
        if isinstance(event, InputRejected):
            self.rejections.append(event)
            del self.rejections[:-1000]
            log.warning("%s", event)
        if self._on_event is not None:
            self._on_event(event)

    def _flush(self) -> None:
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
        self._after_change()

    def _after_change(self) -> None:
        state = self.state
        if state is None or self.session is None:
            return
        size = len(self.session.log)
        if size != self._seen_log_size:
            # Whatever path added entries (a received frame, a round this
            # laptop released, a co-signature), the UI hears of it once.
            self._seen_log_size = size
            self._emit(MeetingChanged())
        self._cosign_tallies(state)
        if state.epoch != self._known_epoch:
            self._known_epoch = state.epoch
            # New members may now be admitted; departed ones must go.
            for endpoint in self._endpoints.values():
                endpoint.next_try, endpoint.backoff = 0.0, DIAL_BACKOFF_MIN_S
            for peer, link in list(self.links.items()):
                if not self._may_link(peer):
                    link.close("no longer a member")
            if self._discovery is not None and state.join_code is not None:
                self._spawn(self._discovery.async_advertise(self.port, state.join_code[0]))

    def _cosign_tallies(self, state: MeetingState) -> None:
        """Co-sign every closed tally this laptop agrees with (it recomputed
        it from its own log; a different digest would not be accepted)."""
        if self._cosigning or not state.is_member(self.identity.key):
            return
        unsigned = [
            poll.id
            for poll in state.polls.values()
            if poll.tally_digest is not None and self.identity.key not in poll.cosigners
        ]
        self._cosigning = True
        try:
            for poll_id in unsigned:
                with contextlib.suppress(LocalProtocolError):
                    self.act(partial(Session.sign_tally, poll=poll_id))
        finally:
            self._cosigning = False

    def act(self, action: Callable[[Session], Entry]) -> Entry:
        """Run one local action on the Session and send what it produced."""
        if self.session is None:
            raise LocalProtocolError("not in a meeting yet")
        entry = action(self.session)
        self._flush()
        self._emit(MeetingChanged())
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
        self._publish_code(joincode.new_join_code())
        return self.join_code()

    def _publish_code(self, code: joincode.JoinCode) -> None:
        self.act(lambda s: s.set_join_code(code.nameplate, code.words))
        state = self.state
        if self._discovery is not None and state is not None and state.join_code:
            self._spawn(self._discovery.async_advertise(self.port, state.join_code[0]))

    def _on_payload(self, link: Link, payload: bytes) -> None:
        if self.session is None or self.links.get(link.peer) is not link:
            return
        for event in self.session.receive(link.peer, payload):
            self._emit(event)
            if isinstance(event, InputRejected) and event.fatal:
                link.close(event.code)
        self._flush()
        self._prepare_rounds_soon()

    # -- links --------------------------------------------------------------------------

    def _may_link(self, key: bytes) -> bool:
        state = self.state
        if state is not None and state.created:
            return state.is_member(key) or (
                key in self._bootstrap and not state.is_member(self.identity.key)
            )
        return key in self._bootstrap

    def _epoch(self) -> int:
        state = self.state
        return 0 if state is None else state.epoch

    def _register(self, link: Link) -> None:
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

    async def _dial(self, endpoint: _Endpoint) -> None:
        endpoint.dialing = True
        try:
            if self.session is None:
                return
            link = await Link.connect(
                endpoint.host,
                endpoint.port,
                self.identity,
                self.session.mid,
                self._epoch(),
                self._may_link,
            )
            endpoint.key = link.peer
            endpoint.backoff = DIAL_BACKOFF_MIN_S
            self._register(link)
        except (RemoteProtocolError, LinkClosed, OSError, TimeoutError) as exc:
            code = getattr(exc, "code", type(exc).__name__)
            log.debug("dial %s:%d failed: %s", endpoint.host, endpoint.port, code)
            endpoint.next_try = time.monotonic() + endpoint.backoff * (0.5 + random.random())
            endpoint.backoff = min(DIAL_BACKOFF_MAX_S, endpoint.backoff * 2)
        finally:
            endpoint.dialing = False

    def _dial_all(self) -> None:
        if self.session is None or self._closing:
            return
        now = time.monotonic()
        for endpoint in self._endpoints.values():
            if endpoint.dialing or endpoint.next_try > now:
                continue
            if endpoint.key is not None and endpoint.key in self.links:
                continue
            if endpoint.port == self.port and endpoint.host in self.interfaces:
                continue
            self._spawn(self._dial(endpoint))

    def _on_discovery_change(self) -> None:
        if self._discovery is None:
            return
        for peer in self._discovery.peers():
            for host in peer.addresses:
                self.add_endpoint(host, peer.port)
        self._dial_all()

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
                    self._may_link,
                )
                self._register(link)
            elif kind == JOIN_FIRST_TYPE and self.is_member:
                if self._join_budget.available(time.monotonic()):
                    await self._sponsor(frames, writer, first)
                else:
                    log.info("join attempt refused: too many wrong codes, try again in a minute")
                    writer.close()
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

    async def _sponsor(
        self, frames: FrameReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        """Run the PAKE with a joiner; on the right code, add them to the roster.
        Every run that spent a guess without proving the code counts against
        the code, which changes after a few (``admission.CodeGuard``)."""
        current = self._current_code()
        if current is None or self.session is None:
            writer.close()
            return
        if self._code_guard.code != current:
            self._code_guard = admission.CodeGuard(code=current)
        handshake = admission.SponsorHandshake(current)
        try:
            request = await asyncio.wait_for(
                drive_sponsor(handshake, first, frames.read, writer), JOIN_TIMEOUT_S
            )
            self.act(lambda s: s.add_member(request.key, request.ring_key, request.name))
            session = self.session
            writer.write(frame(handshake.grant(session.mid, session.creator, self.identity.key)))
            await writer.drain()
            log.info("admitted a new member %s", short(request.key))
        except RemoteProtocolError as error:
            log.info("join attempt failed: %s", error.code)
        except LocalProtocolError as error:
            log.info("join request refused: %s", error)
        finally:
            writer.close()
            if handshake.guess_spent and not handshake.confirmed:
                self._join_budget.allow(time.monotonic())
            if self._code_guard.settle(handshake):
                log.info("too many wrong join codes: changing the code")
                self._publish_code(self._code_guard.rotate())

    def _current_code(self) -> joincode.JoinCode | None:
        state = self.state
        if state is None or state.join_code is None:
            return None
        return joincode.JoinCode(state.join_code[0], state.join_code[1])

    async def join(self, code_text: str, name: str, timeout: float = 10.0) -> None:
        """Join the meeting whose code someone read out; raises ``JoinError``."""
        try:
            code = joincode.parse_join_code(code_text)
        except joincode.BadJoinCode as exc:
            raise JoinError(str(exc)) from exc
        if self._discovery is None:
            raise JoinError("Joining needs discovery on the network; start without --no-mdns.")
        found = await self._discovery.async_wait_for(code.nameplate, timeout)
        if not found:
            raise JoinError(
                f"No meeting with the number {code.nameplate} answered on this network; check "
                "that you are on the same Wi-Fi as the others and that the number is right."
            )
        last_error = ""
        refusals = 0
        for peer in found:
            if refusals >= MAX_JOIN_REFUSALS:
                break
            for host in peer.addresses[:1]:  # one try per laptop, whatever its addresses
                try:
                    granted = await self._join_via(host, peer.port, code, name)
                except admission.WrongCode:
                    # Two meetings nearby can share a number: another one may
                    # know these words. A few tries at most, each costs a guess.
                    refusals += 1
                    last_error = "wrong_code"
                    continue
                except (RemoteProtocolError, OSError, TimeoutError, LinkClosed) as exc:
                    last_error = getattr(exc, "code", type(exc).__name__)
                    continue
                self.session = Session.join(self.identity, granted.mid, granted.creator, self.clock)
                self._bootstrap.add(granted.sponsor)
                self.add_endpoint(host, peer.port)
                self._on_discovery_change()
                self._dial_all()
                await self._wait_until_member(timeout)
                return
        if refusals:
            raise JoinError(
                "That code was not accepted: check the words with the person who "
                "shared it and try again (after a few wrong tries the code changes)."
            )
        raise JoinError(
            f"Could not reach the meeting ({last_error or 'no answer'}); move closer to the "
            "others' network and try again."
        )

    async def _join_via(
        self, host: str, port: int, code: joincode.JoinCode, name: str
    ) -> admission.JoinGranted:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), HANDSHAKE_TIMEOUT_S
        )
        frames = FrameReader(reader, HANDSHAKE_LIMITS.max_bytes)
        try:
            joiner = admission.JoinerHandshake(
                code, self.identity.key, self.identity.ring_key, name
            )
            return await asyncio.wait_for(drive_joiner(joiner, frames.read, writer), JOIN_TIMEOUT_S)
        finally:
            writer.close()

    async def _wait_until_member(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_member:
            if time.monotonic() > deadline:
                raise JoinError(
                    "The code was right but the meeting did not arrive in time; "
                    "stay on the network and try joining again."
                )
            await asyncio.sleep(0.05)

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

    def _log_marker(self) -> tuple[int, int]:
        session = self.session
        return (0, 0) if session is None else (len(session.log), len(session.log.forks))

    async def _write_save(self, target: SaveFile) -> int:
        session = self.session
        if session is None:
            raise LocalProtocolError("There is no meeting to save yet.")
        # Snapshot on the loop (the log changes under it), seal and write off it.
        payload = payload_of(session, template=self.template.text if self.template else None)
        marker = self._log_marker()
        size = await asyncio.to_thread(target.write, payload)
        if target is self._save_file:
            self._saved_marker = marker
        log.info("meeting saved: %d entries, %d bytes", len(payload.envelopes), size)
        return size

    async def save(self, path: Path, passphrase: str) -> int:
        """Save the meeting to ``path`` now (encrypted); returns the bytes written."""
        if self.session is None:
            raise LocalProtocolError("There is no meeting to save yet.")
        target = await asyncio.to_thread(SaveFile.prepare, path, passphrase)
        return await self._write_save(target)

    async def keep_saved(self, path: Path, passphrase: str) -> None:
        """Keep an encrypted save at ``path`` from now on: rewritten while the
        meeting changes (at most every ``AUTOSAVE_S``) and when the node closes."""
        self._save_file = await asyncio.to_thread(SaveFile.prepare, path, passphrase)
        self._saved_marker = None
        if self.session is not None:
            await self._write_save(self._save_file)

    def _maybe_autosave(self) -> None:
        target = self._save_file
        if target is None or self.session is None or self._closing:
            return
        if self._autosave_task is not None and not self._autosave_task.done():
            return
        if self._log_marker() == self._saved_marker:
            return
        if time.monotonic() - self._last_save < AUTOSAVE_S:
            return
        self._last_save = time.monotonic()
        self._autosave_task = self._spawn(self._autosave(target))

    async def _autosave(self, target: SaveFile) -> None:
        try:
            await self._write_save(target)
        except (SaveError, LocalProtocolError) as error:  # the disk, or no meeting: one sentence
            log.warning("automatic save failed: %s", error.code)
            self._emit(SaveFailed(str(error)))
            if isinstance(error, OtherMeeting):
                self._save_file = None  # that file stays as it is: stop trying
            else:  # a full disk, say: try again, but not every tick
                self._last_save = time.monotonic() + AUTOSAVE_RETRY_S - AUTOSAVE_S

    async def _final_save(self) -> None:
        """On close: let a running save finish (so it cannot land after this
        one with older content), then save what changed since."""
        if self._autosave_task is not None and not self._autosave_task.done():
            with contextlib.suppress(Exception):
                await self._autosave_task
        if (
            self._save_file is not None
            and self.session is not None
            and self._log_marker() != self._saved_marker
        ):
            await self._autosave(self._save_file)

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
            self._save_file = save_file
            self._saved_marker = self._log_marker()
        self._flush()
        self._emit(MeetingChanged())

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
        if self.session is not None:
            raise LocalProtocolError(
                "This laptop is already in a meeting; resume the save in a new relsec."
            )
        save_file, payload = await asyncio.to_thread(SaveFile.opened, path, passphrase)
        if expected_mid is not None and payload.mid != expected_mid:
            raise OtherMeeting("This save file belongs to another meeting.")
        session = await asyncio.to_thread(restore_session, payload, self.clock)
        template = None
        if payload.template:
            with contextlib.suppress(TemplateError):
                template = parse_template(payload.template, "the saved template")
        self.resume(session, template=template, save_file=save_file if keep_saving else None)
        log.info("meeting resumed: %d entries", len(session.log))

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
                before = len(session.log)
                session.tick_rounds()
                self._flush()
                if len(session.log) != before:
                    self._emit(MeetingChanged())
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
        self._dial_all()
        if self.session is None:
            return
        self.session.tick()
        self._flush()
        self._watch_facilitator()
        self._maybe_autosave()

    def _watch_facilitator(self) -> None:
        """If the facilitator's laptop has been unreachable for a while, say so
        in the log; a majority of such declarations passes facilitation on."""
        state = self.state
        if state is None or not self.is_member or state.facilitator in (None, self.identity.key):
            self._facilitator_missing_since = None
            return
        if state.facilitator in self.links:
            self._facilitator_missing_since = None
            return
        now = time.monotonic()
        if self._facilitator_missing_since is None:
            self._facilitator_missing_since = now
        elif now - self._facilitator_missing_since >= self._absent_after and (
            self._declared_term != state.term
        ):
            self._declared_term = state.term
            log.info("facilitator %s unreachable; declaring absent", short(state.facilitator))
            with contextlib.suppress(LocalProtocolError):
                self.act(lambda s: s.declare_absent())


def _peek_type(payload: bytes) -> str:
    message = unpack(payload, HANDSHAKE_LIMITS)
    if isinstance(message, dict) and isinstance(message.get("t"), str):
        return str(message["t"])
    return ""


__all__ = ["JoinError", "Node", "NodeEvent", "PeerDown", "PeerUp", "SaveFailed"]
