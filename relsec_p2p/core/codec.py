"""The one canonical msgpack form, and length-prefixed frames.

Rules of this file (normative text: protocol/SPEC.md §2):
- Values are nil, bool, int (-2**63 .. 2**64-1), str (UTF-8), bin, array and
  map with str keys. No floats, no ext types, no other key types.
- Canonical: maps sorted by key (UTF-8 byte order, no duplicates), every value
  in its shortest msgpack encoding, strings as str and bytes as bin. ``unpack``
  accepts only the canonical encoding of a value, so a value has exactly one
  byte form and two honest encoders always agree.
- Every size limit is checked before or during unpacking, never after a
  large allocation: the frame header before its payload is buffered, and
  msgpack's own ``max_*_len`` while it parses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
from msgpack import ExtType

from .errors import (
    FrameTooLarge,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    NonCanonical,
)

FRAME_HEADER_BYTES = 4
DEFAULT_MAX_FRAME = 1 << 20  # 1 MiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied while decoding one value (SPEC §2.3)."""

    max_bytes: int = DEFAULT_MAX_FRAME
    max_depth: int = 8
    max_str: int = 16 * 1024
    max_bin: int = 256 * 1024
    max_array: int = 16 * 1024
    max_map: int = 64


# Entries are small; a frame may carry many of them. The body travels as a bin
# inside the envelope, so max_bin is the largest body, and max_bytes is
# exactly the largest envelope that can hold it: the array header (1 byte),
# the body's bin 16 header (3), the body, the signature's bin 8 header (2) and
# the signature (64). Both limits are then reachable (SPEC §2.3): an envelope
# one byte longer cannot hold a valid body, and the size check refuses it
# before parsing.
MAX_BODY_BYTES = 64 * 1024 - 128
ENVELOPE_OVERHEAD = 1 + 3 + 2 + 64
ENTRY_LIMITS = Limits(
    max_bytes=MAX_BODY_BYTES + ENVELOPE_OVERHEAD, max_bin=MAX_BODY_BYTES, max_array=1024
)
FRAME_LIMITS = Limits()

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1


