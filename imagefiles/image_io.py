"""Read any image the way a viewer shows it, and write a result in the format it came in.

    read_image(path) -> ImageData      pixels (H, W, 3) uint8 | uint16, alpha kept apart, upright
    ImageData.to_tensor()              -> (1, 3, H, W) float32 in [0, 1] for the restorer
    img.with_tensor(y)                 the same image with restored pixels (alpha untouched)
    write_image(path, img)             PNG 8/16-bit, JPEG (quality 95, 4:4:4), WEBP, TIFF, BMP
    written_here(path)                 True for a file this pack wrote (its MARKER), which may be replaced

Every file is written atomically (`_atomic`) and marked: images carry EXIF Software = MARKER, JSON
files a first key "written_by": MARKER. BMP holds no metadata, so a BMP result is never recognised.

Modes: 1 / L / I;16 / I / F (gray) are restored as RGB and written back as gray; LA / RGBA / PA /
P with transparency keep their alpha channel exactly as read; P, CMYK, YCbCr, LAB, HSV are converted
to RGB. 16-bit PNGs (gray, gray+alpha, RGB, RGBA) stay 16-bit: Pillow reads 16-bit colour PNGs as
8-bit, so they are decoded by `png16.py`. EXIF orientation is applied on reading and removed from the
EXIF written out; the ICC profile is kept (dropped after a CMYK conversion, where it would be wrong).

Limits: other 16-bit colour files (TIFF, PPM) arrive 8-bit from Pillow and are written 8-bit; a
16-bit gray file in a format other than PNG is written as a 16-bit PNG; an Adam7-interlaced 16-bit
colour PNG is read 8-bit (a warning says so); only the first frame of an animation is restored.
"""
import dataclasses
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .png16 import PngError, png_header, read_png16, write_png16

log = logging.getLogger(__name__)

# folder / glob expansion picks these; a file named explicitly may have any suffix Pillow reads
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".tif", ".tiff", ".bmp",
                  ".gif", ".tga", ".ppm", ".pgm", ".pnm")
# source format -> format written (anything else is written as PNG)
KEEP_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WEBP", "TIFF": "TIFF", "BMP": "BMP"}
SUFFIX_OF = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
FORMAT_SUFFIXES = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"), "WEBP": (".webp",),
                   "TIFF": (".tif", ".tiff"), "BMP": (".bmp",)}
