"""The pack's own ComfyUI socket types and what travels through them.

WEATHER_MODEL  a WeatherModel: the restorer and, optionally, CLIP signal providers, each wrapped
               in a ComfyUI ModelPatcher so that comfy.model_management loads and offloads them
WEATHER_PRIOR  a WeatherPrior: p (B, K) in [0, 1] over WEATHER_TYPES, where it came from, a summary
"""
import dataclasses
from typing import Any, List, Optional

import torch
from comfy_api.latest import io

from ..models.restorer import WeatherRestorer

CATEGORY = "image/restoration/weather"
NODE_PREFIX = "WeatherRestore_"                 # node ids are permanent: add a V2, never rename

WeatherModelType = io.Custom("WEATHER_MODEL")
WeatherPriorType = io.Custom("WEATHER_PRIOR")


@dataclasses.dataclass(frozen=True)
class WeatherModel:
    restorer: WeatherRestorer
    patcher: Any                                # comfy.model_patcher.ModelPatcher of `restorer`
    weights: str                                # manifest id or file name, for messages
    clip: Optional[Any] = None                  # models.clip.ClipSignals, or None
    clip_patcher: Optional[Any] = None          # ModelPatcher of the CLIP model
    clip_name: str = "none"

    @property
    def has_clip(self) -> bool:
        return self.clip is not None

    def patchers(self, with_clip: bool) -> List[Any]:
        return [self.patcher] + ([self.clip_patcher] if with_clip and self.clip_patcher is not None else [])


@dataclasses.dataclass(frozen=True)
class WeatherPrior:
    values: torch.Tensor                        # (B, K) float32 in [0, 1], on the intermediate device
    source: str                                 # clip | learned, "+manual" where overridden
    summary: str
