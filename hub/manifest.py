"""`weights_manifest.json`: the one source of truth for every weight file (STYLE.md habit 4).

Entries are dicts with at least `id`, `kind` (restorer | clip | clip_prompts), `sha256` and `bytes`
(None where the publisher gives none; a bundled entry must have both), `licence`, and either `path`
(bundled, relative to the manifest's folder, the pack root, and confined to it) or `hub` ({repo,
revision, file}). Files are verified before every load. Files the user names by path (--weights
FILE, ComfyUI/models/weather) are not manifest paths and may lie anywhere.
"""
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import List, Optional

from ..models.weights_io import WeightsError

PACK_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_PATH = PACK_ROOT / "weights_manifest.json"


@lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def load_manifest(path: Path = MANIFEST_PATH) -> dict:
    path = Path(path)
    return _read(str(path), path.stat().st_mtime)


def entries(kind: Optional[str] = None, path: Path = MANIFEST_PATH) -> List[dict]:
    return [e for e in load_manifest(path)["weights"] if kind is None or e.get("kind") == kind]


def find_entry(entry_id: str, path: Path = MANIFEST_PATH) -> dict:
    for e in load_manifest(path)["weights"]:
        if e["id"] == entry_id:
            return e
    known = ", ".join(e["id"] for e in load_manifest(path)["weights"]) or "none"
    raise KeyError(f"no weights entry '{entry_id}' in {path.name}; known ids: {known}")


def bundled_path(entry: dict, manifest_path: Path = MANIFEST_PATH) -> Optional[Path]:
    """A bundled entry's file, inside the manifest's folder; WeightsError for a `path` that leaves it
    (absolute elsewhere, or `..`), so a manifest cannot make the pack read /etc/passwd."""
    if not entry.get("path"):
        return None
    root = Path(os.path.abspath(manifest_path)).parent
    path = Path(os.path.normpath(root / entry["path"]))        # lexical: a symlinked weights/ folder still works
    if root not in path.parents:
        raise WeightsError(f"manifest entry '{entry.get('id')}': path {entry['path']!r} leaves {root}; a bundled "
                           f"file must lie inside the pack (name a file elsewhere by its own path, e.g. --weights FILE)")
    return path


def find_entry_by_sha256(sha256: str, path: Path = MANIFEST_PATH) -> Optional[dict]:
    return next((e for e in load_manifest(path)["weights"] if e.get("sha256") == sha256), None)


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path, entry: dict) -> None:
    """Raise WeightsError unless `path` has the entry's byte size and sha256 (where they are known;
    a bundled entry must know both)."""
    path = Path(path)
    if entry.get("path") and (not entry.get("sha256") or entry.get("bytes") is None):
        raise WeightsError(f"manifest entry '{entry['id']}' is bundled but has no sha256 or bytes, so its file "
                           f"cannot be verified; add both (`python weather.py export --write-manifest` writes them)")
    if not path.is_file():
        raise WeightsError(f"weights file for '{entry['id']}' not found at {path}")
    size = path.stat().st_size
    if entry.get("bytes") is not None and size != entry["bytes"]:
        raise WeightsError(
            f"{path} has {size} bytes but the manifest entry '{entry['id']}' expects {entry['bytes']}: "
            f"the file is truncated or a different file; download or copy it again")
    if entry.get("sha256"):
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise WeightsError(
                f"{path} has sha256 {digest} but the manifest entry '{entry['id']}' expects "
                f"{entry['sha256']}: the file is corrupt or a different version; replace it")
