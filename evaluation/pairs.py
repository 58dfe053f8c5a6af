"""Paired benchmark folders: find the degraded/clean sub-folders and match their files by name.

Known layouts (first match wins): input/target (Rain100L here), hazy/gt (RESIDE HSTS), hazy/clear,
rain/norain, rainy/gt, lq/gt, degraded/clean. Any other folder pair is given explicitly
(`input_dir`, `target_dir`). Files pair by identical name, else by identical stem (1.png ~ 1.jpg); a
folder holding two files of one stem (1.png and 1.jpg) is then refused, not paired by chance.
"""
import re
from pathlib import Path
from typing import List, Optional, Tuple

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LAYOUTS = (("input", "target"), ("hazy", "gt"), ("hazy", "clear"), ("rain", "norain"),
           ("rainy", "gt"), ("lq", "gt"), ("degraded", "clean"))


def natural_key(name: str):
    """Sort '2.png' before '10.png'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> List[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def find_layout(folder, input_dir=None, target_dir=None) -> Tuple[Path, Path]:
    """(degraded folder, clean folder) of a benchmark folder; explicit dirs (absolute or relative to
    `folder`) win over the known layouts."""
    folder = Path(folder) if folder is not None else None
    if input_dir is not None or target_dir is not None:
        if input_dir is None or target_dir is None:
            raise ValueError("give both input_dir and target_dir (degraded and clean images), or neither")
        base = folder if folder is not None else Path(".")
        dirs = tuple(Path(d) if Path(d).is_absolute() else base / d for d in (input_dir, target_dir))
        for d in dirs:
            if not d.is_dir():
                raise FileNotFoundError(f"image folder not found: {d}")
        return dirs
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(f"evaluation folder not found: {folder}")
    for inp, tgt in LAYOUTS:
        if (folder / inp).is_dir() and (folder / tgt).is_dir():
            return folder / inp, folder / tgt
    subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    known = ", ".join(f"{a}/{b}" for a, b in LAYOUTS)
    raise ValueError(
        f"{folder} has no known paired layout (sub-folders {subdirs or 'none'}; known: {known}); "
        f"name the folders with --input-dir and --target-dir")


def _by_stem(files: List[Path]) -> dict:
    """stem -> file; two files of one stem cannot be told apart by stem, so they are refused."""
    out = {}
    for p in files:
        if p.stem in out:
            raise ValueError(f"{out[p.stem]} and {p} share the name '{p.stem}', so it is unclear which one "
                             f"pairs with '{p.stem}' in the other folder; move one of them out of {p.parent}")
        out[p.stem] = p
    return out


def match_pairs(input_dir: Path, target_dir: Path, limit: Optional[int] = None) -> List[Tuple[Path, Path]]:
    """(degraded, clean) file pairs in natural name order; raises if a file has no partner."""
    inputs, targets = list_images(input_dir), list_images(target_dir)
    if not inputs or not targets:
        empty = input_dir if not inputs else target_dir
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {empty}; nothing to evaluate")
    by_name = {p.name: p for p in targets}
    if all(p.name in by_name for p in inputs) and len(inputs) == len(targets):
        pairs = [(p, by_name[p.name]) for p in inputs]
    else:
        by_stem = _by_stem(targets)
        lone_in = [p.name for p in _by_stem(inputs).values() if p.stem not in by_stem]
        lone_tgt = sorted({p.stem for p in targets} - {p.stem for p in inputs})
        if lone_in or lone_tgt:
            raise ValueError(
                f"file names of {input_dir} and {target_dir} do not match: {len(lone_in)} inputs without "
                f"a target {lone_in[:5]}, {len(lone_tgt)} targets without an input {lone_tgt[:5]}; "
                f"pairs must share a file name (or stem)")
        pairs = [(p, by_stem[p.stem]) for p in inputs]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1; got {limit}")
        pairs = pairs[:limit]
    return pairs
