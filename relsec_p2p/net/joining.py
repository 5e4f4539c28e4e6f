"""Joining a meeting by its code, and sponsoring those who join this one.

Drives the sans-IO join handshake (``core.admission``, SPEC §12) over one TCP
connection at a time, from either side.

Rules of this file:
- Cleartext frames during a join are capped at 4 KiB; the whole run has a
  deadline so a wrong code or a silent peer ends in seconds, never a hang;
  the connection is closed after the run whatever happened.
- A laptop sponsors one run at a time and pays for it before the joiner's
  pake is used (``admission.JoinGate``): a pause after every spent guess,
  growing while they come in a row, so an online guesser gets at most
  ``JOIN_GUESSES_PER_MINUTE`` from each laptop however many connections it
  opens; every spent guess counts against the code, which changes after
  three (``admission.CodeGuard``), and a meeting-wide bound on code changes
  retires the code for a while (SPEC §12.8, §12.10).
- Only the facilitator's laptop sponsors, and only while joining is open
  (SPEC §12.8, §12.11): facilitation passes by the log's rule, so no laptop
  is special. Once a joiner has proved the code its request waits for the
  facilitator's answer (``Node.decide_admission``, at most
  ``ADMIT_WAIT_S``) with the run slot already free; a refusal closes the
  connection, which the joiner reads as "not admitted".
- A failed join is a ``JoinError`` whose ``str()`` is one plain sentence for
  the person joining; logs name codes of errors, never the code's words.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core import admission, joincode
from ..core.codec import frame
from ..core.errors import JoinError, LocalProtocolError, MalformedFrame, RemoteProtocolError
from ..core.events import short
from ..core.i18n import _
from ..core.identity import Identity
from ..core.link import HANDSHAKE_LIMITS, HANDSHAKE_TIMEOUT_S
from .discovery import Discovery
from .link import FrameReader, LinkClosed

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("relsec.node")

JOIN_FIRST_TYPE = "pake"
JOIN_TIMEOUT_S = 8.0
MAX_JOIN_REFUSALS = 3
# A sponsor run is one round trip on the LAN; a joiner that stalls holds the
# laptop's only run slot no longer than this.
SPONSOR_RUN_TIMEOUT_S = 3.0
# A joiner whose sponsor closed unanswered (busy or pausing) tries again
# this often until its timeout.
BUSY_RETRY_S = 0.25
# After its hello, a joiner waits this long for the facilitator to answer;
# the sponsor gives the facilitator the same time, then refuses.
ADMIT_WAIT_S = 120.0
# Joiners who proved the code and wait for the facilitator's answer, per laptop.
MAX_PENDING_ADMISSIONS = 4

ReadFrame = Callable[[], Awaitable[bytes]]


class SponsorBusy(RemoteProtocolError):
    """The sponsor closed the connection before answering our pake: it is
    running another join or pausing after a wrong code. Nothing was tested,
    so trying again costs nothing."""

    code = "sponsor_busy"


class NotAdmitted(RemoteProtocolError):
    """The sponsor closed the connection after our hello: the facilitator
    refused (or did not answer in time, or their laptop went away)."""

    code = "not_admitted"


def _write(writer: asyncio.StreamWriter, payloads: tuple[bytes, ...]) -> None:
    for payload in payloads:
        writer.write(frame(payload))


async def drive_joiner(
    handshake: admission.JoinerHandshake,
    read: ReadFrame,
    writer: asyncio.StreamWriter,
    on_waiting: Callable[[], None] | None = None,
) -> admission.JoinGranted:
    """Run the joiner's side to the end; raises ``admission.WrongCode`` on a
    wrong code, ``NotAdmitted`` when the sponsor hung up after our hello,
    and other ``RemoteProtocolError``s on a broken exchange. ``on_waiting``
    is called once the hello is out: the facilitator is deciding now."""
    writer.write(frame(handshake.start()))
    await writer.drain()
    while True:
        try:
            payload = await read()
        except (LinkClosed, ConnectionResetError):
            if handshake.state == "started":  # closed before its pake: unanswered
                raise SponsorBusy("the laptop is busy with another join") from None
            if handshake.state == "await_grant":
                raise NotAdmitted("the facilitator did not admit this laptop") from None
            raise
        step = handshake.receive(payload)
        _write(writer, step.send)
        await writer.drain()
        if isinstance(step.result, admission.JoinGranted):
            return step.result
        if handshake.state == "await_grant" and on_waiting is not None:
            on_waiting()
            on_waiting = None


async def drive_sponsor(
    handshake: admission.SponsorHandshake,
    first: bytes,
    read: ReadFrame,
    writer: asyncio.StreamWriter,
) -> admission.JoinRequest:
    """Run the sponsor's side until the joiner's request; the caller adds
    the joiner to the roster and then sends ``handshake.grant(...)``."""
    payload = first
    while True:
        step = handshake.receive(payload)
        _write(writer, step.send)
        await writer.drain()
        if isinstance(step.result, admission.JoinRequest):
            return step.result
        if handshake.done or handshake.failed:
            raise MalformedFrame("join handshake ended without a request")
        payload = await read()


# --- the joiner's side ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Admitted:
    """A sponsor let this laptop in: its grant, and where that sponsor listens."""

    granted: admission.JoinGranted
    host: str
    port: int


async def _connect_any(
    hosts: Sequence[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A connection to the first of one laptop's addresses that takes it. A
    laptop on two networks advertises both addresses (SPEC §12.2) and only
    one may be reachable from here."""
    error: OSError | TimeoutError = OSError("the laptop advertised no address")
    for host in hosts:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), HANDSHAKE_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            error = exc
            continue
        return reader, writer, host
    raise error


