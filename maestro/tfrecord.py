"""The TFRecord container, framed by hand so that any Beam filesystem (local, GCS, HDFS) can
hold the shards and tests can read them back without TensorFlow's data pipeline.

Each record: length (uint64, little-endian), masked CRC-32C of the length, data, masked CRC of
the data; the same bytes `tf.io.TFRecordWriter` writes.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterable, Iterator

import crcmod.predefined

_crc32c = crcmod.predefined.mkPredefinedCrcFun("crc-32c")


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


def write_records(handle: BinaryIO, records: Iterable[bytes]) -> int:
    count = 0
    for data in records:
        handle.write(frame(data))
        count += 1
    return count


def read_records(handle: BinaryIO) -> Iterator[bytes]:
    """Records of a TFRecord stream, with both checksums verified."""
    while True:
        header = handle.read(12)
        if not header:
            return
        if len(header) != 12:
            raise ValueError("truncated TFRecord header")
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if _masked_crc(length_bytes) != length_crc:
            raise ValueError("corrupt TFRecord length")
        (length,) = struct.unpack("<Q", length_bytes)
        data = handle.read(length)
        footer = handle.read(4)
        if len(data) != length or len(footer) != 4 or struct.unpack("<I", footer)[0] != _masked_crc(data):
            raise ValueError("corrupt or truncated TFRecord data")
        yield data
