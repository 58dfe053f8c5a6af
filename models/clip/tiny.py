"""A tiny, randomly initialised open_clip model (no download), for tests and smoke runs only.

Its outputs mean nothing; it exercises every code path of the CLIP providers, prompt learning and
the SRD teacher in milliseconds. The config is data, in open_clip's own schema.
"""
import torch

TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "layers": 2, "width": 32, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TINY_MEAN = (0.48145466, 0.4578275, 0.40821073)           # open_clip's OPENAI_DATASET_MEAN / STD
TINY_STD = (0.26862954, 0.26130258, 0.27577711)


def build_tiny_clip(seed: int = 0, config: dict = None):
    """(model in eval mode, tokenizer); the global RNG state is left as it was."""
    import open_clip
    from open_clip.model import CLIP

    cfg = config or TINY_CLIP_CONFIG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**cfg).eval()
    tokenizer = open_clip.SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"])
    return model, tokenizer
