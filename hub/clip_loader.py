"""Find, verify and build a CLIP model through open_clip, from the manifest (entries of kind "clip").

Lookup order for a manifest id:
  1. `<dir>/<file_name>` in each search dir (ComfyUI's models/clip folders, passed in by the nodes)
  2. the Hugging Face hub cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), read
     from disk without network: models--<org>--<name>/snapshots/<revision>/<file>
  3. a download through huggingface_hub (about 605 MB for ViT-B/32), only when the caller asks for
     it (`allow_download=True`: Load Weather Model's download_clip, learn-prompts' --download) and
     the machine is online (HF_HUB_OFFLINE unset); never by default, never at import time
A path (or a file name inside a search dir) is accepted too; it is matched to its manifest entry
by file name or sha256. Every file is verified (bytes, sha256) before loading, built strictly, and
cached by (file, device, dtype). Learned prompts (kind "clip_prompts", field "clip" = the CLIP's
id) are loaded with the model where their file is present.
"""
import dataclasses
import logging
import os
import threading
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import torch

from ..models.weights_io import WeightsError
from . import manifest as M

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
COMFY_CLIP_DIR = "ComfyUI/models/clip"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_cache: Dict[tuple, "ClipBundle"] = {}
_verified: Dict[tuple, str] = {}
_lock = threading.RLock()


class ClipUnavailableError(RuntimeError):
    """The CLIP file is not on this machine and cannot be downloaded; the message names the file
    and where to put it."""


@dataclasses.dataclass
class ClipBundle:
    model: torch.nn.Module               # open_clip model, eval mode, frozen, on the asked device / dtype
    tokenizer: object                    # open_clip tokenizer (texts -> (N, L) token ids)
    mean: tuple
    std: tuple
    entry_id: Optional[str]              # manifest id
    path: Path                           # the verified weights file
    learned_prompts: Optional[dict] = None   # {task: PromptContext} where a prompts file is present


def _manifest_path(manifest) -> Path:
    return Path(manifest) if manifest is not None else M.MANIFEST_PATH


def clip_entries(manifest=None) -> List[dict]:
    return M.entries("clip", _manifest_path(manifest))


def default_clip_id(manifest=None) -> Optional[str]:
    es = clip_entries(manifest)
    return next((e["id"] for e in es if e.get("default")), es[0]["id"] if es else None)


def list_clip_choices(extra_dirs: Iterable = (), manifest=None) -> List[str]:
    """Manifest ids (the default first), then weight files found in `extra_dirs` (relative names)
    that are not already a manifest entry's file."""
    es = clip_entries(manifest)
    ids = sorted((e["id"] for e in es), key=lambda i: i != default_clip_id(manifest))
    known = {e.get("file_name") for e in es}
    files = []
    for d in extra_dirs:
        d = Path(d)
        if d.is_dir():
            files += [f.relative_to(d).as_posix() for f in sorted(d.rglob("*"))
                      if f.is_file() and f.suffix.lower() in WEIGHT_SUFFIXES and f.name not in known]
    return ids + sorted(set(files) - set(ids))


# -- where a file is ---------------------------------------------------------------------------
def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def find_in_hub_cache(repo: str, file: str, revision: Optional[str] = None) -> Optional[Path]:
    """The cached file of repo@revision (or of the cached `main`, or any snapshot when no revision is
    pinned), found on disk only."""
    root = hub_cache_dir() / f"models--{repo.replace('/', '--')}"
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    revs = []
    if revision:
        revs.append(revision)
        ref = root / "refs" / revision                      # a branch or tag name
        if ref.is_file():
            revs.append(ref.read_text().strip())
    else:
        ref = root / "refs" / "main"
        if ref.is_file():
            revs.append(ref.read_text().strip())
        revs += sorted(p.name for p in snaps.iterdir())
    for rev in revs:
        f = snaps / rev / file
        if f.is_file():
            return f
    return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _where_to_put(entry: dict, search_dirs: Sequence) -> str:
    hub = entry.get("hub") or {}
    dest = ", ".join(str(d) for d in search_dirs) or COMFY_CLIP_DIR
    rev = hub.get("revision") or "main"
    size = f"{entry['bytes']:,} bytes, " if entry.get("bytes") else ""
    sha = f"sha256 {entry['sha256']}" if entry.get("sha256") else "no published sha256"
    return (f"download https://huggingface.co/{hub.get('repo')}/resolve/{rev}/{hub.get('file')} "
            f"({size}{sha}) and put it into {dest} as {entry['file_name']}"
            + (" (another name works too: the file is recognised by its sha256)" if entry.get("sha256") else ""))


