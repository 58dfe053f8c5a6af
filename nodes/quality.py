"""Quality Perceiver: is an image degraded, partly restored or clean (Perceive-IR's three tiers)?"""
from comfy_api.latest import io, ui

from ..pipeline.signals import clip_signal, learned_quality, quality_report, quality_text, resolve_source
from . import model_patcher
from .common import image_input, interruptible, model_input, network_image, should_stop, source_input
from .types import CATEGORY, NODE_PREFIX


class QualityPerceiver(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_PREFIX + "QualityPerceiver",
            display_name="Quality Perceiver",
            category=CATEGORY,
            description="Scores each image of the batch: 0 = degraded, 1 = clean, with its quality tier "
                        "(low / medium / high), shown on the node after a run. Compare the scores before and "
                        "after Restore.",
            is_output_node=True,
            inputs=[model_input(), image_input(), source_input("quality")],
            outputs=[io.Float.Output(display_name="score", is_output_list=True,
                                     tooltip="Per image: P(high) + 0.5 P(medium), in [0, 1]."),
                     io.String.Output(display_name="tier", is_output_list=True,
                                      tooltip="Per image: the most likely tier, low / medium / high."),
                     io.String.Output(display_name="probabilities", is_output_list=True,
                                      tooltip="Per image: 'low 0.10, medium 0.30, high 0.60'.")],
        )

    @classmethod
    def execute(cls, weather_model, image, source: str) -> io.NodeOutput:
        rgb, _ = network_image(image, weather_model)
        src = resolve_source(source, weather_model.has_clip)
        model_patcher.load(weather_model.patchers(with_clip=src == "clip"))
        if src == "clip":
            probs = clip_signal(weather_model.clip, "quality", rgb, weather_model.clip_patcher.model)
        else:
            with interruptible():
                probs = learned_quality(weather_model.restorer, rgb, should_stop=should_stop)
        scores, tiers, texts = quality_report(probs)
        return io.NodeOutput(scores, tiers, texts, ui=ui.PreviewText(quality_text(scores, tiers, texts, src)))
