"""Compressed files told by their first bytes and read member after member (gzip, zstd, bz2, xz).

A file of several members (gzip or zstd frames one after another, as WARCs and parallel
compressors write them) is read to its end, and a file cut short inside a member is told apart
from one that ends cleanly: `Members` either raises EOFError there (the JSONL reader turns that
into one `truncated_file` entry) or just ends and says why in `cut` (fastwarc reads ahead in
large blocks, so an error from inside a block would lose the whole records already read).
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import IO, Any

import zstandard

MAGIC = {b"\x1f\x8b": ".gz", b"\x28\xb5\x2f\xfd": ".zst", b"BZh": ".bz2", b"\xfd7zXZ\x00": ".xz"}
DECOMPRESSORS: dict[str, Any] = {
    ".gz": lambda: zlib.decompressobj(wbits=31),
    ".zst": lambda: zstandard.ZstdDecompressor().decompressobj(),
    ".bz2": bz2.BZ2Decompressor,
    ".xz": lzma.LZMADecompressor,
}
CHUNK = 1 << 20


def kind_of(f: IO[bytes]) -> str:
    """The compression of a seekable stream by its first bytes ("" for none); the stream is rewound."""
    head = f.read(6)
    f.seek(0)
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), "")


class Members(io.RawIOBase):
    """The decompressed bytes of `raw` (compressed as `kind`), member after member. Where the input
    ends inside a member: EOFError with `raise_at_cut`, else the stream ends and `cut` says why
    (corrupt data likewise). Positions can be asked and skipped forward, as fastwarc does."""

    def __init__(self, raw: IO[bytes], kind: str, raise_at_cut: bool = False) -> None:
        self.raw = raw
        self.new = DECOMPRESSORS[kind]
        self.why_cut = (
            "the zstd stream ends inside a frame (file cut short)"
            if kind == ".zst"
            else f"the {kind[1:]} stream ends inside a member (file cut short)"
        )
        self.obj = self.new()
        self.raise_at_cut = raise_at_cut
        self.fed = False  # the current member has received input
        self.cut: str | None = None
        self.out = b""
        self.at = 0
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # tell, and skipping forward; nothing seeks back

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.pos + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self.pos:
            raise io.UnsupportedOperation("a decompressed stream only skips forward")
        while self.pos < target and self.read(min(target - self.pos, CHUNK)):
            pass
        return self.pos

    def readinto(self, buffer: Any) -> int:
        while self.at >= len(self.out):
            chunk = b"" if self.cut else self.raw.read(CHUNK)
            if not chunk:
                if self.fed and not self.obj.eof and not self.cut:
                    if self.raise_at_cut:
                        raise EOFError(self.why_cut)
                    self.cut = self.why_cut
                return 0
            self.out, self.at = self._feed(chunk), 0
        n = min(len(buffer), len(self.out) - self.at)
        buffer[:n] = self.out[self.at : self.at + n]
        self.at += n
        self.pos += n
        return n

    def _feed(self, data: bytes) -> bytes:
        parts = []
        try:
            while data:
                if self.obj.eof:  # the next member starts
                    self.obj, self.fed = self.new(), False
                self.fed = True
                parts.append(self.obj.decompress(data))
                data = self.obj.unused_data if self.obj.eof else b""
        except (zlib.error, zstandard.ZstdError, lzma.LZMAError, OSError, EOFError) as exc:
            if self.raise_at_cut:
                raise
            self.cut = f"corrupt compressed data: {exc}"
        return b"".join(parts)

    def close(self) -> None:
        self.raw.close()
        super().close()
