"""Density Map: how strongly each pixel is degraded, as a MASK for Restore and a heat-map preview."""
from comfy_api.latest import io

from ..pipeline.signals import clip_signal, heatmap, learned_prior_density, resolve_source
from . import model_patcher
from .common import image_input, model_input, network_image, source_input
from .types import CATEGORY, NODE_PREFIX


class DensityMap(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "DensityMap",
            display_name="Density Map",
            category=CATEGORY,
            description="Estimates per pixel how strongly the weather degrades the image (for haze: 1 - "
                        "transmission). Feed the MASK to Restore's 'density', edit it, or paint your own.",
            inputs=[model_input(), image_input(), source_input("density map")],
            outputs=[io.Mask.Output(display_name="density", tooltip="Density (B, H, W) in [0, 1] at the image's size."),
                     io.Image.Output(display_name="heatmap", tooltip="The density as colours (dark: clear, yellow: dense).")],
        )

    @classmethod
    def execute(cls, weather_model, image, source: str) -> io.NodeOutput:
        rgb, _ = network_image(image, weather_model)
        src = resolve_source(source, weather_model.has_clip)
        model_patcher.load(weather_model.patchers(with_clip=src == "clip"))
        if src == "clip":
            d = clip_signal(weather_model.clip, "density", rgb, weather_model.clip_patcher.model)
        else:
            _, d = learned_prior_density(weather_model.restorer, rgb)   # (B, 1, H, W), as Restore computes it
        heat = heatmap(d).permute(0, 2, 3, 1)                                     # (B, 3, H, W) -> (B, H, W, 3)
        return io.NodeOutput(model_patcher.intermediate(d[:, 0].contiguous()),      # (B, 1, H, W) -> (B, H, W)
                             model_patcher.intermediate(heat.contiguous()))