@dataclass(frozen=True, slots=True)
class Joiner:
    """Who is asking to join, and as what."""

    identity: Identity
    name: str
    display: bool = False  # a room display: admitted as a viewer (SPEC §12.12)
    on_waiting: Callable[[], None] | None = None  # the facilitator is deciding


async def join_via(
    hosts: Sequence[str], port: int, code: joincode.JoinCode, joiner: Joiner
) -> tuple[admission.JoinGranted, str]:
    """One join run with the laptop listening on ``hosts`` at ``port``; the
    grant, and the address that answered. The run has ``JOIN_TIMEOUT_S``
    until the hello is out, then ``ADMIT_WAIT_S`` for the facilitator."""
    reader, writer, host = await _connect_any(hosts, port)
    frames = FrameReader(reader, HANDSHAKE_LIMITS.max_bytes)
    loop = asyncio.get_running_loop()
    try:
        identity = joiner.identity
        handshake = admission.JoinerHandshake(
            code, identity.key, identity.ring_key, joiner.name, display=joiner.display
        )
        async with asyncio.timeout(JOIN_TIMEOUT_S) as deadline:

            def waiting() -> None:
                deadline.reschedule(loop.time() + ADMIT_WAIT_S)
                if joiner.on_waiting is not None:
                    joiner.on_waiting()

            granted = await drive_joiner(handshake, frames.read, writer, waiting)
        return granted, host
    finally:
        writer.close()


async def _find(
    discovery: Discovery | None, target: joincode.JoinTarget, timeout: float
) -> list[tuple[tuple[str, ...], int]]:
    """The laptops to ask: the address typed, or those mDNS finds for the
    nameplate (browsing only for as long as this takes)."""
    if target.host is not None and target.port is not None:
        return [((target.host,), target.port)]
    if discovery is None:
        raise JoinError(
            _(
                "Joining by the code alone needs discovery on the network; start without "
                "--no-mdns, or type the code with the address shown on the facilitator's "
                "screen."
            )
        )
    await discovery.async_browse()
    try:
        found = await discovery.async_wait_for(target.code.nameplate, timeout)
    finally:
        await discovery.async_stop_browsing()
    if not found:
        raise JoinError(
            _(
                "No meeting with the number {number} answered on this network; check that "
                "joining is open and you are on the same Wi-Fi as the others, or type the "
                "code with the address shown on the facilitator's screen."
            ).format(number=target.code.nameplate)
        )
    return [(tuple(peer.addresses), peer.port) for peer in found if peer.addresses]


