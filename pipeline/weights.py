"""Which restorer weights a Load Weather Model choice means, and checking them against the manifest.

Choices of the node, in this order:
  "default (bundled)"      `default_restorer()`: the bundled restorer marked `"default": true` in
                           weights_manifest.json (the first bundled one when none is marked)
  "bundled/<id>"           one bundled restorer, by manifest id
  "<relative path>"        a .safetensors file in ComfyUI/models/weather (or extra_model_paths.yaml)
The command line spells the same choices `--weights` absent (the default), a manifest id, or a
path (`choose_cli_weights`). Both front ends then call `load_verified`.
A bundled file is verified against its entry (bytes and sha256). A user file is hashed: if its
sha256 is in the manifest it is verified by that entry; if it carries a manifest file name with
another hash it is refused as corrupt; otherwise it is a file the manifest does not know, loaded
unverified (strict key and shape checks still apply when it is loaded).
"""
import logging
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch

from ..hub import manifest
from ..models.weights_io import WeightsError, load_restorer

log = logging.getLogger(__name__)

DEFAULT_CHOICE = "default (bundled)"
BUNDLED_PREFIX = "bundled/"


def entry_file_name(entry: dict) -> str:
    name = entry.get("file_name") or entry.get("file") or entry.get("path") or (entry.get("hub") or {}).get("file") or ""
    return Path(name).name


def bundled_restorers(manifest_path: Path = manifest.MANIFEST_PATH) -> List[dict]:
    return [e for e in manifest.entries("restorer", manifest_path) if e.get("path")]


def default_restorer(manifest_path: Path = manifest.MANIFEST_PATH, search_dirs: Optional[List[str]] = None) -> dict:
    """The manifest entry of the default restorer: the bundled one marked `"default": true`, else the
    first bundled one; WeightsError when the manifest bundles none."""
    bundled = bundled_restorers(manifest_path)
    if not bundled:
        raise WeightsError(
            f"this install has no bundled restorer weights ({Path(manifest_path).name} has no bundled entry of kind "
            f"'restorer'); put a .safetensors restorer file (from `python weather.py export` or a release) in one of "
            f"{search_dirs or ['ComfyUI/models/weather']} and choose it in 'weights', or pass --weights FILE")
    marked = [e for e in bundled if e.get("default")]
    if len(marked) > 1:
        log.warning("%s marks %d restorers as default (%s); using '%s'", Path(manifest_path).name, len(marked),
                    ", ".join(e["id"] for e in marked), marked[0]["id"])
    return (marked or bundled)[0]


def weight_choices(user_files: List[str], manifest_path: Path = manifest.MANIFEST_PATH) -> List[str]:
    bundled = [BUNDLED_PREFIX + e["id"] for e in bundled_restorers(manifest_path)]
    return [DEFAULT_CHOICE] + bundled + sorted(f for f in user_files if f.lower().endswith(".safetensors"))


def resolve_weights(choice: str, find_user_file: Callable[[str], Optional[str]], search_dirs: List[str],
                    manifest_path: Path = manifest.MANIFEST_PATH) -> Tuple[Path, Optional[dict]]:
    """choice -> (path, its manifest entry or None for a user file); WeightsError when absent."""
    if choice == DEFAULT_CHOICE:
        entry = default_restorer(manifest_path, search_dirs)
    elif choice.startswith(BUNDLED_PREFIX):
        entry = manifest.find_entry(choice[len(BUNDLED_PREFIX):], manifest_path)
        if entry.get("kind") != "restorer":
            raise WeightsError(f"weights entry '{entry['id']}' is a {entry.get('kind')} file, not a restorer; "
                               f"choose one of {', '.join(e['id'] for e in bundled_restorers(manifest_path)) or 'none'}")
        if not entry.get("path"):
            raise WeightsError(
                f"weights entry '{entry['id']}' is not bundled with the pack (it is downloaded from "
                f"{(entry.get('hub') or {}).get('repo', 'a model hub')}); download the file and choose it by path")
    else:
        found = find_user_file(choice)
        if not found:
            raise WeightsError(
                f"weights '{choice}' not found in {search_dirs or ['ComfyUI/models/weather']}; put the file "
                f"there (or list its folder under 'weather:' in extra_model_paths.yaml) and refresh")
        return Path(found), None
    path = manifest.bundled_path(entry, manifest_path)
    if not path.is_file():
        raise WeightsError(
            f"bundled weights '{entry['id']}' are missing at {path}; reinstall the pack (if it was cloned "
            f"with git, run `git lfs pull` in its folder)")
    return path, entry


def choose_cli_weights(spec: Optional[str], manifest_path: Path = manifest.MANIFEST_PATH) -> Tuple[Path, Optional[dict]]:
    """--weights of the command line -> (path, manifest entry or None): absent -> `default_restorer()`,
    an existing file -> that file (verified later like a node's user file), else a manifest id."""
    if spec is None:
        return resolve_weights(DEFAULT_CHOICE, lambda name: None, [], manifest_path)
    path = Path(spec).expanduser()
    if path.is_file():
        return path, None
    if path.suffix == ".safetensors" or "/" in spec or "\\" in spec:
        raise WeightsError(f"--weights {spec}: no such file; give a .safetensors file or a manifest id")
    try:
        manifest.find_entry(spec, manifest_path)
    except KeyError as e:
        raise WeightsError(f"--weights {spec}: neither a file nor a manifest id ({e.args[0]})") from None
    return resolve_weights(BUNDLED_PREFIX + spec, lambda name: None, [], manifest_path)


def load_verified(path: Path, entry: Optional[dict], device=None, dtype: Optional[torch.dtype] = None,
                  manifest_path: Path = manifest.MANIFEST_PATH):
    """Verify (`verify_weights`), then load strictly -> (WeatherRestorer in eval mode, the entry that
    vouches for the file or None). The one loading path of the nodes and the commands."""
    entry = verify_weights(Path(path), entry, manifest_path)
    return load_restorer(path, device=device, dtype=dtype).eval(), entry


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
