"""Image reading and writing for the restore command: every mode, 16-bit PNG, EXIF orientation, bad files."""
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from weather_restore.imagefiles.image_io import (ImageData, ImageReadError, _orient, output_format, read_image,
                                                 write_gray8, write_image, write_json, written_here)
from weather_restore.imagefiles.png16 import PngError, png_header, read_png16, write_png16

RNG = np.random.default_rng(0)


def rand8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def roundtrip(path, out):
    """read -> tensor -> back -> write, unchanged pixels."""
    img = read_image(path)
    return write_image(out, img.with_tensor(img.to_tensor()))


# --- 8-bit modes --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,shape", [("RGB", (9, 13, 3)), ("RGBA", (9, 13, 4)), ("L", (9, 13)),
                                        ("LA", (9, 13, 2))])
def test_8bit_modes_roundtrip_exactly_and_keep_their_mode(tmp_path, mode, shape):
    a = rand8(*shape)
    Image.fromarray(a, mode).save(tmp_path / "in.png")
    img = read_image(tmp_path / "in.png")
    assert img.pixels.shape == (9, 13, 3) and img.pixels.dtype == np.uint8 and img.bits == 8
    assert img.gray == (mode in ("L", "LA"))
    assert (img.alpha is not None) == (mode in ("RGBA", "LA"))
    x = img.to_tensor()
    assert x.shape == (1, 3, 9, 13) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    out = roundtrip(tmp_path / "in.png", tmp_path / "out.png")
    back = Image.open(out)
    assert back.mode == mode and back.size == (13, 9)
    np.testing.assert_array_equal(np.asarray(back), a)


def test_alpha_is_kept_untouched_while_colour_changes(tmp_path):
    a = rand8(6, 8, 4)
    Image.fromarray(a, "RGBA").save(tmp_path / "in.png")
    img = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.png", img.with_tensor(1 - img.to_tensor()))     # invert the colours
    b = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(b[..., 3], a[..., 3])
    np.testing.assert_array_equal(b[..., :3], 255 - a[..., :3])


def test_gray_is_restored_as_rgb_and_written_back_as_luma(tmp_path):
    Image.fromarray(np.full((4, 5), 100, np.uint8), "L").save(tmp_path / "in.png")
    img = read_image(tmp_path / "in.png")
    y = torch.zeros(1, 3, 4, 5)
    y[:, 0], y[:, 1], y[:, 2] = 1.0, 0.5, 0.0                                  # R=255, G=127.5, B=0
    write_image(tmp_path / "out.png", img.with_tensor(y))
    b = Image.open(tmp_path / "out.png")
    assert b.mode == "L"
    expected = round(0.299 * 255 + 0.587 * 128 + 0.114 * 0)                  # with_tensor rounds G to 128
    assert np.all(np.asarray(b) == expected)


def test_palette_becomes_rgb_or_rgba_when_transparent(tmp_path):
    rgb = Image.fromarray(rand8(5, 6, 3), "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    rgb.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.alpha is None and not img.gray
    np.testing.assert_array_equal(img.pixels, np.asarray(rgb.convert("RGB")))
    rgb.save(tmp_path / "pt.png", transparency=0)
    img = read_image(tmp_path / "pt.png")
    assert img.alpha is not None
    np.testing.assert_array_equal(img.alpha, np.asarray(Image.open(tmp_path / "pt.png").convert("RGBA"))[..., 3])
    np.testing.assert_array_equal(img.alpha == 0, np.asarray(rgb) == 0)     # index 0 is the transparent one
    assert (img.alpha == 0).any() and (img.alpha == 255).any()


def test_cmyk_jpeg_is_converted_to_rgb_and_written_as_jpeg(tmp_path):
    cmyk = Image.fromarray(rand8(8, 8, 3), "RGB").convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    img = read_image(tmp_path / "c.jpg")
    assert img.format == "JPEG" and img.mode == "CMYK" and img.pixels.shape == (8, 8, 3)
    assert output_format(img, ".jpg") == ("JPEG", ".jpg")
    out = write_image(tmp_path / "o.jpg", img)
    assert Image.open(out).mode == "RGB"


def test_jpeg_is_written_at_high_quality(tmp_path):
    yy, xx = np.mgrid[0:64, 0:64]
    a = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)     # smooth: JPEG-friendly
    Image.fromarray(a).save(tmp_path / "in.jpg", quality=100, subsampling=0)
    src = np.asarray(Image.open(tmp_path / "in.jpg")).astype(int)
    roundtrip(tmp_path / "in.jpg", tmp_path / "out.jpg")
    again = np.asarray(Image.open(tmp_path / "out.jpg")).astype(int)
    assert np.abs(again - src).mean() < 1.0                                 # q95 4:4:4; q75 4:2:0 is ~2


