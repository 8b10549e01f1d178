"""Convert an X window dump (``xwd``) of a TrueColor screen to PNG, with the standard library only.

Why not GIMP or ImageMagick: GIMP's XWD loader misreads Xvfb's packed 24-bit dumps (the image
comes out 3/4 wide with stripes), and ImageMagick is not installed in the GIMP 3 root.
usage: python3 xwd2png.py IN.xwd OUT.png
"""

import struct
import sys
import zlib

HEADER_FIELDS = 25  # XWDFileHeader: 25 CARD32 values, then the window name


def _shift(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def read_xwd(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a ZPixmap dump at 24 or 32 bits per pixel."""
    header = struct.unpack(f">{HEADER_FIELDS}I", data[: HEADER_FIELDS * 4])
    header_size, width, height = header[0], header[4], header[5]
    byte_order, bits_per_pixel, bytes_per_line = header[7], header[11], header[12]
    red_mask, green_mask, blue_mask, ncolors = header[14], header[15], header[16], header[19]
    offset = header_size + ncolors * 12  # XWDColor entries follow the header
    pixel_bytes = bits_per_pixel // 8
    if bytes_per_line < width * pixel_bytes:  # some servers report 32 bpp for packed 24-bit rows
        pixel_bytes = bytes_per_line // width
    order = "little" if byte_order == 0 else "big"
    shifts = [(m, _shift(m)) for m in (red_mask, green_mask, blue_mask)]
    rgb = bytearray()
    for y in range(height):
        row = data[offset + y * bytes_per_line : offset + y * bytes_per_line + width * pixel_bytes]
        for x in range(0, width * pixel_bytes, pixel_bytes):
            value = int.from_bytes(row[x : x + pixel_bytes], order)
            rgb += bytes((value & m) >> s for m, s in shifts)
    return width, height, bytes(rgb)


def write_png(path: str, width: int, height: int, rgb: bytes) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    stride = width * 3
    raw = b"".join(b"\0" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        write_png(sys.argv[2], *read_xwd(f.read()))