async def ask_to_join(
    discovery: Discovery | None, code_text: str, joiner: Joiner, timeout: float
) -> Admitted:
    """Find the meeting whose code someone read out (or typed with its
    address) and ask to be let in; raises ``JoinError``."""
    try:
        target = joincode.parse_join_target(code_text)
    except joincode.BadJoinCode as exc:
        raise JoinError(str(exc)) from exc
    code = target.code
    last_error = ""
    refusals = 0
    deadline = time.monotonic() + timeout
    pending = await _find(discovery, target, timeout)
    while pending and refusals < MAX_JOIN_REFUSALS:
        busy: list[tuple[tuple[str, ...], int]] = []
        for hosts, port in pending:  # one run per laptop, at whichever address answers
            if refusals >= MAX_JOIN_REFUSALS:
                break
            try:
                granted, host = await join_via(hosts, port, code, joiner)
            except NotAdmitted:
                raise JoinError(
                    _("The facilitator did not let this laptop in; ask them, then try again.")
                ) from None
            except admission.WrongCode:
                # Two meetings nearby can share a number: another one may
                # know these words. A few tries at most, each costs a guess.
                refusals += 1
                last_error = "wrong_code"
                continue
            except SponsorBusy:
                busy.append((hosts, port))  # nothing tested: ask again shortly
                last_error = SponsorBusy.code
                continue
            except (RemoteProtocolError, OSError, TimeoutError, LinkClosed) as exc:
                last_error = getattr(exc, "code", type(exc).__name__)
                continue
            return Admitted(granted, host, port)
        if not busy or time.monotonic() + BUSY_RETRY_S > deadline:
            break
        await asyncio.sleep(BUSY_RETRY_S)
        pending = busy
    if refusals:
        raise JoinError(
            _(
                "That code was not accepted: check the words with the person who "
                "shared it and try again (after a few wrong tries the code changes)."
            )
        )
    if last_error == SponsorBusy.code:
        raise JoinError(
            _(
                "The meeting's laptop did not take the join: joining may be closed or it "
                "is busy; ask the facilitator to open joining and try again."
            )
        )
    raise JoinError(
        _(
            "Could not reach the meeting ({reason}); move closer to the "
            "others' network and try again."
        ).format(reason=last_error or _("no answer"))
    )


async def wait_until_member(is_member: Callable[[], bool], timeout: float) -> None:
    """After the grant: wait until the meeting, with this laptop on its
    roster, has arrived over the links; raises ``JoinError``."""
    deadline = time.monotonic() + timeout
    while not is_member():
        if time.monotonic() > deadline:
            raise JoinError(
                _(
                    "The code was right but the meeting did not arrive in time; "
                    "stay on the network and try joining again."
                )
            )
        await asyncio.sleep(0.05)


# --- the sponsor's side --------------------------------------------------------