# --- 16-bit ------------------------------------------------------------------------------------
def test_16bit_gray_png_stays_16bit(tmp_path):
    a = RNG.integers(0, 65536, (7, 9), dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.bits == 16 and img.gray and img.max_value == 65535
    out = roundtrip(tmp_path / "g.png", tmp_path / "o.png")
    assert png_header(out)["bit_depth"] == 16 and png_header(out)["color_type"] == 0
    np.testing.assert_array_equal(read_png16(out)[..., 0], a)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), a)          # Pillow agrees


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_is_read_and_written_in_16_bits(tmp_path, channels):
    a = RNG.integers(0, 65536, (6, 10, channels), dtype=np.uint16)
    write_png16(tmp_path / "c.png", a)
    assert Image.open(tmp_path / "c.png").mode != "I;16"                      # Pillow alone loses bits
    img = read_image(tmp_path / "c.png")
    assert img.bits == 16 and img.gray == (channels == 2) and (img.alpha is not None) == (channels != 3)
    np.testing.assert_array_equal(img.pixels[..., 0], a[..., 0])
    if channels == 4:
        np.testing.assert_array_equal(img.alpha, a[..., 3])
    out = roundtrip(tmp_path / "c.png", tmp_path / "o.png")
    np.testing.assert_array_equal(read_png16(out), a)


def _reference_png16(a: np.ndarray, filters) -> bytes:
    """Independent per-pixel PNG encoder (all five filter types, one per row, cycling) for tests."""
    H, W, C = a.shape
    bpp = 2 * C
    rows = a.astype(">u2").view(np.uint8).reshape(H, W * bpp).astype(int)
    out = bytearray()
    for y in range(H):
        f = filters[y % len(filters)]
        out.append(f)
        for i in range(W * bpp):
            av = rows[y, i - bpp] if i >= bpp else 0
            bv = rows[y - 1, i] if y else 0
            cv = rows[y - 1, i - bpp] if y and i >= bpp else 0
            p = av + bv - cv
            paeth = min((abs(p - av), 0, av), (abs(p - bv), 1, bv), (abs(p - cv), 2, cv))[2]
            pred = [0, av, bv, (av + bv) // 2, paeth][f]
            out.append((rows[y, i] - pred) % 256)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[C]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("filters", [(0, 1, 2), (3,), (4,), (0, 1, 2, 3, 4)])
def test_png16_decoder_undoes_every_filter_type(tmp_path, filters):
    a = RNG.integers(0, 65536, (7, 11, 3), dtype=np.uint16)
    (tmp_path / "f.png").write_bytes(_reference_png16(a, filters))
    np.testing.assert_array_equal(read_png16(tmp_path / "f.png"), a)


def test_png16_rejects_truncated_and_wrong_files(tmp_path):
    a = RNG.integers(0, 65536, (20, 20, 3), dtype=np.uint16)
    data = write_png16(tmp_path / "ok.png", a).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(PngError, match="truncated"):
        read_png16(tmp_path / "cut.png")
    Image.fromarray(rand8(4, 4, 3)).save(tmp_path / "eight.png")
    with pytest.raises(PngError, match="bit depth 8"):
        read_png16(tmp_path / "eight.png")
    with pytest.raises(ValueError, match="uint16"):
        write_png16(tmp_path / "x.png", np.zeros((3, 3, 3), np.uint8))


# --- orientation -------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    a = rand8(5, 8, 3)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(_orient(a, orientation), expected)
    img = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(img.pixels, expected)
    if "exif" in img.info:                                                 # kept, without the orientation
        assert 0x0112 not in _exif(img.info["exif"])


def _exif(raw: bytes):
    e = Image.Exif()
    e.load(raw)
    return e


def test_exif_rotation_makes_a_16bit_png_upright(tmp_path):
    a = RNG.integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    write_png16(tmp_path / "r.png", a, exif=_exif_bytes(6))
    img = read_image(tmp_path / "r.png")
    assert img.pixels.shape == (6, 4, 3)
    np.testing.assert_array_equal(img.pixels, np.rot90(a, -1))             # 6 = turn 90 degrees clockwise
    out = write_image(tmp_path / "o.png", img)
    assert Image.open(out).getexif().get(0x0112) is None                    # written upright, tag gone


def _exif_bytes(orientation: int) -> bytes:
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


# --- sizes, formats, bad files -----------------------------------------------------------------
def test_one_pixel_image(tmp_path):
    Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)).save(tmp_path / "one.png")
    img = read_image(tmp_path / "one.png")
    assert img.size == (1, 1) and img.to_tensor().shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(np.asarray(Image.open(roundtrip(tmp_path / "one.png", tmp_path / "o.png"))),
                                  [[[10, 20, 30]]])


