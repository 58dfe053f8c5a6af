"""CLIP Weather Prior: how much of each weather type an image shows, from CLIP, the learned head,
or by hand, as a WEATHER_PRIOR for Restore and a readable summary."""
from comfy_api.latest import io

from ..models.signals import WEATHER_TYPES
from ..pipeline.signals import apply_overrides, clip_signal, learned_prior_density, resolve_source, summarize_prior
from . import model_patcher
from .common import image_input, interruptible, learned_kwargs, model_input, network_image, source_input
from .types import CATEGORY, NODE_PREFIX, WeatherPrior, WeatherPriorType


def _override_input(name: str) -> io.Input:
    return io.Float.Input(
        name, default=-1.0, min=-1.0, max=1.0, step=0.01,
        tooltip=f"Manual {name.replace('_', ' ')} strength in [0, 1] for every image; -1 keeps the estimate.")


class ClipWeatherPrior(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "ClipPrior",
            display_name="CLIP Weather Prior",
            category=CATEGORY,
            description="Estimates the weather prior (rain streaks, raindrops, snow, haze, each in [0, 1]) that "
                        "guides Restore; any type can be set by hand.",
            inputs=[model_input(), image_input(), source_input("weather prior")]
                   + [_override_input(n) for n in WEATHER_TYPES],
            outputs=[WeatherPriorType.Output(display_name="prior", tooltip="Weather prior for Restore's 'prior' input."),
                     io.String.Output(display_name="summary", tooltip="e.g. 'rain 0.82, haze 0.31 (clip)', one line per image.")],
        )

    @classmethod
    def execute(cls, weather_model, image, source: str, **overrides) -> io.NodeOutput:
        rgb, _ = network_image(image, weather_model)
        src = resolve_source(source, weather_model.has_clip)
        model_patcher.load(weather_model.patchers(with_clip=src == "clip"))
        if src == "clip":
            p = clip_signal(weather_model.clip, "prior", rgb, weather_model.clip_patcher.model)
        else:
            with interruptible():
                p, _ = learned_prior_density(weather_model.restorer, rgb, **learned_kwargs())
        p, changed = apply_overrides(p, {n: overrides.get(n) for n in WEATHER_TYPES})
        label = src + ("+manual" if changed else "")
        summary = summarize_prior(p, label)
        return io.NodeOutput(WeatherPrior(model_patcher.intermediate(p), label, summary), summary)
