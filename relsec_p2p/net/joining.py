"""Joining a meeting by its code, and sponsoring those who join this one.

Drives the sans-IO join handshake (``core.admission``, SPEC §12) over one TCP
connection at a time, from either side.

Rules of this file:
- Cleartext frames during a join are capped at 4 KiB; the whole run has a
  deadline so a wrong code or a silent peer ends in seconds, never a hang;
  the connection is closed after the run whatever happened.
- Every sponsored run that spends a guess without proving the code uses up
  the join-attempt budget and counts against the code, which changes after
  a few (``admission.CodeGuard``): an online guesser gets a handful of
  guesses a minute from each laptop (SPEC §12.8).
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
from ..core.identity import Identity
from ..core.link import HANDSHAKE_LIMITS, HANDSHAKE_TIMEOUT_S, FloodGuard
from .discovery import Discovery
from .link import FrameReader, LinkClosed

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("relsec.node")

JOIN_FIRST_TYPE = "pake"
JOIN_TIMEOUT_S = 8.0
MAX_JOIN_REFUSALS = 3
# A join run that spends a guess without proving the code (a wrong code, a
# hang-up) uses up one of these; with none left, joins wait. An online guesser
# gets at most this many guesses a minute from each laptop (SPEC §12.8).
JOIN_ATTEMPTS_PER_MINUTE = 12

ReadFrame = Callable[[], Awaitable[bytes]]


def _write(writer: asyncio.StreamWriter, payloads: tuple[bytes, ...]) -> None:
    for payload in payloads:
        writer.write(frame(payload))


async def drive_joiner(
    handshake: admission.JoinerHandshake, read: ReadFrame, writer: asyncio.StreamWriter
) -> admission.JoinGranted:
    """Run the joiner's side to the end; raises ``admission.WrongCode`` on a
    wrong code and other ``RemoteProtocolError``s on a broken exchange."""
    writer.write(frame(handshake.start()))
    await writer.drain()
    while True:
        step = handshake.receive(await read())
        _write(writer, step.send)
        await writer.drain()
        if isinstance(step.result, admission.JoinGranted):
            return step.result


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


async def join_via(
    hosts: Sequence[str], port: int, code: joincode.JoinCode, identity: Identity, name: str
) -> tuple[admission.JoinGranted, str]:
    """One join run with the laptop listening on ``hosts`` at ``port``; the
    grant, and the address that answered."""
    reader, writer, host = await _connect_any(hosts, port)
    frames = FrameReader(reader, HANDSHAKE_LIMITS.max_bytes)
    try:
        joiner = admission.JoinerHandshake(code, identity.key, identity.ring_key, name)
        granted = await asyncio.wait_for(drive_joiner(joiner, frames.read, writer), JOIN_TIMEOUT_S)
        return granted, host
    finally:
        writer.close()


async def ask_to_join(
    discovery: Discovery | None, code_text: str, identity: Identity, name: str, timeout: float
) -> Admitted:
    """Find the meeting whose code someone read out and ask to be let in;
    raises ``JoinError``."""
    try:
        code = joincode.parse_join_code(code_text)
    except joincode.BadJoinCode as exc:
        raise JoinError(str(exc)) from exc
    if discovery is None:
        raise JoinError("Joining needs discovery on the network; start without --no-mdns.")
    found = await discovery.async_wait_for(code.nameplate, timeout)
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
        for hosts in (peer.addresses,):  # one run per laptop, at whichever address answers
            try:
                granted, host = await join_via(hosts, peer.port, code, identity, name)
            except admission.WrongCode:
                # Two meetings nearby can share a number: another one may
                # know these words. A few tries at most, each costs a guess.
                refusals += 1
                last_error = "wrong_code"
                continue
            except (RemoteProtocolError, OSError, TimeoutError, LinkClosed) as exc:
                last_error = getattr(exc, "code", type(exc).__name__)
                continue
            return Admitted(granted, host, peer.port)
    if refusals:
        raise JoinError(
            "That code was not accepted: check the words with the person who "
            "shared it and try again (after a few wrong tries the code changes)."
        )
    raise JoinError(
        f"Could not reach the meeting ({last_error or 'no answer'}); move closer to the "
        "others' network and try again."
    )


async def wait_until_member(is_member: Callable[[], bool], timeout: float) -> None:
    """After the grant: wait until the meeting, with this laptop on its
    roster, has arrived over the links; raises ``JoinError``."""
    deadline = time.monotonic() + timeout
    while not is_member():
        if time.monotonic() > deadline:
            raise JoinError(
                "The code was right but the meeting did not arrive in time; "
                "stay on the network and try joining again."
            )
        await asyncio.sleep(0.05)


# --- the sponsor's side --------------------------------------------------------


class Sponsor:
    """A member's laptop letting others join with the meeting's code."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._code_guard = admission.CodeGuard()
        self._join_budget = FloodGuard(rate=JOIN_ATTEMPTS_PER_MINUTE / 60, burst=5)

    def will_answer(self) -> bool:
        """False while too many join runs spent a guess: joins wait a while."""
        return self._join_budget.available(time.monotonic())

    def _current_code(self) -> joincode.JoinCode | None:
        state = self._node.state
        if state is None or state.join_code is None:
            return None
        return joincode.JoinCode(state.join_code[0], state.join_code[1])

    async def sponsor(
        self, frames: FrameReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        """Run the PAKE with a joiner; on the right code, add them to the roster.
        Every run that spent a guess without proving the code counts against
        the code, which changes after a few (``admission.CodeGuard``)."""
        node = self._node
        current = self._current_code()
        if current is None or node.session is None:
            writer.close()
            return
        if self._code_guard.code != current:
            self._code_guard = admission.CodeGuard(code=current)
        handshake = admission.SponsorHandshake(current)
        try:
            request = await asyncio.wait_for(
                drive_sponsor(handshake, first, frames.read, writer), JOIN_TIMEOUT_S
            )
            node.perform(lambda s: s.add_member(request.key, request.ring_key, request.name))
            session = node.session
            writer.write(frame(handshake.grant(session.mid, session.creator, node.identity.key)))
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
                node.publish_code(self._code_guard.rotate())