def _download(entry: dict, search_dirs: Sequence) -> Path:
    hub = entry["hub"]
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise ClipUnavailableError(
            f"CLIP '{entry['id']}' ({entry['file_name']}) is not on this machine and huggingface_hub is not "
            f"installed to download it: `pip install huggingface_hub`, or {_where_to_put(entry, search_dirs)}") from e
    log.info("downloading %s from the Hugging Face hub (%s)", hub["file"], hub["repo"])
    try:
        return Path(hf_hub_download(repo_id=hub["repo"], filename=hub["file"], revision=hub.get("revision")))
    except Exception as e:  # noqa: BLE001 - every hub/network failure becomes the same actionable error
        raise ClipUnavailableError(
            f"CLIP '{entry['id']}' could not be downloaded ({type(e).__name__}: {e}); "
            f"{_where_to_put(entry, search_dirs)}") from e


def locate(entry: dict, search_dirs: Sequence = (), allow_download: bool = False) -> Path:
    """The file of a CLIP manifest entry, by the lookup order above, or ClipUnavailableError."""
    looked = []
    for d in search_dirs:
        f = Path(d) / entry["file_name"]
        looked.append(str(f))
        if f.is_file():
            return f
    hub = entry.get("hub")
    if hub:
        f = find_in_hub_cache(hub["repo"], hub["file"], hub.get("revision"))
        looked.append(f"{hub_cache_dir()} ({hub['repo']})")
        if f is not None:
            return f
        if allow_download and not _offline():
            return _download(entry, search_dirs)
    why = ("offline: HF_HUB_OFFLINE is set" if _offline() else
           "downloads are off unless asked for: switch download_clip on in Load Weather Model, or pass --download"
           if hub else "no hub source")
    raise ClipUnavailableError(
        f"CLIP '{entry['id']}' needs the file {entry['file_name']}, which is not on this machine and "
        f"cannot be downloaded ({why}). To fix: {_where_to_put(entry, search_dirs)}. "
        f"Looked in: {'; '.join(looked)}")


def resolve(choice_or_path, search_dirs: Sequence = (), allow_download: bool = False, manifest=None):
    """-> (entry, path). A manifest id, a path, or a file name inside a search dir."""
    es = clip_entries(manifest)
    by_id = {e["id"]: e for e in es}
    choice = str(choice_or_path)
    if choice in by_id:
        return by_id[choice], locate(by_id[choice], search_dirs, allow_download)
    candidates = [Path(choice).expanduser()] + [Path(d) / choice for d in search_dirs]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ClipUnavailableError(
            f"no CLIP '{choice}': it is neither a manifest id ({', '.join(by_id) or 'none'}) nor a file "
            f"(looked at {', '.join(str(p) for p in candidates)}); put the file into "
            f"{', '.join(str(d) for d in search_dirs) or COMFY_CLIP_DIR}")
    entry = next((e for e in es if e.get("file_name") == path.name), None)
    if entry is None:
        digest = M.sha256_file(path)
        entry = next((e for e in es if e.get("sha256") == digest), None)
        if entry is None:
            raise ClipUnavailableError(
                f"{path} is not a CLIP file of the manifest (sha256 {digest}), so its architecture is unknown. "
                f"Use one of {', '.join(e['file_name'] for e in es) or 'none'} or add an entry of kind 'clip' "
                f"(open_clip_model, pretrained, sha256) to weights_manifest.json")
    return entry, path


