"""Load Weather Model: restorer weights (bundled or from models/weather), an optional CLIP, a precision."""
import logging
from pathlib import Path

from comfy_api.latest import io

from ..pipeline.precision import PRECISIONS, choose_autocast
from ..pipeline.weights import DEFAULT_CHOICE, load_verified, resolve_weights
from . import model_patcher, paths
from .types import CATEGORY, NODE_PREFIX, WeatherModel, WeatherModelType

log = logging.getLogger(__name__)


def _load_clip(choice: str, dtype, allow_download: bool):
    """(ClipSignals, ModelPatcher) for a CLIP choice; errors say where the file should go. A manifest
    CLIP is downloaded only when the user switched download_clip on."""
    try:
        from ..hub.clip_loader import ClipUnavailableError, load_clip
        from ..models.clip import ClipSignals
    except ImportError as e:
        raise RuntimeError(
            f"clip '{choice}' cannot be loaded: CLIP support is unavailable ({e}); install the pack's "
            f"requirements (pip install -r requirements.txt) or choose clip 'none'") from e
    try:
        bundle = load_clip(choice, device=model_patcher.offload_device(), dtype=dtype,
                           search_dirs=[Path(d) for d in paths.clip_dirs()], allow_download=allow_download)
    except ClipUnavailableError as e:
        raise RuntimeError(f"clip '{choice}': {e} (CLIP files go in one of {paths.clip_dirs()}; or choose clip "
                           f"'none' to use the restorer's own heads)") from e
    patcher = model_patcher.wrap_shared(bundle.model, dtype)
    signals = ClipSignals(bundle.model, bundle.tokenizer, bundle.mean, bundle.std,
                          learned_prompts=bundle.learned_prompts)
    return signals, patcher


class LoadWeatherModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "LoadModel",
            display_name="Load Weather Model",
            category=CATEGORY,
            description="Loads the weather-restoration network (rain streaks, raindrops, snow, haze) and, "
                        "optionally, a CLIP model that estimates the weather prior, density and quality.",
            inputs=[
                io.Combo.Input("weights", options=paths.list_weights(), default=DEFAULT_CHOICE,
                               tooltip="Restorer weights: the pack's bundled ones, or a .safetensors file in "
                                       "ComfyUI/models/weather (or a 'weather:' folder of extra_model_paths.yaml). "
                                       "Files are checked against the weights manifest's sha256."),
                io.Combo.Input("clip", options=paths.list_clips(), default=paths.NO_CLIP,
                               tooltip="Optional CLIP model for the CLIP provider of the prior, density and "
                                       "quality signals; 'none' uses the restorer's own learned heads. "
                                       "CLIP files go in ComfyUI/models/clip."),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="auto: fp32 on CPU (convolutions in bf16 where the CPU computes it natively) and Apple MPS, "
                                       "fp16 on GPUs that run it well. "
                                       "fp32 is the reference; fp16 halves memory; bf16 is coarser."),
                io.Boolean.Input("download_clip", default=False,
                                 tooltip="Off: a manifest CLIP must already be in ComfyUI/models/clip (the error says "
                                         "which file, from where). On: download it once from the Hugging Face hub "
                                         "(about 605 MB for ViT-B/32)."),
            ],
            outputs=[WeatherModelType.Output(display_name="weather_model",
                                             tooltip="The restorer (and CLIP), managed by ComfyUI's model memory manager.")],
        )

    @classmethod
    def execute(cls, weights: str, clip: str, precision: str, download_clip: bool = False) -> io.NodeOutput:
        path, entry = resolve_weights(weights, paths.find_weights_file, paths.weather_dirs())
        dtype = model_patcher.pick_dtype(precision)
        restorer, entry = load_verified(path, entry, model_patcher.offload_device(), dtype)
        restorer.autocast_dtype = choose_autocast(precision, model_patcher.load_device().type)
        patcher = model_patcher.wrap(restorer, dtype)
        label = entry["id"] if entry else Path(path).name
        clip_signals = clip_patcher = None
        if clip != paths.NO_CLIP:
            clip_signals, clip_patcher = _load_clip(clip, dtype, download_clip)
        log.info("weather model '%s' (%s, config %s), clip %s", label, dtype, restorer.cfg.name, clip)
        return io.NodeOutput(WeatherModel(restorer, patcher, label, clip_signals, clip_patcher, clip))

