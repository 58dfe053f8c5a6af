"""Which restorer weights a Load Weather Model choice means, and checking them against the manifest.

Choices, in this order:
  "default (bundled)"      the first bundled restorer of weights_manifest.json
  "bundled/<id>"           one bundled restorer, by manifest id
  "<relative path>"        a .safetensors file in ComfyUI/models/weather (or extra_model_paths.yaml)
A bundled file is verified against its entry (bytes and sha256). A user file is hashed: if its
sha256 is in the manifest it is verified by that entry; if it carries a manifest file name with
another hash it is refused as corrupt; otherwise it is a file the manifest does not know, loaded
unverified (strict key and shape checks still apply when it is loaded).
"""
import logging
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from ..hub import manifest
from ..models.weights_io import WeightsError

log = logging.getLogger(__name__)

DEFAULT_CHOICE = "default (bundled)"
BUNDLED_PREFIX = "bundled/"


def entry_file_name(entry: dict) -> str:
    name = entry.get("file_name") or entry.get("file") or entry.get("path") or (entry.get("hub") or {}).get("file") or ""
    return Path(name).name


def bundled_restorers(manifest_path: Path = manifest.MANIFEST_PATH) -> List[dict]:
    return [e for e in manifest.entries("restorer", manifest_path) if e.get("path")]


def weight_choices(user_files: List[str], manifest_path: Path = manifest.MANIFEST_PATH) -> List[str]:
    bundled = [BUNDLED_PREFIX + e["id"] for e in bundled_restorers(manifest_path)]
    return [DEFAULT_CHOICE] + bundled + sorted(f for f in user_files if f.lower().endswith(".safetensors"))


def resolve_weights(choice: str, find_user_file: Callable[[str], Optional[str]], search_dirs: List[str],
                    manifest_path: Path = manifest.MANIFEST_PATH) -> Tuple[Path, Optional[dict]]:
    """choice -> (path, its manifest entry or None for a user file); WeightsError when absent."""
    if choice == DEFAULT_CHOICE:
        bundled = bundled_restorers(manifest_path)
        if not bundled:
            raise WeightsError(
                "this install has no bundled restorer weights; put a .safetensors restorer file (from "
                f"`python weather.py export` or a release) in one of {search_dirs or ['ComfyUI/models/weather']} "
                "and choose it in 'weights'")
        entry = bundled[0]
    elif choice.startswith(BUNDLED_PREFIX):
        entry = manifest.find_entry(choice[len(BUNDLED_PREFIX):], manifest_path)
    else:
        found = find_user_file(choice)
        if not found:
            raise WeightsError(
                f"weights '{choice}' not found in {search_dirs or ['ComfyUI/models/weather']}; put the file "
                f"there (or list its folder under 'weather:' in extra_model_paths.yaml) and refresh")
        return Path(found), None
    path = manifest.bundled_path(entry)
    if not path.is_file():
        raise WeightsError(
            f"bundled weights '{entry['id']}' are missing at {path}; reinstall the pack (if it was cloned "
            f"with git, run `git lfs pull` in its folder)")
    return path, entry


def verify_weights(path: Path, entry: Optional[dict], manifest_path: Path = manifest.MANIFEST_PATH) -> Optional[dict]:
    """Check path against entry (or find its entry by sha256); returns the entry that vouches for
    the file, None for a file the manifest does not know. Raises WeightsError on a mismatch."""
    if entry is not None:
        manifest.verify_file(path, entry)
        return entry
    digest = manifest.sha256_file(path)
    known = manifest.find_entry_by_sha256(digest, manifest_path)
    if known is not None:
        log.info("%s is the manifest's '%s' (sha256 verified)", path, known["id"])
        return known
    for e in manifest.entries("restorer", manifest_path):
        if entry_file_name(e) == path.name and e.get("sha256"):
            raise WeightsError(
                f"{path} has sha256 {digest} but the manifest entry '{e['id']}' with this file name expects "
                f"{e['sha256']}: the file is corrupt or a different version; download or copy it again")
    log.info("%s is not in the weights manifest (sha256 %s); loading it unverified", path, digest[:12])
    return None
