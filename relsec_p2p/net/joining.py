"""Drive the sans-IO join handshake (``core.admission``) over one TCP connection.

Rules of this file: cleartext frames during a join are capped at 4 KiB; the
whole run has a deadline so a wrong code or a silent peer ends in seconds,
never a hang; the connection is closed after the run whatever happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..core import admission
from ..core.codec import frame
from ..core.errors import MalformedFrame

JOIN_FIRST_TYPE = "pake"
JOIN_TIMEOUT_S = 8.0

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