# -- building ----------------------------------------------------------------------------------
def _verify_once(path: Path, entry: dict) -> None:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _lock:
        if _verified.get(key) == entry["id"]:
            return
    if not entry.get("sha256"):
        log.warning("manifest entry '%s' has no sha256: %s is loaded unverified", entry["id"], path)
    M.verify_file(path, entry)                                  # WeightsError on size / sha256 mismatch
    with _lock:
        _verified[key] = entry["id"]


def _open_clip():
    try:
        import open_clip
    except ImportError as e:
        raise ImportError("CLIP support needs open_clip: `pip install open_clip_torch`") from e
    return open_clip


def _mean_std(open_clip, entry: dict):
    if entry.get("mean") and entry.get("std"):
        return tuple(entry["mean"]), tuple(entry["std"])
    try:
        cfg = open_clip.get_pretrained_cfg(entry["open_clip_model"], entry.get("pretrained") or "")
    except Exception:  # noqa: BLE001 - older open_clip: fall back to the OpenAI constants
        cfg = {}
    return tuple(cfg.get("mean") or OPENAI_MEAN), tuple(cfg.get("std") or OPENAI_STD)


def build(entry: dict, path: Path, device, dtype):
    open_clip = _open_clip()
    name = entry["open_clip_model"]
    if name not in open_clip.list_models():
        raise WeightsError(f"manifest entry '{entry['id']}' names open_clip model '{name}', which this open_clip "
                           f"{getattr(open_clip, '__version__', '?')} does not know; upgrade open_clip_torch")
    try:                                                        # open_clip loads a file given as `pretrained` strictly
        model = open_clip.create_model(name, pretrained=str(path), force_quick_gelu=bool(entry.get("quick_gelu")))
    except (RuntimeError, KeyError, ValueError) as e:
        raise WeightsError(f"{path} does not fit open_clip model '{name}' of entry '{entry['id']}': {e}") from e
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return model, open_clip.get_tokenizer(name)


def find_learned_prompts(entry_id: str, search_dirs: Sequence = (), manifest=None) -> Optional[dict]:
    """{task: PromptContext} from the first present, verified prompts file made for this CLIP, else None."""
    from ..models.clip.prompt_io import load_prompts
    for e in M.entries("clip_prompts", _manifest_path(manifest)):
        if e.get("clip") != entry_id:
            continue
        candidates = ([M.bundled_path(e, _manifest_path(manifest))] if e.get("path") else []) + \
            [Path(d) / e["file_name"] for d in search_dirs if e.get("file_name")]
        for f in candidates:
            if f is not None and f.is_file():
                M.verify_file(f, e)
                log.info("learned prompts '%s' from %s", e["id"], f)
                return load_prompts(f)
        log.warning("learned prompts '%s' for %s are not present; zero-shot prompts are used", e["id"], entry_id)
    return None


def load_clip(choice_or_path, device="cpu", dtype: torch.dtype = torch.float32, search_dirs: Sequence = (),
              allow_download: bool = False, manifest=None) -> ClipBundle:
    """Build (once per file, device and dtype) the CLIP named by a manifest id or a file."""
    search_dirs = [Path(d) for d in search_dirs]
    entry, path = resolve(choice_or_path, search_dirs, allow_download, manifest)
    device = torch.device(device)
    key = (str(path.resolve()), str(device), dtype)
    with _lock:
        if key in _cache:
            return _cache[key]
        _verify_once(path, entry)
        model, tokenizer = build(entry, path, device, dtype)
        mean, std = _mean_std(_open_clip(), entry)
        prompts = find_learned_prompts(entry["id"], search_dirs, manifest)
        bundle = ClipBundle(model, tokenizer, mean, std, entry["id"], path, prompts)
        _cache[key] = bundle
        log.info("CLIP '%s' loaded from %s on %s (%s)", entry["id"], path, device, dtype)
        return bundle


def clear_clip_cache() -> None:
    with _lock:
        _cache.clear()
        _verified.clear()