def _canonical(value: Any, depth: int) -> Any:
    """Return ``value`` with maps in canonical key order; refuse what the
    canonical form cannot express (a local misuse, not a remote error)."""
    if depth > 32:
        raise LocalProtocolError("value nested too deeply to encode")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalProtocolError(f"integer out of range: {value}")
        return value
    if isinstance(value, list | tuple):
        return [_canonical(item, depth + 1) for item in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise LocalProtocolError(f"map key must be str, not {type(key).__name__}")
        return {key: _canonical(value[key], depth + 1) for key in sorted(value)}
    raise LocalProtocolError(f"type {type(value).__name__} has no canonical encoding")


def pack(value: Any) -> bytes:
    """Encode ``value`` in the canonical form."""
    out: bytes = msgpack.packb(_canonical(value, 0), use_bin_type=True)
    return out


def _check_canonical_shape(value: Any, depth: int, limits: Limits) -> None:
    """Depth, key order and no floats. Leaves are tested inline, without a
    call each: this walk runs on every entry received and is on the hot path."""
    if depth > limits.max_depth:
        raise LimitExceeded(f"nesting deeper than {limits.max_depth}")
    kind = type(value)
    if kind is dict:
        previous: str | None = None
        for key, item in value.items():
            # strict_map_key still lets bin keys through, and comparing a bin
            # key with a str key would raise TypeError on remote input.
            if type(key) is not str:
                raise MalformedFrame("map keys must be str")
            # str order equals UTF-8 byte order, so this is the SPEC's order.
            if previous is not None and key <= previous:
                raise NonCanonical("map keys not in canonical order")
            previous = key
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                _check_canonical_shape(item, depth + 1, limits)
            elif item_kind is float or item_kind is ExtType:
                raise NonCanonical("floats and ext types are not allowed")
    elif kind is list:
        for item in value:
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                _check_canonical_shape(item, depth + 1, limits)
            elif item_kind is float or item_kind is ExtType:
                raise NonCanonical("floats and ext types are not allowed")
    elif kind is float or kind is ExtType:
        # max_ext_len=0 stops every ext type except an empty one (c7 00 tt).
        raise NonCanonical("floats and ext types are not allowed")


def unpack(data: bytes, limits: Limits = FRAME_LIMITS) -> Any:
    """Decode one canonical value, or raise a ``MalformedFrame`` subclass."""
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"{len(data)} bytes is over the limit of {limits.max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=limits.max_str,
            max_bin_len=limits.max_bin,
            max_array_len=limits.max_array,
            max_map_len=limits.max_map,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise MalformedFrame("trailing bytes after the value") from exc
    except msgpack.StackError as exc:
        raise LimitExceeded("nesting too deep") from exc
    except ValueError as exc:  # includes UnicodeDecodeError and exceeded max_*_len
        if "max_ext_len" in str(exc):
            raise NonCanonical("ext types are not allowed") from exc
        if "exceeds max" in str(exc):
            raise LimitExceeded(str(exc)) from exc
        raise MalformedFrame(f"not valid msgpack: {exc}") from exc
    except Exception as exc:  # msgpack raises assorted types on garbage
        raise MalformedFrame(f"not valid msgpack: {type(exc).__name__}") from exc
    _check_canonical_shape(value, 1, limits)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise NonCanonical("not the canonical encoding of its value")
    return value


_SIGNATURE_HEADER = b"\xc4\x40"  # bin 8 of 64 bytes


def split_entry_envelope(envelope: bytes, limits: Limits) -> tuple[bytes, bytes] | None:
    """``(body, signature)`` if ``envelope`` is byte for byte the canonical
    encoding of ``[body: bin, signature: bin64]`` within ``limits``, else None
    (``unpack`` then says what is wrong). The same answer as ``unpack`` for
    every valid envelope, without building and re-encoding the array: every
    entry received goes through here (SPEC §3.1)."""
    size = len(envelope)
    if size > limits.max_bytes or size < 3 or envelope[0] != 0x92:
        return None
    marker = envelope[1]
    if marker == 0xC4:  # bin 8: the shortest form below 256 bytes
        start, length = 3, envelope[2]
    elif marker == 0xC5 and size >= 4:  # bin 16: canonical from 256 bytes on
        start, length = 4, int.from_bytes(envelope[2:4], "big")
        if length < 256:
            return None
    else:
        return None
    end = start + length
    if length > limits.max_bin or size != end + 66 or envelope[end : end + 2] != _SIGNATURE_HEADER:
        return None
    return envelope[start:end], envelope[end + 2 :]


# --- frames ----------------------------------------------------------------


def frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Prefix ``payload`` with its length (4 bytes, big-endian)."""
    if not 0 < len(payload) <= max_frame:
        raise LocalProtocolError(f"payload of {len(payload)} bytes cannot be framed")
    return len(payload).to_bytes(FRAME_HEADER_BYTES, "big") + payload


class FrameDecoder:
    """Splits a byte stream into frames; refuses an oversized frame from its
    header alone, before buffering its payload. After an error the stream is
    unusable (the caller drops the connection)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._broken = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._broken:
            raise LocalProtocolError("frame decoder used after an error")
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= FRAME_HEADER_BYTES:
            size = int.from_bytes(self._buffer[:FRAME_HEADER_BYTES], "big")
            if size == 0 or size > self.max_frame:
                self._broken = True
                self._buffer.clear()
                if size == 0:
                    raise MalformedFrame("empty frame")
                raise FrameTooLarge(f"frame of {size} bytes is over {self.max_frame}")
            end = FRAME_HEADER_BYTES + size
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[FRAME_HEADER_BYTES:end]))
            del self._buffer[:end]
        return frames
