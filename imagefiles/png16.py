"""16-bit PNG files read and written with numpy and zlib, because Pillow cannot.

Pillow keeps 16 bits for grayscale PNGs only (mode "I;16"); it reads 16-bit RGB / RGBA / gray+alpha
PNGs as 8-bit images and has no 16-bit colour mode to write them from. This module decodes and
encodes such files itself (PNG specification, ISO/IEC 15948):

    read_png16(path) -> (H, W, C) uint16, C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    write_png16(path, array, exif=None, icc_profile=None)

Hostile files: the declared size is refused above Pillow's decompression-bomb limit (the rule Pillow
applies to 8-bit files), and the image data is inflated only up to the size the header declares.

Limits: non-interlaced files only (`png_header(...)["interlace"]` says; image_io falls back to
Pillow's 8-bit decode for Adam7-interlaced ones and warns); a tRNS colour key is ignored.
Rows filtered with None / Sub / Up are undone row by row; files with Average or Paeth rows are
undone along anti-diagonals (every pixel depends only on its left, upper and upper-left neighbours),
so a 24-megapixel file takes a few seconds, not minutes.
"""
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}             # PNG colour type -> channels
COLOR_TYPE = {c: t for t, c in CHANNELS.items()}


class PngError(ValueError):
    """The file is not a PNG this module can decode; the message says why."""


def png_header(path) -> Optional[dict]:
    """IHDR fields of a PNG file (width, height, bit_depth, color_type, interlace), None if not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return dict(width=w, height=h, bit_depth=depth, color_type=ctype, interlace=interlace)


def _chunks(data: bytes, path):
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise PngError(f"{path}: chunk {kind!r} is cut off at byte {pos}; the file is truncated")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise PngError(f"{path}: no IEND chunk; the file is truncated")


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter_rows(ftypes: np.ndarray, rows: np.ndarray, bpp: int) -> np.ndarray:
    """None / Sub / Up rows only: one vectorised step per row. rows (H, stride) uint8."""
    H, stride = rows.shape
    out = np.empty_like(rows)
    prev = np.zeros(stride, np.uint8)
    for y in range(H):
        r, f = rows[y], ftypes[y]
        if f == 0:
            out[y] = r
        elif f == 1:                            # Sub: running sum per byte lane, modulo 256
            out[y] = np.cumsum(r.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        else:                                   # Up
            out[y] = r + prev
        prev = out[y]
    return out


def _unfilter_wavefront(ftypes: np.ndarray, rows: np.ndarray, bpp: int) -> np.ndarray:
    """Any filter types: pixels on the anti-diagonal y + x = t depend only on diagonals t-1 and t-2."""
    H, stride = rows.shape
    W = stride // bpp
    raw = rows.reshape(H, W, bpp).astype(np.int32)
    rec = np.zeros((H + 1, W + 1, bpp), np.int32)      # rec[y + 1, x + 1] = pixel (y, x); zero border
    for t in range(H + W - 1):
        ys = np.arange(max(0, t - W + 1), min(H, t + 1))
        xs = t - ys
        a, b, c = rec[ys + 1, xs], rec[ys, xs + 1], rec[ys, xs]     # left, up, up-left: (n, bpp)
        f = ftypes[ys][:, None]
        pred = np.select([f == 1, f == 2, f == 3, f == 4],
                         [a, b, (a + b) >> 1, _paeth(a, b, c)], default=0)
        rec[ys + 1, xs + 1] = (raw[ys, xs] + pred) & 0xFF
    return rec[1:, 1:].astype(np.uint8).reshape(H, stride)


def _check_size(W: int, H: int, path) -> None:
    """Pillow's decompression-bomb rule: refused above 2 * Image.MAX_IMAGE_PIXELS (None = no limit)."""
    if not W or not H:
        raise PngError(f"{path}: the header declares a {W}x{H} image; the file is corrupt")
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and W * H > 2 * limit:
        raise PngError(f"{path}: the header declares {W}x{H} = {W * H} pixels, over the limit of {2 * limit} "
                       f"(2 x PIL.Image.MAX_IMAGE_PIXELS); a decompression bomb or a corrupt file. Raise "
                       f"Image.MAX_IMAGE_PIXELS if the image is genuine")