def test_output_format_follows_the_input():
    class Img:
        def __init__(self, fmt, bits=8):
            self.format, self.bits = fmt, bits
    assert output_format(Img("JPEG"), ".JPEG") == ("JPEG", ".jpeg")
    assert output_format(Img("MPO"), ".jpg") == ("JPEG", ".jpg")
    assert output_format(Img("PNG", 16), ".png") == ("PNG", ".png")
    assert output_format(Img("TIFF", 16), ".tif") == ("PNG", ".png")       # 16 bits survive as PNG only
    assert output_format(Img("GIF"), ".gif") == ("PNG", ".png")
    assert output_format(Img("WEBP"), ".webp") == ("WEBP", ".webp")


def test_unreadable_files_raise_an_error_naming_the_file(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.png.*not an image"):
        read_image(tmp_path / "notes.png")
    Image.fromarray(rand8(64, 64, 3)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    assert len(data) > 1000
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 3])
    with pytest.raises(ImageReadError, match="cut.jpg.*truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.jpg")


def test_with_tensor_checks_the_shape(tmp_path):
    Image.fromarray(rand8(4, 5, 3)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 5\)"):
        read_image(tmp_path / "a.png").with_tensor(torch.zeros(1, 3, 5, 4))


def test_density_map_is_written_as_8bit_gray(tmp_path):
    d = torch.linspace(0, 1, 12).reshape(1, 1, 3, 4)
    out = write_gray8(tmp_path / "d.png", d)
    im = Image.open(out)
    assert im.mode == "L" and im.size == (4, 3)
    assert np.asarray(im)[0, 0] == 0 and np.asarray(im)[-1, -1] == 255


# --- marker: only files written here may be replaced -------------------------------------------------
def test_written_files_carry_the_marker_and_foreign_files_do_not(tmp_path):
    im = Image.fromarray(rand8(6, 5, 3))
    exif = im.getexif()
    exif[0x010F], exif[0x0131] = "Cam", "Camera firmware 1.0"
    for suffix in (".png", ".jpg", ".webp", ".tif", ".bmp"):
        im.save(tmp_path / f"photo{suffix}", exif=exif)
        img = read_image(tmp_path / f"photo{suffix}")
        out = write_image(tmp_path / f"out{suffix}", img)
        assert not written_here(tmp_path / f"photo{suffix}")                # a camera's file is not ours
        assert written_here(out) == (suffix != ".bmp")                      # BMP holds no metadata
        if suffix in (".png", ".jpg", ".webp"):                             # (TIFF tags are not carried)
            assert Image.open(out).getexif().get(0x010F) == "Cam"           # the rest of the EXIF is kept
    write_png16(tmp_path / "deep.png", RNG.integers(0, 65536, (4, 3, 3), dtype=np.uint16))
    assert not written_here(tmp_path / "deep.png")
    assert written_here(write_image(tmp_path / "deep_out.png", read_image(tmp_path / "deep.png")))
    assert written_here(write_gray8(tmp_path / "d.png", torch.rand(3, 4)))
    assert written_here(write_json(tmp_path / "r.json", {"rows": []}))
    (tmp_path / "notes.json").write_text('{"rows": []}')
    (tmp_path / "list.json").write_text('["weather-restore"]')
    for name in ("notes.json", "list.json", "missing.png", "."):
        assert not written_here(tmp_path / name)


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def half_then_interrupt(self, fp, *a, **k):
        Path(fp).write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt
    monkeypatch.setattr(Image.Image, "save", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_gray8(tmp_path / "d.png", torch.rand(3, 4))                      # the density map
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "o.png", ImageData(rand8(4, 4, 3), None, False, "PNG", "RGB", {}))
    assert list(tmp_path.iterdir()) == []