LUMA = (0.299, 0.587, 0.114)                    # ITU-R BT.601, as Pillow's RGB -> L
ORIENTATION = 0x0112
SOFTWARE = 0x0131                               # EXIF Software: holds MARKER in every image written here
MARKER = "weather-restore"
READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names it and says why."""


@dataclasses.dataclass
class ImageData:
    pixels: np.ndarray                  # (H, W, 3) uint8 or uint16, upright (EXIF orientation applied)
    alpha: Optional[np.ndarray]         # (H, W) same dtype, exactly as read; None when opaque
    gray: bool                          # the source had no colour: write it back as gray
    format: str                         # Pillow format of the source: "PNG", "JPEG", ...
    mode: str                           # source mode for messages: "RGBA", "I;16", "RGB;16", ...
    info: dict                          # "exif" / "icc_profile" / "dpi" carried to the output

    @property
    def bits(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def max_value(self) -> int:
        return 65535 if self.bits == 16 else 255

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height), as Pillow says it."""
        return self.pixels.shape[1], self.pixels.shape[0]

    def to_tensor(self) -> torch.Tensor:
        """(1, 3, H, W) float32 in [0, 1]."""
        x = torch.empty((1, 3) + self.pixels.shape[:2], dtype=torch.float32)
        for c in range(3):                      # one channel at a time: no second full-size copy
            x[0, c].copy_(torch.from_numpy(self.pixels[..., c].astype(np.float32)))
        return x.div_(self.max_value)

    def with_tensor(self, y: torch.Tensor) -> "ImageData":
        """This image with its colour pixels replaced by y (1, 3, H, W) in [0, 1]; alpha stays as read."""
        H, W = self.pixels.shape[:2]
        if y.ndim != 4 or y.shape[0] != 1 or y.shape[1] != 3 or tuple(y.shape[-2:]) != (H, W):
            raise ValueError(f"restored tensor must be (1, 3, {H}, {W}) for this image; got {tuple(y.shape)}")
        pixels = np.empty_like(self.pixels)                        # (H, W, 3)
        for c in range(3):                      # one channel at a time: no full-size float copy
            v = y[0, c].detach().to("cpu", torch.float32).clamp(0, 1).mul_(self.max_value).round_()
            pixels[..., c] = v.numpy()
        return dataclasses.replace(self, pixels=pixels)


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Numpy twin of ImageOps.exif_transpose for (H, W, ...) arrays (EXIF orientation 1..8)."""
    swap = (1, 0) + tuple(range(2, a.ndim))
    ops = {2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1], 4: lambda: a[::-1],
           5: lambda: a.transpose(swap), 6: lambda: np.rot90(a, -1), 7: lambda: a[::-1, ::-1].transpose(swap),
           8: lambda: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation]()) if orientation in ops else a


def _carried_info(im: Image.Image, exif: Optional[Image.Exif] = None) -> dict:
    info = {}
    exif = exif if exif is not None else im.getexif()
    if ORIENTATION in exif:
        del exif[ORIENTATION]                   # the pixels are upright now
    if len(exif):
        info["exif"] = exif.tobytes()
    for key in ("icc_profile", "dpi"):
        if im.info.get(key):
            info[key] = im.info[key]
    return info


def _read_png16(path: Path, im: Image.Image) -> ImageData:
    exif = im.getexif()
    orientation = exif.get(ORIENTATION, 1)
    a = _orient(read_png16(path), orientation)                     # (H, W, C) uint16
    C = a.shape[2]
    gray = C <= 2
    pixels = np.repeat(a[..., :1], 3, axis=2) if gray else a[..., :3]
    alpha = a[..., C - 1].copy() if C in (2, 4) else None
    mode = {1: "I;16", 2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[C]
    return ImageData(np.ascontiguousarray(pixels), alpha, gray, "PNG", mode, _carried_info(im, exif))


def _from_pillow(im: Image.Image, fmt: str) -> ImageData:
    mode = im.mode
    im = ImageOps.exif_transpose(im)            # a copy without the orientation tag in its EXIF
    info = _carried_info(im)
    alpha, gray = None, False
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im)
        if mode == "F":
            a = np.clip(np.nan_to_num(a), 0, 1) * 65535 + 0.5
        g = np.clip(a, 0, 65535).astype(np.uint16)
        return ImageData(np.repeat(g[..., None], 3, axis=2), None, True, fmt, mode, info)
    if mode in ("1", "L", "LA", "La"):
        gray = True
        im = im.convert("LA" if mode in ("LA", "La") else "L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("RGBA", "RGBa"):
        im = im.convert("RGBA")
    elif mode != "RGB":                                            # CMYK, YCbCr, LAB, HSV, RGBX
        if mode == "CMYK":
            info.pop("icc_profile", None)       # a CMYK profile would mislabel the RGB result
        im = im.convert("RGB")
    a = np.asarray(im)
    if a.ndim == 2:
        a = a[..., None]
    if im.mode in ("LA", "RGBA"):
        alpha = a[..., -1].copy()
        a = a[..., :-1]
    pixels = np.repeat(a, 3, axis=2) if gray else a
    return ImageData(np.ascontiguousarray(pixels), alpha, gray, fmt, mode, info)


def read_image(path) -> ImageData:
    """Decode `path` upright; ImageReadError (naming the file and the reason) when it cannot."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            fmt = im.format or "PNG"
            head = png_header(path) if fmt == "PNG" else None
            if head and head["bit_depth"] == 16 and head["color_type"] in (0, 2, 4, 6):
                if not head["interlace"]:
                    return _read_png16(path, im)
                if head["color_type"] != 0:
                    log.warning("%s: Adam7-interlaced 16-bit colour PNG; read as 8-bit (re-save it "
                                "non-interlaced to keep 16 bits)", path)
            im.seek(0)
            im.load()
            return _from_pillow(im, fmt)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read (unknown or corrupt format)") from None
    except (PngError, *READ_ERRORS) as e:
        raise ImageReadError(f"{path}: cannot decode it ({type(e).__name__}: {e}); the file is corrupt, "
                             f"truncated or too large") from e