def _inflate(idat, need: int, path) -> bytearray:
    """The IDAT zlib stream -> exactly `need` bytes, refused as soon as it would inflate past them:
    a few kilobytes of zeros can inflate to gigabytes."""
    d = zlib.decompressobj()
    out = bytearray()
    try:
        for body in idat:
            out += d.decompress(body, need + 1 - len(out))     # max_length >= 1 here (0 means no limit)
            if len(out) > need:
                raise PngError(f"{path}: image data inflates past the {need} bytes its header declares; "
                               f"the file is corrupt or a decompression bomb")
    except zlib.error as e:
        raise PngError(f"{path}: image data is corrupt ({e})") from e
    if len(out) < need:
        raise PngError(f"{path}: image data holds {len(out)} bytes but the header needs {need}; the file is truncated")
    return out


def read_png16(path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG -> (H, W, C) uint16 (C = 1, 2, 3 or 4)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:8] != SIGNATURE:
        raise PngError(f"{path}: not a PNG file (no PNG signature)")
    header, idat = None, []
    for kind, body in _chunks(data, path):
        if kind == b"IHDR" and len(body) >= 13:
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise PngError(f"{path}: no IHDR chunk")
    W, H, depth, ctype, _, _, interlace = header
    if depth != 16 or ctype not in CHANNELS:
        raise PngError(f"{path}: bit depth {depth}, colour type {ctype}; read_png16 handles 16-bit "
                       f"gray / gray+alpha / RGB / RGBA only")
    if interlace:
        raise PngError(f"{path}: Adam7-interlaced 16-bit PNG is not supported; re-save it non-interlaced")
    _check_size(W, H, path)
    C = CHANNELS[ctype]
    bpp, stride = 2 * C, 2 * C * W
    need = H * (stride + 1)                                     # every row: one filter byte, then pixels
    rows = np.frombuffer(_inflate(idat, need, path), np.uint8).reshape(H, stride + 1)
    ftypes, rows = rows[:, 0], rows[:, 1:]
    if ftypes.max(initial=0) > 4:
        raise PngError(f"{path}: unknown row filter type {int(ftypes.max())}; the file is corrupt")
    if np.isin(ftypes, (3, 4)).any():
        pixels = _unfilter_wavefront(ftypes, rows, bpp)
    else:
        pixels = _unfilter_rows(ftypes, rows, bpp)
    return pixels.view(">u2").reshape(H, W, C).astype(np.uint16)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def write_png16(path, array: np.ndarray, exif: Optional[bytes] = None,
                icc_profile: Optional[bytes] = None, level: int = 6) -> Path:
    """Encode (H, W) or (H, W, C) uint16 (C = 1..4) as a 16-bit PNG; rows use the Sub filter."""
    path = Path(path)
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in COLOR_TYPE or a.dtype != np.uint16 or 0 in a.shape[:2]:
        raise ValueError(f"write_png16 needs a non-empty (H, W) or (H, W, C) uint16 array with C in 1..4; "
                         f"got shape {a.shape}, dtype {a.dtype}")
    H, W, C = a.shape
    bpp = 2 * C
    rows = np.ascontiguousarray(a.astype(">u2")).view(np.uint8).reshape(H, W * bpp)
    filtered = np.empty((H, W * bpp + 1), np.uint8)
    filtered[:, 0] = 1                                   # Sub: byte minus the same byte of the left pixel
    filtered[:, 1:bpp + 1] = rows[:, :bpp]
    filtered[:, bpp + 1:] = rows[:, bpp:] - rows[:, :-bpp]
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, COLOR_TYPE[C], 0, 0, 0))]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    parts += [_chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)), _chunk(b"IEND", b"")]
    path.write_bytes(b"".join(parts))
    return path
