"""Runs the five nodes in-process on ComfyUI's own modules (model_management, ModelPatcher) with a
tiny random CLIP, and prints what they returned as JSON. Started by tests/test_comfyui_e2e.py as

    <ComfyUI python> tests/comfyui_node_script.py <ComfyUI checkout> <folder with tiny weights>

A real CLIP file cannot be had offline, so hub.clip_loader.load_clip is replaced by one that hands
out the tiny open_clip model; everything after it (patchers, devices, providers) is the real code.
"""
import importlib.util
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
comfy_dir, weights_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, comfy_dir)
sys.argv = [sys.argv[0], "--cpu"]                              # ComfyUI's own argument parser: CPU only

import comfy.options  # noqa: E402  (ComfyUI's, from the checkout)
comfy.options.enable_args_parsing()
import folder_paths  # noqa: E402

spec = importlib.util.spec_from_file_location("weather_restore", ROOT / "__init__.py",
                                              submodule_search_locations=[str(ROOT)])
pack = importlib.util.module_from_spec(spec)
sys.modules["weather_restore"] = pack
spec.loader.exec_module(pack)

from weather_restore import nodes  # noqa: E402
from weather_restore.hub import clip_loader  # noqa: E402
from weather_restore.models.clip.tiny import TINY_MEAN, TINY_STD, build_tiny_clip  # noqa: E402

folder_paths.add_model_folder_path("weather", weights_dir)
clip_model, tokenizer = build_tiny_clip()
asked = {}


def fake_load_clip(choice, device="cpu", dtype=torch.float32, search_dirs=(), **_):
    asked.update(choice=choice, device=str(device), dtype=str(dtype), dirs=[str(d) for d in search_dirs])
    return clip_loader.ClipBundle(clip_model.to(device=device, dtype=dtype), tokenizer, TINY_MEAN, TINY_STD,
                                  "tiny-clip", Path("tiny-clip"))


clip_loader.load_clip = fake_load_clip
torch.manual_seed(0)
image = torch.rand(2, 40, 56, 3)                               # (B, H, W, C)

(model,) = nodes.LoadWeatherModel.execute(weights="e2e_tiny.safetensors", clip="tiny-clip", precision="auto").result
prior, summary = nodes.ClipWeatherPrior.execute(weather_model=model, image=image, source="clip", rain_streaks=-1.0,
                                                raindrops=-1.0, snow=0.75, haze=-1.0).result
density, heat = nodes.DensityMap.execute(weather_model=model, image=image, source="clip").result
out = nodes.QualityPerceiver.execute(weather_model=model, image=image, source="clip")
scores, tiers, probs = out.result
restored = nodes.Restore.execute(weather_model=model, image=image, prior=prior, density=density, region=None,
                                 strength=1.0, feather=16, tile_size=32, tile_overlap=8).result[0]
same_patcher = nodes.LoadWeatherModel.execute(weights="e2e_tiny.safetensors", clip="tiny-clip",
                                              precision="auto").result[0].clip_patcher is model.clip_patcher
print(json.dumps({
    "asked": asked, "has_clip": model.has_clip, "clip_patcher": type(model.clip_patcher).__name__,
    "same_clip_patcher": same_patcher,
    "prior": prior.values.tolist(), "prior_source": prior.source, "summary": summary,
    "density_shape": list(density.shape), "density_range": [density.min().item(), density.max().item()],
    "heat_shape": list(heat.shape), "scores": scores, "tiers": tiers, "probs": probs,
    "ui": out.ui.as_dict() if hasattr(out.ui, "as_dict") else out.ui,
    "restored_shape": list(restored.shape), "restored_device": str(restored.device),
    "restored_range": [restored.min().item(), restored.max().item()],
    "changed": (restored - image).abs().mean().item(),
}))
