"""The canonical msgpack form and length-prefixed frames (core/codec.py)."""

from __future__ import annotations

import itertools

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relsec_p2p.core.codec import (
    ENTRY_LIMITS,
    FRAME_HEADER_BYTES,
    FrameDecoder,
    Limits,
    frame,
    pack,
    split_entry_envelope,
    unpack,
)
from relsec_p2p.core.errors import (
    FrameTooLarge,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    NonCanonical,
    RemoteProtocolError,
)

# Values the canonical form can hold, within the default frame limits.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def same_value(a: object, b: object) -> bool:
    """Equality that also tells True from 1 (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip_is_exact(value: object) -> None:
    data = pack(value)
    decoded = unpack(data)
    assert pack(decoded) == data
    # Maps come back in canonical key order, whatever order they went in with.
    canonical = msgpack.unpackb(data, raw=False)
    assert same_value(decoded, canonical)
    assert decoded == value


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=6), st.integers(0, 9), min_size=2, max_size=8), st.randoms()
)
def test_key_order_of_input_does_not_matter(mapping: dict[str, int], rng: object) -> None:
    items = list(mapping.items())
    rng.shuffle(items)  # type: ignore[attr-defined]
    assert pack(dict(items)) == pack(mapping)
    assert list(unpack(pack(dict(items)))) == sorted(mapping)


def test_tuples_encode_as_arrays() -> None:
    assert pack((1, "a")) == pack([1, "a"])


@pytest.mark.parametrize(
    "value",
    [1.5, 0.0, {1: "int key"}, {b"k": "bin key"}, {1, 2}, 1 << 64, -(1 << 63) - 1, object()],
    ids=["float", "zero-float", "int-key", "bin-key", "set", "too-big", "too-small", "object"],
)
def test_pack_refuses_what_the_canonical_form_cannot_express(value: object) -> None:
    with pytest.raises(LocalProtocolError):
        pack(value)


def test_pack_refuses_absurd_nesting() -> None:
    value: list[object] = []
    for _ in range(40):
        value = [value]
    with pytest.raises(LocalProtocolError):
        pack(value)


def _nested_arrays(depth: int) -> bytes:
    """``depth`` levels of one-element arrays around an int (depth 1 = [1])."""
    return b"\x91" * depth + b"\x01"


# (name, bytes, exact error class). Every row is valid msgpack or close to it,
# and none is the canonical encoding of a value.
NON_CANONICAL: list[tuple[str, bytes, type[RemoteProtocolError]]] = [
    ("unsorted map keys", b"\x82\xa1b\x01\xa1a\x02", NonCanonical),
    ("duplicate map keys", b"\x82\xa1a\x01\xa1a\x02", NonCanonical),
    ("uint8 for 1", b"\xcc\x01", NonCanonical),
    ("int16 for 5", b"\xd1\x00\x05", NonCanonical),
    ("uint64 for 200", b"\xcf" + (200).to_bytes(8, "big"), NonCanonical),
    ("int8 for -1", b"\xd0\xff", NonCanonical),
    ("int64 for -100", b"\xd3" + (-100).to_bytes(8, "big", signed=True), NonCanonical),
    ("uint16 for 255", b"\xcd\x00\xff", NonCanonical),
    ("str8 for a short str", b"\xd9\x01a", NonCanonical),
    ("bin16 for a short bin", b"\xc5\x00\x01a", NonCanonical),
    ("array16 for a short array", b"\xdc\x00\x01\x01", NonCanonical),
    ("map16 for a short map", b"\xde\x00\x01\xa1a\x01", NonCanonical),
    ("float64", b"\xcb" + bytes(8), NonCanonical),
    ("float32", b"\xca" + bytes(4), NonCanonical),
    ("float inside a map", b"\x81\xa1a\xca" + bytes(4), NonCanonical),
    ("float inside an array", b"\x91\xca" + bytes(4), NonCanonical),
    ("fixext1", b"\xd4\x01\x00", NonCanonical),
    ("timestamp ext", b"\xd6\xff" + bytes(4), NonCanonical),
    ("empty ext8", b"\xc7\x00\x05", NonCanonical),
    ("empty ext8 inside a map", b"\x81\xa1a\xc7\x00\x05", NonCanonical),
    ("empty ext8 inside an array", b"\x91\xc7\x00\x05", NonCanonical),
    ("int map key", b"\x81\x01\x02", MalformedFrame),
    ("bin map key", b"\x81\xc4\x01k\x02", MalformedFrame),
    ("str and bin map keys", b"\x82\xa1a\x01\xc4\x01b\x02", MalformedFrame),
    ("bin key nested in a value", b"\x81\xa1a\x81\xc4\x01k\x02", MalformedFrame),
    ("trailing bytes", b"\x01\x02", MalformedFrame),
    ("empty input", b"", MalformedFrame),
    ("truncated array", b"\x92\x01", MalformedFrame),
    ("truncated str", b"\xa5ab", MalformedFrame),
    ("reserved byte 0xc1", b"\xc1", MalformedFrame),
    ("invalid UTF-8 in a str", b"\xa2\xff\xfe", MalformedFrame),
    ("nested one level too deep", _nested_arrays(9), LimitExceeded),
    ("nested far too deep", _nested_arrays(5000), LimitExceeded),
]


@pytest.mark.parametrize(
    ("data", "error"), [row[1:] for row in NON_CANONICAL], ids=[row[0] for row in NON_CANONICAL]
)
def test_unpack_rejects_with_the_right_error(data: bytes, error: type[RemoteProtocolError]) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        unpack(data)
    assert type(caught.value) is error
    assert isinstance(caught.value, MalformedFrame)  # every decoding error drops the link


def test_depth_limit_counts_containers() -> None:
    # max_depth=8 counts arrays and maps, the outer one included; scalars
    # inside the deepest container do not add a level.
    assert unpack(_nested_arrays(8)) == [[[[[[[[1]]]]]]]]
    with pytest.raises(LimitExceeded):
        unpack(_nested_arrays(9))
    assert unpack(b"\x81\xa1a" * 7 + b"\x90") == unpack(pack(_nested_maps(7)))
    with pytest.raises(LimitExceeded):
        unpack(b"\x81\xa1a" * 8 + b"\x90")  # eight maps around an empty array
    with pytest.raises(LimitExceeded):
        unpack(_nested_arrays(4), Limits(max_depth=3))


def _nested_maps(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "limits"),
    [
        ("x" * 11, Limits(max_str=10)),
        (b"x" * 11, Limits(max_bin=10)),
        (list(range(11)), Limits(max_array=10)),
        ({f"k{i:02}": i for i in range(11)}, Limits(max_map=10)),
        ("x" * 20, Limits(max_bytes=20)),
    ],
    ids=["str", "bin", "array", "map", "bytes"],
)
def test_each_limit_is_enforced_at_its_bound(value: object, limits: Limits) -> None:
    with pytest.raises(LimitExceeded):
        unpack(pack(value), limits)
    # One less fits: the limit is exactly where it says.
    smaller: object
    if isinstance(value, dict):
        smaller = dict(list(value.items())[:-1])
    elif isinstance(value, str | bytes | list):
        smaller = value[:-1]
    assert unpack(pack(smaller), limits) == smaller


def test_entry_limits_are_tighter_than_frame_limits() -> None:
    big = pack(b"x" * (ENTRY_LIMITS.max_bin + 1))
    assert unpack(big) == b"x" * (ENTRY_LIMITS.max_bin + 1)
    with pytest.raises(LimitExceeded):
        unpack(big, ENTRY_LIMITS)


def test_a_declared_length_beyond_the_data_is_refused_without_allocating() -> None:
    # A bin32 header claiming 4 GiB followed by nothing.
    with pytest.raises(MalformedFrame):
        unpack(b"\xc6\xff\xff\xff\xff")


# --- frames -------------------------------------------------------------------


def test_frame_is_a_big_endian_length_prefix() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert len(frame(b"x" * 1000)) == FRAME_HEADER_BYTES + 1000


@pytest.mark.parametrize("size", [0, 11])
def test_frame_refuses_empty_and_oversized_payloads(size: int) -> None:
    with pytest.raises(LocalProtocolError):
        frame(b"x" * size, max_frame=10)


def test_decoder_returns_complete_frames_in_order() -> None:
    decoder = FrameDecoder()
    stream = frame(b"one") + frame(b"two") + frame(b"three")
    assert decoder.feed(stream) == [b"one", b"two", b"three"]
    assert decoder.buffered == 0


def test_decoder_split_byte_by_byte() -> None:
    payloads = [b"a", b"\x00" * 300, pack({"t": "have", "x": [1, 2]})]
    stream = b"".join(frame(p) for p in payloads)
    decoder = FrameDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        got = decoder.feed(stream[i : i + 1])
        out.extend(got)
        # A frame comes out exactly when its last byte arrives.
        ends = [sum(len(frame(p)) for p in payloads[: k + 1]) for k in range(len(payloads))]
        assert (len(got) == 1) == (i + 1 in ends)
    assert out == payloads
    assert decoder.buffered == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=64), max_size=8),
    st.lists(st.integers(0, 600), max_size=10),
)
def test_decoder_any_split_gives_the_same_frames(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    decoder = FrameDecoder()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out.extend(decoder.feed(stream[start:end]))
    assert out == payloads


def test_decoder_accepts_a_frame_of_exactly_max_size() -> None:
    decoder = FrameDecoder(max_frame=8)
    assert decoder.feed(frame(b"x" * 8, max_frame=8)) == [b"x" * 8]


def test_oversized_header_is_refused_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(max_frame=1024)
    assert decoder.feed(b"\x00\x00") == []  # half a header: wait
    with pytest.raises(FrameTooLarge):
        decoder.feed((1025).to_bytes(4, "big")[2:])  # the header alone is enough
    assert decoder.buffered == 0  # nothing of the frame was kept
    with pytest.raises(LocalProtocolError):  # the stream is unusable afterwards
        decoder.feed(b"x")


def test_a_huge_declared_size_is_refused_without_buffering() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\xff\xff\xff\xff" + b"x" * 10)
    assert decoder.buffered == 0


def test_zero_length_frame_is_malformed_and_breaks_the_stream() -> None:
    decoder = FrameDecoder()
    with pytest.raises(MalformedFrame) as caught:
        decoder.feed(frame(b"ok") + b"\x00\x00\x00\x00" + frame(b"never"))
    assert type(caught.value) is MalformedFrame
    with pytest.raises(LocalProtocolError):
        decoder.feed(frame(b"again"))


def test_frame_errors_are_remote_errors() -> None:
    # The driver drops the link on these; they must not look like local bugs.
    assert issubclass(FrameTooLarge, RemoteProtocolError)
    assert not issubclass(FrameTooLarge, LocalProtocolError)


# --- the entry envelope's fast path ------------------------------------------------


def _generic_envelope(data: bytes) -> tuple[bytes, bytes] | None:
    """What the generic decoder makes of ``data``: (body, signature) or None."""
    try:
        value = unpack(data, ENTRY_LIMITS)
    except RemoteProtocolError:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], bytes)
        and isinstance(value[1], bytes)
        and len(value[1]) == 64
    ):
        return value[0], value[1]
    return None


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 65_535 - 128, ENTRY_LIMITS.max_bin])
def test_envelope_fast_path_takes_every_canonical_envelope(size: int) -> None:
    body, signature = bytes(range(256)) * (size // 256) + bytes(size % 256), b"\x07" * 64
    envelope = pack([body, signature])
    assert split_entry_envelope(envelope, ENTRY_LIMITS) == (body, signature)


@pytest.mark.parametrize(
    "envelope",
    [
        b"\x92\xc5\x00\x05abcde\xc4\x40" + bytes(64),  # bin 16 for 5 bytes: not canonical
        pack([b"body", bytes(63)]),  # a short signature
        pack([b"body", bytes(64), b""]),  # three items
        pack([b"body", bytes(64)]) + b"\x00",  # trailing byte
        pack([b"x" * (ENTRY_LIMITS.max_bin + 1), bytes(64)]),  # over the body limit
        pack(["body", bytes(64)]),  # a str body
    ],
)
def test_envelope_fast_path_leaves_the_rest_to_unpack(envelope: bytes) -> None:
    assert split_entry_envelope(envelope, ENTRY_LIMITS) is None
    assert _generic_envelope(envelope) is None


@settings(max_examples=300)
@given(st.binary(max_size=300), st.data())
def test_envelope_fast_path_agrees_with_unpack(body: bytes, data: st.DataObject) -> None:
    envelope = bytearray(pack([body, b"\x01" * 64]))
    for _ in range(data.draw(st.integers(0, 3))):
        where = data.draw(st.integers(0, len(envelope) - 1))
        envelope[where] = data.draw(st.integers(0, 255))
    fast = split_entry_envelope(bytes(envelope), ENTRY_LIMITS)
    assert fast is None or fast == _generic_envelope(bytes(envelope))
    if _generic_envelope(bytes(envelope)) is not None:
        assert fast == _generic_envelope(bytes(envelope))
