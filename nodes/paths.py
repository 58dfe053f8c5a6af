"""Where weights are found: `ComfyUI/models/weather` (plus any `weather:` folders of
extra_model_paths.yaml) for restorers, `ComfyUI/models/clip` (ComfyUI's text_encoders folders)
for CLIP, and the pack's bundled files through weights_manifest.json.
"""
import logging
import os
from pathlib import Path
from typing import List

import folder_paths

from ..pipeline.weights import weight_choices

log = logging.getLogger(__name__)

WEATHER_FOLDER = "weather"
CLIP_FOLDER = "clip"                            # ComfyUI maps it to text_encoders (models/clip included)
NO_CLIP = "none"


def register_folders() -> None:
    """Add models/weather to ComfyUI's folders (idempotent; folders of extra_model_paths.yaml,
    read before custom nodes load, stay first)."""
    default = os.path.join(folder_paths.models_dir, WEATHER_FOLDER)
    known = folder_paths.folder_names_and_paths.get(WEATHER_FOLDER)
    if known is None:
        folder_paths.folder_names_and_paths[WEATHER_FOLDER] = ([default], {".safetensors"})
    else:
        if default not in known[0]:
            known[0].append(default)
        known[1].add(".safetensors")
    try:
        os.makedirs(default, exist_ok=True)     # show users where weights go
    except OSError as e:
        log.debug("could not create %s: %s", default, e)


def weather_dirs() -> List[str]:
    return folder_paths.get_folder_paths(WEATHER_FOLDER)


def clip_dirs() -> List[str]:
    return folder_paths.get_folder_paths(CLIP_FOLDER)


def list_weights() -> List[str]:
    return weight_choices(folder_paths.get_filename_list(WEATHER_FOLDER))


def find_weights_file(name: str):
    return folder_paths.get_full_path(WEATHER_FOLDER, name)


def list_clips() -> List[str]:
    """'none', then the CLIP models of the manifest and the CLIP files found in the clip folders."""
    try:
        from ..hub.clip_loader import list_clip_choices
        choices = list(list_clip_choices([Path(d) for d in clip_dirs()]))
    except ImportError as e:                    # CLIP support not installed: the pack works without
        log.info("CLIP choices unavailable (%s); only 'none'", e)
        choices = []
    except Exception as e:                      # a broken listing must not hide the node
        log.warning("listing CLIP models failed: %s", e)
        choices = []
    return [NO_CLIP] + [c for c in dict.fromkeys(choices) if c != NO_CLIP]
