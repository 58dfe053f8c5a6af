"""Learned prompts (CoOp context vectors) as `.safetensors`: one (n_ctx, width) tensor per task.

    tensors   "<task>.ctx"  (n_ctx, width) float32, task in PROMPT_TASKS
    metadata  format = "weather-clip-prompts", classes = {task: [class words]} (JSON),
              clip = manifest id of the CLIP they were learned with, plus free-form training facts
The providers (signals.py) take the loaded dict {task: PromptContext}.
"""
import dataclasses
import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file, safe_open

FORMAT = "weather-clip-prompts"
PROMPT_TASKS = {"density": 2, "quality": 3}          # task -> number of classes


class PromptFileError(RuntimeError):
    """A learned-prompts file is missing, unreadable or not made for this use; the message says why."""


@dataclasses.dataclass(frozen=True)
class PromptContext:
    ctx: torch.Tensor                    # (n_ctx, width) learned context vectors
    classes: Tuple[str, ...]             # class words after the context, in the task's class order

    def __post_init__(self):
        n = len(self.classes)
        if self.ctx.ndim != 2:
            raise ValueError(f"context vectors must be (n_ctx, width); got {tuple(self.ctx.shape)}")
        if n < 2:
            raise ValueError(f"a learned prompt needs at least two classes; got {self.classes}")


def save_prompts(path, prompts: Dict[str, PromptContext], metadata: Optional[dict] = None) -> Path:
    path = Path(path)
    for task, p in prompts.items():
        if task not in PROMPT_TASKS or len(p.classes) != PROMPT_TASKS[task]:
            raise ValueError(f"task {task!r} with {len(p.classes)} classes is not one of {PROMPT_TASKS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta.update(format=FORMAT, classes=json.dumps({t: list(p.classes) for t, p in prompts.items()}))
    tensors = {f"{t}.ctx": p.ctx.detach().float().contiguous().cpu() for t, p in prompts.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_prompts_metadata(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"learned prompts file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise PromptFileError(f"{path} is not a readable .safetensors file ({e}); write it again with "
                              f"`python weather.py learn-prompts`") from e
    if meta.get("format") != FORMAT:
        raise PromptFileError(f"{path} is not a learned-prompts file (metadata format {meta.get('format')!r}, "
                              f"expected {FORMAT!r}); write one with `python weather.py learn-prompts`")
    return meta


def load_prompts(path, device=None) -> Dict[str, PromptContext]:
    meta = read_prompts_metadata(path)
    classes = json.loads(meta["classes"])
    tensors = load_file(str(path), device=str(device or "cpu"))
    out = {}
    for task, names in classes.items():
        if f"{task}.ctx" not in tensors:
            raise PromptFileError(f"{path} lists task {task!r} but has no tensor '{task}.ctx'; the file is damaged")
        out[task] = PromptContext(tensors[f"{task}.ctx"], tuple(names))
    return out
