"""Framing of the flipnet serial protocol (docs/protocol.md sections 2-3): pure functions.

Bytes in, bytes or frames out; no I/O, no state beyond :class:`StreamDecoder`'s buffer.

A frame is ``version u8, cmd u8, status i16, seq u32, payload, crc32 u32`` (little-endian),
the CRC-32 (``zlib.crc32``) covering everything before it; on the wire it is COBS-encoded
between two ``0x00`` delimiters.
"""

import struct
import zlib
from collections import namedtuple

__all__ = [
    "PROTOCOL_VERSION", "HEADER", "MIN_FRAME", "NAK", "REPLY",
    "FramingError", "Frame",
    "crc32", "cobs_encode", "cobs_decode",
    "build_frame", "parse_frame", "encode_frame", "StreamDecoder", "max_encoded_size",
]

PROTOCOL_VERSION = 1
HEADER = 8
MIN_FRAME = HEADER + 4
NAK = 0xFF
REPLY = 0x80

_HDR = struct.Struct("<BBhI")


class FramingError(ValueError):
    """Bytes that are not a valid frame (bad COBS, too short, CRC mismatch)."""


Frame = namedtuple("Frame", "version cmd status seq payload")
Frame.__doc__ = "A decoded, CRC-checked frame."


def crc32(data, crc=0):
    """CRC-32 (IEEE 802.3, reflected) as ``zlib.crc32`` and the core's ``flipnet_crc32``."""
    return zlib.crc32(bytes(data), crc) & 0xFFFFFFFF


def cobs_encode(data):
    """COBS-encode ``data``: the result has no zero byte; one extra byte per 254."""
    data = bytes(data)
    out = bytearray()
    i, n = 0, len(data)
    while True:
        limit = min(n, i + 254)
        j = data.find(b"\x00", i, limit)
        if j >= 0:  # block ends at a zero (implied by a code < 0xFF)
            out.append(j - i + 1)
            out += data[i:j]
            i = j + 1
            if i == n:  # the data ends with that zero: one more, empty block
                out.append(1)
                break
        else:  # no zero: a short last block, or a full 254-byte block (code 0xFF)
            out.append(limit - i + 1)
            out += data[i:limit]
            if limit >= n:
                break
            i = limit
    return bytes(out)


def cobs_decode(data):
    """Inverse of :func:`cobs_encode`; raises :class:`FramingError` on invalid input."""
    data = bytes(data)
    out = bytearray()
    i, n = 0, len(data)
    prev = None
    while i < n:
        code = data[i]
        if code == 0:
            raise FramingError("COBS data contains a zero byte at %d" % i)
        if prev is not None and prev != 0xFF:
            out.append(0)
        end = i + code
        if end > n:
            raise FramingError("COBS block at %d runs past the end (%d > %d)" % (i, end, n))
        block = data[i + 1:end]
        if 0 in block:
            raise FramingError("COBS data contains a zero byte in the block at %d" % i)
        out += block
        prev = code
        i = end
    return bytes(out)


def build_frame(cmd, seq, payload=b"", status=0, version=PROTOCOL_VERSION):
    """The decoded frame (header, payload, CRC) for one message."""
    body = _HDR.pack(version, cmd, status, seq & 0xFFFFFFFF) + bytes(payload)
    return body + struct.pack("<I", crc32(body))


def encode_frame(cmd, seq, payload=b"", status=0, version=PROTOCOL_VERSION):
    """Wire bytes of one message: ``00 COBS(frame) 00``."""
    return b"\x00" + cobs_encode(build_frame(cmd, seq, payload, status, version)) + b"\x00"


def parse_frame(frame):
    """Check a decoded frame's length and CRC and split it into a :class:`Frame`."""
    frame = bytes(frame)
    if len(frame) < MIN_FRAME:
        raise FramingError("frame of %d bytes is shorter than the %d-byte minimum"
                           % (len(frame), MIN_FRAME))
    body, (crc,) = frame[:-4], struct.unpack("<I", frame[-4:])
    got = crc32(body)
    if got != crc:
        raise FramingError("frame CRC mismatch (frame says %08x, computed %08x)" % (crc, got))
    version, cmd, status, seq = _HDR.unpack_from(body)
    return Frame(version, cmd, status, seq, body[HEADER:])


def max_encoded_size(frame_bytes):
    """Largest wire size of a frame of ``frame_bytes`` decoded bytes, delimiters included."""
    return frame_bytes + frame_bytes // 254 + 1 + 2


class StreamDecoder:
    """Split a byte stream at ``0x00`` into frames.

    ``feed(data)`` returns a list of items, each a :class:`Frame` or a :class:`FramingError`
    (for a damaged frame), in arrival order. Empty frames are skipped; a frame growing past
    ``max_encoded`` bytes is dropped up to the next delimiter (reported as an error).
    """

    def __init__(self, max_encoded=1 << 20):
        self.max_encoded = max_encoded
        self._buf = bytearray()
        self._over = False

    def reset(self):
        self._buf.clear()
        self._over = False

    def feed(self, data):
        items = []
        data = bytes(data)
        start = 0
        while start <= len(data):
            z = data.find(b"\x00", start)
            chunk = data[start:] if z < 0 else data[start:z]
            if not self._over:
                self._buf += chunk
                if len(self._buf) > self.max_encoded:
                    self._over = True
                    self._buf.clear()
            if z < 0:
                break
            if self._over:
                items.append(FramingError("frame longer than %d bytes" % self.max_encoded))
            elif self._buf:
                try:
                    items.append(parse_frame(cobs_decode(self._buf)))
                except FramingError as exc:
                    items.append(exc)
            self._buf.clear()
            self._over = False
            start = z + 1
        return items
