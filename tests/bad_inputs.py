"""Inputs people send that the product must refuse, made on the spot for the tests."""

import functools
import struct
import zlib
from pathlib import Path


def write_png_bomb(path: Path, width: int, height: int) -> None:
    """A valid greyscale PNG of ``width`` x ``height`` black pixels in a few hundred kB (a decompression bomb)."""
    path.write_bytes(_png_bomb(width, height))


@functools.cache  # compressing 400 MB of zeros takes over a second: made once per size and process
def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer, row = zlib.compressobj(9), bytes(width + 1)  # filter byte 0, then the row
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
