"""Small, valid, deterministic JPEG, PNG and PDF files made with the standard library only.

They stand in for a Bubble app's uploads: real enough for a downloader, a content sniffer or an image
library to accept, a few KB each, the same bytes for the same seed on every machine.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator


def synthetic_file(key: str) -> bytes:
    """A file for a "host/path" key, its format from the extension (PDF for anything else), its pattern
    and a size of 1-4 KB from the key, so the same key always gets the same bytes."""
    seed = zlib.crc32(key.encode())
    name = key.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in ("jpg", "jpeg"):
        return jpeg(seed, 240 + 16 * (seed % 5), 240 + 16 * (seed // 5 % 5))
    if extension == "png":
        return png(seed, 80 + 8 * (seed % 5), 80 + 8 * (seed // 5 % 5))
    return pdf(name.rsplit(".", 1)[0].replace("%20", " "), lines=30 + seed % 40)


# -- JPEG: baseline, 3 components, one DC coefficient per 8x8 block (a mosaic of flat squares) ----------
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)  # ITU T.81 Annex K.3, luminance DC
_DC_VALUES = tuple(range(12))
_AC_BITS = (1,) + (0,) * 15  # a one-symbol AC table: only end-of-block is ever written
_AC_VALUES = (0x00,)
_QUANT = 16  # flat quantisation: a block's DC coefficient is (mean - 128) / 2


def jpeg(seed: int, width: int = 192, height: int = 192) -> bytes:
    """A width x height colour JPEG whose 8x8 blocks are flat squares of a pattern chosen by `seed`."""
    blocks_x, blocks_y = -(-width // 8), -(-height // 8)
    header = b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + bytes([_QUANT]) * 64),
            _segment(
                0xC0, struct.pack(">BHHB", 8, height, width, 3) + b"".join(bytes([c, 0x11, 0]) for c in (1, 2, 3))
            ),
            _segment(
                0xC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALUES) + b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALUES)
            ),
            _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
        )
    )
    return header + _entropy_coded(_block_levels(seed, blocks_x, blocks_y)) + b"\xff\xd9"


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _block_levels(seed: int, blocks_x: int, blocks_y: int) -> Iterator[tuple[int, int, int]]:
    """(Y, Cb, Cr) DC levels, -64..63, of every block in scan order."""
    cb, cr = (seed * 37) % 100 - 50, (seed * 53) % 100 - 50  # one tint per image
    for by in range(blocks_y):
        for bx in range(blocks_x):
            yield ((bx * 7 + by * 13 + seed * 29) % 120) - 60, cb, cr


def _entropy_coded(levels: Iterator[tuple[int, int, int]]) -> bytes:
    dc_codes, eob = _huffman_codes(_DC_BITS, _DC_VALUES), _huffman_codes(_AC_BITS, _AC_VALUES)[0]
    bits = _BitWriter()
    previous = [0, 0, 0]
    for block in levels:
        for component, level in enumerate(block):
            diff, previous[component] = level - previous[component], level
            category = abs(diff).bit_length()
            bits.write(*dc_codes[category])
            if category:
                bits.write(diff if diff > 0 else diff + (1 << category) - 1, category)
            bits.write(*eob)
    return bits.flush()


def _huffman_codes(counts: tuple[int, ...], values: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), the canonical codes of a JPEG DHT table."""
    codes, code, symbols = {}, 0, iter(values)
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[next(symbols)] = (code, length)
            code += 1
        code <<= 1
    return codes


class _BitWriter:
    def __init__(self) -> None:
        self._out, self._acc, self._used = bytearray(), 0, 0

    def write(self, value: int, length: int) -> None:
        self._acc, self._used = (self._acc << length) | value, self._used + length
        while self._used >= 8:
            self._used -= 8
            self._emit((self._acc >> self._used) & 0xFF)

    def flush(self) -> bytes:
        if self._used:  # pad the last byte with 1-bits, as T.81 asks
            self.write((1 << (8 - self._used)) - 1, 8 - self._used)
        return bytes(self._out)

    def _emit(self, byte: int) -> None:
        self._out.append(byte)
        if byte == 0xFF:  # a 0xFF in entropy-coded data is stuffed so it is not read as a marker
            self._out.append(0)


# -- PNG --------------------------------------------------------------------------------------------
def png(seed: int, width: int = 96, height: int = 96) -> bytes:
    """A width x height RGB PNG with a diagonal pattern chosen by `seed`."""
    rows = b"".join(
        b"\x00" + bytes(((x * 5 + y * 3 + seed * (c + 7)) % 256) for x in range(width) for c in range(3))
        for y in range(height)
    )
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (
            _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
            _chunk(b"IDAT", zlib.compress(rows, 9)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# -- PDF --------------------------------------------------------------------------------------------
def pdf(title: str, lines: int = 40) -> bytes:
    """A one-page PDF 1.4 showing `title` and `lines` numbered lines of text, with a correct xref table."""
    text = [f"({_pdf_escape(title)}) Tj T*"] + [
        f"(Line {n}: notes for newcomers on visas, jobs, housing and language.) Tj T*" for n in range(1, lines + 1)
    ]
    stream = "BT /F1 11 Tf 14 TL 72 740 Td\n" + "\n".join(text) + "\nET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
