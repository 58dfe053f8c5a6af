"""Density Map: how strongly each pixel is degraded, as a MASK for Restore and a heat-map preview."""
from comfy_api.latest import io

from ..pipeline.signals import HEATMAP_SCALES, clip_signal, heatmap, learned_prior_density, resolve_source
from . import model_patcher
from .common import image_input, interruptible, learned_kwargs, model_input, network_image, source_input
from .types import CATEGORY, NODE_PREFIX


class DensityMap(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "DensityMap",
            display_name="Density Map",
            category=CATEGORY,
            description="Estimates per pixel how strongly the weather degrades the image (for haze: 1 - "
                        "transmission): the same map Restore computes for itself. Feed the MASK to Restore's "
                        "'density', edit it, or paint your own.",
            inputs=[model_input(), image_input(), source_input("density map"),
                    io.Combo.Input("heatmap_scale", options=list(HEATMAP_SCALES), default=HEATMAP_SCALES[0],
                                   tooltip="normalised: the densest 1 % of each image is yellow (readable even when "
                                           "the density stays low); absolute: yellow = density 1. The MASK "
                                           "output is never scaled.")],
            outputs=[io.Mask.Output(display_name="density", tooltip="Density (B, H, W) in [0, 1] at the image's size."),
                     io.Image.Output(display_name="heatmap", tooltip="The density as colours (dark: clear, yellow: dense).")],
        )

    @classmethod
    def execute(cls, weather_model, image, source: str, heatmap_scale: str = HEATMAP_SCALES[0]) -> io.NodeOutput:
        rgb, _ = network_image(image, weather_model)
        src = resolve_source(source, weather_model.has_clip)
        model_patcher.load(weather_model.patchers(with_clip=src == "clip"))
        if src == "clip":
            d = clip_signal(weather_model.clip, "density", rgb, weather_model.clip_patcher.model)
        else:
            with interruptible():
                _, d = learned_prior_density(weather_model.restorer, rgb, **learned_kwargs())   # as Restore does
        heat = heatmap(d, heatmap_scale).permute(0, 2, 3, 1)                      # (B, 3, H, W) -> (B, H, W, 3)
        return io.NodeOutput(model_patcher.intermediate(d[:, 0].contiguous()),      # (B, 1, H, W) -> (B, H, W)
                             model_patcher.intermediate(heat.contiguous()))
