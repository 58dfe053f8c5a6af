"""Which files a batch command works on, and where its results go without ever replacing an input.

    collect_inputs(["a.jpg", "photos/", "shots/*.png"]) -> (files, problems)
    OutputPlanner(out_dir, inputs, overwrite).path(src, "_restored", ".png")

Folders and globs pick image suffixes only and leave out earlier results (`*_restored.*`,
`*_density.png`); a file named on the command line is taken whatever its name. Problems (a missing
path, a folder or pattern without images) are returned, not raised, so the rest of the batch runs.
"""
import glob
import re
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from ..imagefiles.image_io import IMAGE_SUFFIXES


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def looks_like_output(p: Path, tails: Iterable[str]) -> bool:
    return any(re.search(re.escape(t) + r"(_\d+)?$", p.stem) for t in tails if t)


def collect_inputs(specs: Iterable[str], recursive: bool = False,
                   output_tails: Iterable[str] = ("_restored", "_density")) -> Tuple[List[Path], List[str]]:
    """Expand files / folders / glob patterns -> (image paths in order, without duplicates; problems)."""
    files, problems, seen, skipped = [], [], set(), 0
    tails = tuple(output_tails)

    def add(p: Path):
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    def add_found(found: List[Path], what: str, hint: str = ""):
        nonlocal skipped
        images = [p for p in found if p.is_file() and _is_image_name(p)]
        fresh = [p for p in images if not looks_like_output(p, tails)]
        skipped += len(images) - len(fresh)
        if not fresh:
            extra = f" ({len(images)} earlier results like *{tails[0]}.* left out; name them one by one)" \
                if images else ""
            problems.append(f"{what} has no images{extra}; looked for {', '.join(IMAGE_SUFFIXES)}{hint}")
        for p in fresh:
            add(p)

    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            found = sorted(p.rglob("*") if recursive else p.iterdir())
            add_found(found, f"folder {spec}", "" if recursive else "; subfolders need --recursive")
        elif p.is_file():
            add(p)
        elif glob.has_magic(spec):
            add_found(sorted(Path(m) for m in glob.glob(str(p), recursive=True)), f"pattern {spec}")
        else:
            problems.append(f"{spec}: no such file or folder")
    return files, problems


class OutputExists(FileExistsError):
    """An output file is already there and --overwrite-outputs was not given."""


class OutputPlanner:
    """Output paths for a batch: `<out_dir or input's folder>/<stem><tail><suffix>`.

    A path that is one of the inputs, or was already given to another file of this batch, gets `_1`,
    `_2`, ... appended instead; an existing file raises OutputExists unless overwrite is true.
    """

    def __init__(self, out_dir: Optional[Path], inputs: Iterable[Path], overwrite: bool = False):
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.protected = {Path(p).resolve() for p in inputs}
        self.claimed = set()
        self.overwrite = overwrite

    def path(self, src: Path, tail: str, suffix: str) -> Path:
        folder = self.out_dir if self.out_dir is not None else src.parent
        base, n = f"{src.stem}{tail}", 0
        cand = folder / f"{base}{suffix}"
        while cand.resolve() in self.protected or cand.resolve() in self.claimed:
            n += 1
            cand = folder / f"{base}_{n}{suffix}"
        if cand.exists() and not self.overwrite:
            raise OutputExists(f"{cand} already exists; pass --overwrite-outputs to replace it, or --out DIR")
        self.claimed.add(cand.resolve())
        return cand
