"""One encrypted TCP link to one member: handshake, secretstream, keepalive,
and a bounded send queue.

Rules of this file:
- The crypto is the sans-IO ``core.link``; this file only moves frames.
- Frames are length-prefixed (``core.codec.FrameDecoder``); cleartext
  handshake frames are capped at 4 KiB, encrypted ones at 1 MiB plus overhead.
- Sending never blocks the caller: payloads wait in a queue bounded in bytes;
  a peer too slow to drain it is disconnected (it catches up by sync when it
  reconnects) rather than making this laptop buffer without bound.
- Every frame after the handshake is ``seal(kind || payload)``: kind 0 is a
  Session payload, 1 a keepalive ping. The kinds, the timeouts, the queue
  bound and the flood guard are the sans-IO ``core.link``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, cast

from ..core.codec import FrameDecoder, frame
from ..core.errors import MalformedFrame, RemoteError, RemoteProtocolError
from ..core.events import short
from ..core.identity import Identity
from ..core.link import (
    FLOOD_RATE,
    HANDSHAKE_LIMITS,
    HANDSHAKE_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    KEEPALIVE_S,
    KIND_DATA,
    KIND_PING,
    MAX_LINK_FRAME,
    MAX_QUEUE_BYTES,
    FloodGuard,
    Flooding,
    Handshake,
    LinkKeys,
    StreamReceiver,
    StreamSender,
)

log = logging.getLogger("relsec.link")


class LinkClosed(RemoteError):
    """The peer (or the network) ended the connection: the read found the end
    of the stream. A remote error but not a ``RemoteProtocolError``: no bytes
    were wrong, and a member closing their laptop is no fault. The reason is
    in ``str()`` and becomes the link's ``close_reason``."""

    code = "link_closed"


class FrameReader:
    """Reads whole frames from a StreamReader with the core's decoder."""

    def __init__(self, reader: asyncio.StreamReader, max_frame: int) -> None:
        self._reader = reader
        self._decoder = FrameDecoder(max_frame)
        self._ready: deque[bytes] = deque()

    def set_limit(self, max_frame: int) -> None:
        self._decoder.max_frame = max_frame

    @property
    def buffered(self) -> int:
        """Bytes read from the connection that are not yet a whole frame."""
        return self._decoder.buffered

    async def read(self) -> bytes:
        while not self._ready:
            data = await self._reader.read(65536)
            if not data:
                raise LinkClosed("connection closed by peer")
            self._ready.extend(self._decoder.feed(data))
        return self._ready.popleft()


async def run_handshake(
    reader: FrameReader,
    writer: asyncio.StreamWriter,
    handshake: Handshake,
    first: bytes | None = None,
) -> LinkKeys:
    """Drive a ``core.link.Handshake`` over a connection. ``first`` is a frame
    the listener already read (to see which protocol the caller speaks)."""
    if handshake.initiator:
        writer.write(frame(handshake.start()))
    pending = first
    while not handshake.done:
        payload = pending if pending is not None else await reader.read()
        pending = None
        reply = handshake.receive(payload)
        if reply is not None:
            writer.write(frame(reply))
    await writer.drain()
    assert handshake.result is not None  # noqa: S101 (done implies a result)
    return handshake.result


