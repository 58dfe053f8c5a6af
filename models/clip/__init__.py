"""CLIP signal providers and the CLIP-SRD teacher; they take an already-built open_clip model.

Pure PyTorch: nothing here imports open_clip or touches the network (hub/clip_loader.py finds,
verifies and builds models; models/clip/tiny.py builds a random one for tests).
"""
from .dense import encode_dense, encode_global
from .prompt_io import PROMPT_TASKS, PromptContext, PromptFileError, load_prompts, save_prompts
from .providers import ClipSignals
from .srd import ClipSRDTeacher

__all__ = [
    "ClipSignals", "ClipSRDTeacher", "PromptContext", "PromptFileError", "PROMPT_TASKS",
    "load_prompts", "save_prompts", "encode_dense", "encode_global",
]