def output_format(img: ImageData, source_suffix: str) -> Tuple[str, str]:
    """(Pillow format, file suffix) for writing a result of `img`: its own format where it can hold
    the image (16-bit only as PNG), else PNG. Keeps the source's spelling of the suffix (.jpeg)."""
    fmt = KEEP_FORMATS.get(img.format, "PNG")
    if img.bits == 16:
        fmt = "PNG"
    suffix = source_suffix.lower()
    return fmt, suffix if suffix in FORMAT_SUFFIXES[fmt] else SUFFIX_OF[fmt]


def _channels(img: ImageData) -> np.ndarray:
    """(H, W, C) array to write: gray (luma of the restored RGB) or RGB, plus alpha."""
    p = img.pixels
    if img.gray:
        luma = p.astype(np.float32) @ np.asarray(LUMA, np.float32)
        p = np.clip(np.rint(luma), 0, img.max_value).astype(p.dtype)[..., None]
    if img.alpha is not None:
        p = np.concatenate([p, img.alpha[..., None]], axis=2)
    return p


def _marked_exif(exif: Optional[bytes]) -> bytes:
    """The carried EXIF (if any) with Software = MARKER, so that written_here knows the file."""
    e = Image.Exif()
    if exif:
        e.load(exif)
    e[SOFTWARE] = MARKER
    return e.tobytes()


def _save(tmp: Path, img: ImageData, fmt: str) -> None:
    a = _channels(img)
    exif = _marked_exif(img.info.get("exif"))
    if img.bits == 16 and fmt == "PNG":
        write_png16(tmp, a, exif=exif, icc_profile=img.info.get("icc_profile"))
        return
    if img.bits == 16:
        a = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if fmt == "JPEG" and a.shape[2] in (2, 4):                     # JPEG has no alpha
        a = a[..., :-1]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    pil = Image.fromarray(a[..., 0] if mode == "L" else a, mode)
    kw = {k: img.info[k] for k in ("icc_profile", "dpi") if k in img.info}
    kw["exif"] = exif
    if fmt == "JPEG":
        kw.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        kw.update(quality=95, method=4)
    elif fmt == "TIFF":
        kw.update(compression="tiff_lzw")
    elif fmt == "BMP":
        kw = {}
    pil.save(tmp, format=fmt, **kw)


def write_image(path, img: ImageData, fmt: Optional[str] = None) -> Path:
    """Write `img` as `fmt` (default: from output_format) atomically, marked; returns the path."""
    fmt = fmt or output_format(img, Path(path).suffix)[0]
    return _atomic(path, lambda tmp: _save(tmp, img, fmt))


def _atomic(path, write) -> Path:
    """write(tmp) next to `path`, then rename it into place: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_gray8(path, values: torch.Tensor) -> Path:
    """Save a (H, W) or (1, 1, H, W) map in [0, 1] as an 8-bit gray PNG, atomically."""
    v = values.detach().float().cpu().reshape(values.shape[-2:]).clamp(0, 1).mul(255).round_()
    im = Image.fromarray(v.numpy().astype(np.uint8), "L")
    return _atomic(path, lambda tmp: im.save(tmp, format="PNG", exif=_marked_exif(None)))


def write_text(path, text: str) -> Path:
    """Write a small text file atomically."""
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path, data: dict) -> Path:
    """Write `data` as indented JSON, marked ("written_by" first), atomically."""
    return write_text(path, json.dumps({"written_by": MARKER, **data}, indent=2) + "\n")


def written_here(path) -> bool:
    """True when `path` is an image or JSON file this pack wrote (its MARKER); False for anything else."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            return im.getexif().get(SOFTWARE) == MARKER
    except READ_ERRORS:                         # not an image (UnidentifiedImageError is an OSError)
        pass
    try:
        if path.stat().st_size > 1 << 24:       # our JSON files are small: do not read a big foreign file
            return False
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("written_by") == MARKER