class Link:
    """An established, encrypted link. Create with ``Link.connect`` or
    ``Link.accept``; then ``start(on_payload, on_close)``."""

    def __init__(
        self,
        reader: FrameReader,
        writer: asyncio.StreamWriter,
        keys: LinkKeys,
        *,
        initiator: bool,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        self.peer = keys.peer
        self.peer_epoch = keys.peer_epoch
        self.initiator = initiator
        self.link_id = keys.link_id  # both ends know it (SPEC §11.9)
        self._reader = reader
        self._writer = writer
        self._sender = StreamSender(keys.send_key)
        self._receiver = StreamReceiver(keys.receive_key)
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        # The send queue's bound; lowering it on a live link takes effect at
        # the next send.
        self.max_queue_bytes = max_queue_bytes
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.close_reason = ""
        self.remote_address = writer.get_extra_info("peername")
        # This laptop's end: when its address goes away (the laptop moved to
        # another network), the link is dead whatever the timers say.
        self.local_address = writer.get_extra_info("sockname")
        self.bytes_sent = 0
        self.bytes_received = 0
        self.flood_guard = FloodGuard()

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        identity: Identity,
        mid: bytes,
        epoch: int,
        accept: Callable[[bytes], bool],
    ) -> Link:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), HANDSHAKE_TIMEOUT_S
        )
        frames = FrameReader(reader, HANDSHAKE_LIMITS.max_bytes)
        handshake = Handshake(identity, mid, initiator=True, epoch=epoch, accept=accept)
        try:
            keys = await asyncio.wait_for(
                run_handshake(frames, writer, handshake), HANDSHAKE_TIMEOUT_S
            )
        except BaseException:
            writer.close()
            raise
        frames.set_limit(MAX_LINK_FRAME)
        return cls(frames, writer, keys, initiator=True)

    @classmethod
    async def accept(
        cls,
        frames: FrameReader,
        writer: asyncio.StreamWriter,
        first: bytes,
        identity: Identity,
        mid: bytes,
        epoch: int,
        accept: Callable[[bytes], bool],
    ) -> Link:
        handshake = Handshake(identity, mid, initiator=False, epoch=epoch, accept=accept)
        keys = await asyncio.wait_for(
            run_handshake(frames, writer, handshake, first), HANDSHAKE_TIMEOUT_S
        )
        frames.set_limit(MAX_LINK_FRAME)
        return cls(frames, writer, keys, initiator=False)

    # -- running ----------------------------------------------------------------

    def start(
        self,
        on_payload: Callable[[Link, bytes], None],
        on_close: Callable[[Link], None],
    ) -> None:
        self._writer.write(frame(self._sender.header))
        self._spawn(self._read_loop(on_payload))
        self._spawn(self._write_loop())
        self._on_close = on_close

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send(self, payload: bytes) -> bool:
        """Queue a Session payload; False (and the link closes) if the peer
        has fallen too far behind."""
        if self._closed:
            return False
        if self._queued_bytes + len(payload) > self.max_queue_bytes:
            self.close(f"peer too slow: over {self.max_queue_bytes} bytes queued")
            return False
        self._queue.append(KIND_DATA + payload)
        self._queued_bytes += len(payload) + 1
        self._wake.set()
        return True

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the send queue (at most ``max_queue_bytes``)."""
        return self._queued_bytes

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet a whole frame: at most one frame
        (``MAX_LINK_FRAME`` and its header), however slowly the peer sends it."""
        return self._reader.buffered

    @property
    def transport(self) -> asyncio.Transport:
        """The TCP connection under the encryption: for socket options
        (``get_extra_info("socket")``) and flow control. Bytes written to it
        directly bypass the encryption and the queue, so only a deliberately
        misbehaving peer (the adversary tests) writes there."""
        # A TCP connection's transport reads and writes (asyncio types it as
        # the write half only).
        return cast(asyncio.Transport, self._writer.transport)

    async def _write_loop(self) -> None:
        try:
            while not self._closed:
                if not self._queue:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        self._queue.append(KIND_PING)
                        self._queued_bytes += 1
                while self._queue:
                    plaintext = self._queue.popleft()
                    self._queued_bytes -= len(plaintext)
                    data = frame(self._sender.seal(plaintext), MAX_LINK_FRAME)
                    self._writer.write(data)
                    self.bytes_sent += len(data)
                await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"write failed: {type(exc).__name__}")
        except asyncio.CancelledError:
            pass

    async def _read_loop(self, on_payload: Callable[[Link, bytes], None]) -> None:
        try:
            header = await asyncio.wait_for(self._reader.read(), IDLE_TIMEOUT_S)
            self._receiver.start(header)
            while not self._closed:
                sealed = await asyncio.wait_for(self._reader.read(), IDLE_TIMEOUT_S)
                self.bytes_received += len(sealed) + 4
                if not self.flood_guard.allow(time.monotonic()):
                    raise Flooding(f"more than {FLOOD_RATE} frames a second")
                plaintext = self._receiver.open(sealed)
                if plaintext[:1] == KIND_DATA:
                    on_payload(self, plaintext[1:])
                elif plaintext[:1] != KIND_PING:
                    raise MalformedFrame("unknown link frame kind")
        except RemoteProtocolError as error:
            log.warning("link %s: %s: %s", short(self.peer), error.code, error)
            self.close(error.code)
        except TimeoutError:
            self.close("peer silent too long")
        except LinkClosed as exc:
            self.close(str(exc))
        except (ConnectionError, OSError) as exc:
            self.close(f"read failed: {type(exc).__name__}")
        except asyncio.CancelledError:
            pass

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        self._queue.clear()
        self._queued_bytes = 0
        self._wake.set()
        with contextlib.suppress(Exception):
            self._writer.close()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        callback = getattr(self, "_on_close", None)
        if callback is not None:
            callback(self)

    @property
    def closed(self) -> bool:
        return self._closed