class Sponsor:
    """The facilitator's laptop letting others join with the meeting's code.

    One run at a time, paid for before the joiner's pake is used
    (``admission.JoinGate``); a connection that cannot start a run now (or
    reaches a laptop that does not admit: not the facilitator's, or joining
    closed) is closed unanswered, which the joiner reads as "busy, try
    again". A joiner who proved the code waits for the facilitator's answer
    with the run slot already free (at most ``MAX_PENDING_ADMISSIONS``)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._code_guard = admission.CodeGuard()
        self._gate = admission.JoinGate()
        self._pending = 0

    def _current_code(self) -> joincode.JoinCode | None:
        state = self._node.state
        if state is None or state.join_code is None:
            return None
        return joincode.JoinCode(state.join_code[0], state.join_code[1])

    def _code_changes(self) -> int:
        """`join.code` entries in the meeting-wide window (SPEC §12.10)."""
        session = self._node.session
        if session is None:
            return 0
        dated = [e.ts for e in session.log.entries() if e.type == "join.code"]
        return admission.recent_code_changes(dated, self._node.clock())

    async def sponsor(
        self, frames: FrameReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        """Run the PAKE with a joiner; on the right code, ask the facilitator
        and, if they admit, add the joiner to the roster (or as a display).
        Every run that spent a guess without proving the code counts against
        the code, which changes after a few (``admission.CodeGuard``)."""
        try:
            run = await self._run(frames, writer, first)
            if run is not None:
                await self._admit(*run, frames, writer)
        finally:
            writer.close()

    async def _run(
        self, frames: FrameReader, writer: asyncio.StreamWriter, first: bytes
    ) -> tuple[admission.SponsorHandshake, admission.JoinRequest] | None:
        """The PAKE, paid for up front; the run and the joiner's request, or None."""
        node = self._node
        current = self._current_code()
        if current is None or node.session is None or not node.admits_joiners():
            return None
        refused = self._gate.start(_now_ms(), self._code_changes)
        if refused is not None:
            log.info("join attempt refused unanswered: %s", refused.value)
            return None
        if self._code_guard.code != current:
            self._code_guard.follow(current)  # changed elsewhere: the count goes on
        handshake = admission.SponsorHandshake(current)
        try:
            request = await asyncio.wait_for(
                drive_sponsor(handshake, first, frames.read, writer), SPONSOR_RUN_TIMEOUT_S
            )
            return handshake, request
        except RemoteProtocolError as error:
            log.info("join attempt failed: %s", error.code)
        except (LinkClosed, OSError, TimeoutError) as exc:
            log.info("join attempt dropped: %s", type(exc).__name__)
        finally:
            self._gate.finish(_now_ms(), spent=handshake.guess_spent and not handshake.confirmed)
            # Rotation is bounded twice: by the pause (3 spent guesses take
            # at least 10 s on one laptop) and meeting-wide (no rotation
            # once the window holds CODE_CHANGES_PER_WINDOW code changes).
            if self._code_guard.settle(handshake) and not admission.joining_retired(
                self._code_changes()
            ):
                log.info("too many wrong join codes: changing the code")
                node.publish_code(self._code_guard.rotate())
        return None

    async def _admit(
        self,
        handshake: admission.SponsorHandshake,
        request: admission.JoinRequest,
        frames: FrameReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Ask the facilitator; on yes, write the roster entry and grant."""
        node = self._node
        if self._pending >= MAX_PENDING_ADMISSIONS:
            log.info("join request refused: too many waiting for the facilitator")
            return
        self._pending += 1
        try:
            decision = asyncio.ensure_future(node.decide_admission(request))
            # The joiner sends nothing after its hello: anything read here is
            # its hang-up, which withdraws the question.
            hang_up = asyncio.ensure_future(frames.read())
            try:
                await asyncio.wait(
                    {decision, hang_up}, timeout=ADMIT_WAIT_S, return_when=asyncio.FIRST_COMPLETED
                )
                hung_up = hang_up.done()
                admitted = (
                    decision.done() and decision.exception() is None and decision.result() is True
                )
            finally:
                for task in (decision, hang_up):
                    if not task.done():
                        task.cancel()
                await asyncio.gather(decision, hang_up, return_exceptions=True)
            if not admitted or hung_up or not node.admits_joiners():
                log.info("join request not admitted")
                return
            session = node.session
            if session is None:
                return
            if request.display:
                node.perform(
                    lambda s: s.act("viewer.add", {"key": request.key, "name": request.name})
                )
            else:
                node.perform(lambda s: s.add_member(request.key, request.ring_key, request.name))
            writer.write(frame(handshake.grant(session.mid, session.creator, node.identity.key)))
            await writer.drain()
            role = "a display" if request.display else "a member"
            log.info("admitted %s %s", role, short(request.key))
        except LocalProtocolError as error:
            log.info("join request refused: %s", error)
        except (LinkClosed, OSError) as exc:
            log.info("join grant not delivered: %s", type(exc).__name__)
        finally:
            self._pending -= 1


def _now_ms() -> int:
    return int(time.monotonic() * 1000)
