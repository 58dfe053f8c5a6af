"""Restore: remove rain streaks, raindrops, snow and haze, optionally guided by a prior and a density
MASK, optionally only inside a region MASK, tiled for large images."""
import comfy.model_management as mm
from comfy_api.latest import io

from ..pipeline.coarse import WEATHER_SCALE_RANGE
from ..pipeline.layout import to_comfy
from ..pipeline.memory import MIN_TILE
from ..pipeline.restore import DEFAULT_OVERLAP, DEFAULT_TILE, restore_batch
from . import model_patcher
from .common import image_input, interruptible, model_input, network_image, oom_errors, progress_bar, should_stop
from .types import CATEGORY, NODE_PREFIX, WeatherPriorType


class Restore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "Restore",
            display_name="Restore",
            category=CATEGORY,
            description="Removes rain streaks, raindrops, snow and haze from every image of the batch. Large images "
                        "are restored in feathered tiles; a smaller tile is tried when memory runs out.",
            inputs=[
                model_input(),
                image_input(),
                WeatherPriorType.Input("prior", optional=True,
                                       tooltip="Optional weather prior from CLIP Weather Prior (CLIP or manual); "
                                               "without it the restorer's learned head estimates it."),
                io.Mask.Input("density", optional=True,
                              tooltip="Optional degradation density (B, H, W) in [0, 1]: Density Map's output or any "
                                      "MASK, e.g. painted. A single mask serves the whole batch; a mask with the "
                                      "image's aspect ratio is resized."),
                io.Mask.Input("region", optional=True,
                              tooltip="Optional MASK: restore only where it is 1 (edges feathered), leave the rest "
                                      "untouched. Paint it in the mask editor of Load Image."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Blend between the input (0) and the fully restored image (1)."),
                io.Int.Input("feather", default=16, min=0, max=256, step=1,
                             tooltip="Softness of the region mask's edge in pixels (0: hard edge). Used only with 'region'."),
                io.Int.Input("tile_size", default=DEFAULT_TILE, min=MIN_TILE, max=8192, step=32,
                             tooltip="Largest square the network sees at once; larger images are tiled. "
                                     "Smaller tiles use less memory (halved automatically on out-of-memory)."),
                io.Int.Input("tile_overlap", default=DEFAULT_OVERLAP, min=0, max=1024, step=8,
                             tooltip="Pixels shared by neighbouring tiles, blended with feathered weights to hide seams. "
                                     "Must be smaller than tile_size."),
                io.Boolean.Input("mirror_ensemble", default=False, optional=True,
                                 tooltip="Restore every tile as it is and mirrored left-right and average the two: "
                                         "a little cleaner (Rain100L +0.2 dB) for twice the time."),
                io.Float.Input("weather_scale", default=1.0, min=WEATHER_SCALE_RANGE[0], max=WEATHER_SCALE_RANGE[1],
                               step=0.25, optional=True,
                               tooltip="How many times larger the rain is than the network learned it (photos of "
                                       "about 480x320). Above 1, a first pass on a copy shrunk by this factor removes "
                                       "it, then the full-resolution pass: 2-3 for large photos whose streaks are "
                                       "several pixels wide. 1 = off."),
                io.Boolean.Input("keep_brightness", default=False, optional=True,
                                 tooltip="Take back the smooth brightness change and keep the fine one (streaks, "
                                         "flakes): real rainy photos without mist otherwise come back darker. It "
                                         "also undoes haze removal: leave it off for misty photos."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The restored images, in [0, 1], same size and batch.")],
        )

    @classmethod
    def execute(cls, weather_model, image, strength: float, feather: int, tile_size: int, tile_overlap: int,
                prior=None, density=None, region=None, mirror_ensemble: bool = False,
                weather_scale: float = 1.0, keep_brightness: bool = False) -> io.NodeOutput:
        rgb, alpha = network_image(image, weather_model)
        H, W = rgb.shape[-2:]
        on_progress = progress_bar()
        on_progress(0, 1)
        model_patcher.load([weather_model.patcher],
                           model_patcher.activation_bytes(weather_model.restorer, min(tile_size, max(H, W))))
        with interruptible():
            out = restore_batch(
                weather_model.restorer, rgb, prior=None if prior is None else prior.values,
                density=density, region=region, strength=strength, tile=tile_size, overlap=tile_overlap,
                feather=feather, on_progress=on_progress, should_stop=should_stop, oom_errors=oom_errors(),
                on_oom=lambda tile: mm.soft_empty_cache(), mirror_ensemble=mirror_ensemble,
                weather_scale=weather_scale, keep_brightness=keep_brightness)
        return io.NodeOutput(model_patcher.intermediate(to_comfy(out, alpha)))
