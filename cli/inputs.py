"""Which files a batch command works on, and where its results go without ever replacing an input.

    collect_inputs(["a.jpg", "photos/", "shots/*.png"]) -> (files, problems)
    folder_problem(folder) / output_problem(path)      why results cannot go there, checked up front
    OutputPlanner(out_dir, inputs, overwrite).path(src, "_restored", ".png")

An existing file is replaced only when this pack wrote it (image_io.written_here: its marker) and the
user asked for it; any other file (a photo of the user's, an older unmarked result) is never touched.

Folders and globs pick image suffixes only and leave out earlier results (`*_restored.*`,
`*_density.png`); a file named on the command line is taken whatever its name. Problems (a missing
path, a folder or pattern without images) are returned, not raised, so the rest of the batch runs.
"""
import glob
import re
import tempfile
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from ..imagefiles.image_io import IMAGE_SUFFIXES, MARKER, written_here


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


def folder_problem(folder: Path) -> Optional[str]:
    """Why results cannot be written into `folder` (created when missing), or None."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()              # the real test: permissions, read-only disks
    except OSError as e:
        return f"cannot write into {folder} ({e.strerror or e})"
    return None


def output_problem(path: Path) -> Optional[str]:
    """Why the file `path` may not be (re)written: a folder there, or a file this pack did not write."""
    if path.is_dir():
        return f"{path} is a folder"
    if path.exists() and not written_here(path):
        return f"{path} already exists and was not written by {MARKER}, so it is never replaced"
    return None


class OutputExists(FileExistsError):
    """An earlier output of this pack is already there and --overwrite-outputs was not given."""


class OutputRefused(FileExistsError):
    """The output path holds something this pack did not write: never replaced, whatever the flags."""


class OutputPlanner:
    """Output paths for a batch: `<out_dir or input's folder>/<stem><tail><suffix>`.

    A path that is one of the inputs, or was already given to another file of this batch, gets `_1`,
    `_2`, ... appended instead. An existing file raises OutputRefused unless this pack wrote it, then
    OutputExists unless overwrite is true.
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
        if cand.exists():
            problem = output_problem(cand)
            if problem:
                raise OutputRefused(f"{src}: its output {problem}; choose another --out folder or --suffix "
                                    f"(or move that file away)")
            if not self.overwrite:
                raise OutputExists(f"{cand} is an earlier result; pass --overwrite-outputs to replace it, "
                                   f"or --out DIR")
        self.claimed.add(cand.resolve())
        return cand
