#!/usr/bin/env python
"""Pack the training photos small enough to travel to a rented GPU machine (64 MiB limit there).

    python scripts/pack_train_photos.py ../shared/data/train/clean .devdata/clean --max-side 768 --quality 92

Keeps the folder layout (one sub-folder per source set), shrinks photos whose longest side is over
--max-side (Lanczos) and re-encodes them as JPEG. Training crops are 128 px, and Rain100L is 481x321, so
smaller photos keep the rain at the scale the benchmark has. The output is a working copy for one
training run: it must never be committed (the data licences forbid shipping it; see ../shared/data/README.md).
"""
import argparse
import sys
from pathlib import Path

from PIL import Image

EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def pack(src: Path, dst: Path, max_side: int, quality: int) -> tuple:
    count, size = 0, 0
    for path in sorted(p for p in src.rglob("*") if p.suffix.lower() in EXTS):
        out = dst / path.relative_to(src).with_suffix(".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max_side / max(im.size)
            if scale < 1:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
            im.save(out, quality=quality)
        count, size = count + 1, size + out.stat().st_size
    return count, size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--max-side", type=int, default=768)
    ap.add_argument("--quality", type=int, default=92)
    a = ap.parse_args(argv)
    count, size = pack(Path(a.src), Path(a.dst), a.max_side, a.quality)
    print(f"{count} photos, {size / 2**20:.1f} MiB in {a.dst}")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main())
