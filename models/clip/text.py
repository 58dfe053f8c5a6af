"""Text side of the CLIP providers: prompt ensembles, learnable-context prompts, one cache per model.

Zero-shot classes are prompt ensembles (Radford et al., CLIP 2021): the mean of the normalised
embeddings of several phrasings, normalised again. Learned classes follow CoOp (Zhou et al.,
"Learning to Prompt for Vision-Language Models", IJCV 2022): "X X ... X <class>." where the
embeddings of the n placeholder tokens are replaced by learnable context vectors. The replacement
is a forward hook on open_clip's token embedding, so open_clip's own `encode_text` (causal mask,
end-of-text pooling, projection) runs unchanged.
"""
import hashlib
import json
import threading
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

PROMPTS_PATH = Path(__file__).with_name("prompts.json")
PLACEHOLDER = "X"

_cache: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@lru_cache(maxsize=2)
def load_prompts(path: str = str(PROMPTS_PATH)) -> dict:
    return json.loads(Path(path).read_text())


def cached(clip_model: nn.Module, key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Text embeddings computed once per model (weakly keyed: dropped with the model) and key."""
    with _lock:
        per_model = _cache.setdefault(clip_model, {})
        if key not in per_model:
            per_model[key] = compute()
        return per_model[key]


def text_device_dtype(clip_model) -> Tuple[torch.device, torch.dtype]:
    emb = token_embedding(clip_model, required=False)
    p = emb.weight if emb is not None else next(clip_model.parameters())
    return p.device, p.dtype


def token_embedding(clip_model, required: bool = True):
    emb = getattr(clip_model, "token_embedding", None)
    if emb is None:
        emb = getattr(getattr(clip_model, "text", None), "token_embedding", None)
    if emb is None and required:
        raise ValueError(
            f"learned prompts need an open_clip text transformer with a token embedding; "
            f"{type(clip_model).__name__} has none (Hugging Face text towers are not supported). "
            f"Use the zero-shot prompts: pass learned_prompts=None")
    return emb


@torch.no_grad()
def encode_texts(clip_model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """N texts -> (N, E) normalised float32 embeddings on the model's device."""
    device, _ = text_device_dtype(clip_model)
    return F.normalize(clip_model.encode_text(tokenizer(list(texts)).to(device)).float(), dim=-1)


def class_ensembles(clip_model, tokenizer, classes: Sequence[Sequence[str]]) -> torch.Tensor:
    """C classes, each a list of prompts -> (C, E) normalised ensemble embeddings, cached per model."""
    key = ("ensemble", tuple(tuple(c) for c in classes)) + text_device_dtype(clip_model)

    def compute():
        flat = [p for c in classes for p in c]
        emb = encode_texts(clip_model, tokenizer, flat)
        out, i = [], 0
        for c in classes:
            out.append(F.normalize(emb[i:i + len(c)].mean(0), dim=-1))
            i += len(c)
        return torch.stack(out)

    return cached(clip_model, key, compute)


def context_tokens(tokenizer, n_ctx: int, class_names: Sequence[str]) -> torch.Tensor:
    """'X X ... X <class>.' token ids (C, L); checks that each placeholder is one token at 1..n_ctx."""
    placeholder = " ".join([PLACEHOLDER] * n_ctx)
    tokens = tokenizer([f"{placeholder} {name}." for name in class_names])
    ph = tokenizer([PLACEHOLDER])[0, 1]
    if not bool((tokens[:, 1:1 + n_ctx] == ph).all()):
        raise ValueError(f"the tokenizer does not split '{placeholder}' into {n_ctx} single tokens after the "
                         f"start token; learned prompts need open_clip's SimpleTokenizer (CLIP BPE)")
    return tokens


def encode_with_context(clip_model, tokens: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
    """tokens (C, L) from `context_tokens`, ctx (n_ctx, width) -> (C, E) normalised float32 embeddings.
    Differentiable in ctx; the model itself is used as it is (freeze it for prompt learning)."""
    emb_module = token_embedding(clip_model)
    width = emb_module.weight.shape[1]
    if ctx.ndim != 2 or ctx.shape[1] != width:
        raise ValueError(f"context vectors must be (n_ctx, {width}) for this CLIP's text width {width}; "
                         f"got {tuple(ctx.shape)}: the prompts were learned with another CLIP")
    n_ctx = ctx.shape[0]

    def replace(_module, _inputs, out):                                        # out (C, L, width)
        c = ctx.to(device=out.device, dtype=out.dtype).unsqueeze(0).expand(out.shape[0], -1, -1)
        return torch.cat([out[:, :1], c, out[:, 1 + n_ctx:]], dim=1)

    handle = emb_module.register_forward_hook(replace)
    try:
        feats = clip_model.encode_text(tokens.to(emb_module.weight.device))
    finally:
        handle.remove()
    return F.normalize(feats.float(), dim=-1)


def learned_classes(clip_model, tokenizer, ctx: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
    """Cached (C, E) embeddings of fixed learned prompts (inference; no gradient)."""
    digest = hashlib.sha256(ctx.detach().float().cpu().numpy().tobytes()).hexdigest()
    key = ("learned", digest, tuple(class_names)) + text_device_dtype(clip_model)

    def compute():
        with torch.no_grad():
            return encode_with_context(clip_model, context_tokens(tokenizer, ctx.shape[0], class_names), ctx)

    return cached(clip_model, key, compute)
