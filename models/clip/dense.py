"""Image features of an open_clip model: a global embedding and dense per-patch features.

Dense features follow MaskCLIP (Zhou et al., "Extract Free Dense Labels from CLIP", ECCV 2022):
the patch tokens entering the last ViT block are sent through that block's value path (the value
projection and the attention's output projection, without query-key mixing), then through the
tower's final norm and projection, which puts every patch in the joint image-text space where it
can be compared with text embeddings. Nothing is retrained and open_clip is not patched: a forward
pre-hook on the last block reads its input.

How this version differs: the ViT's positional embedding fixes its input size, so instead of
squashing the image into one square we resize its short side to `scale` x the model's input size
(aspect kept), run overlapping windows of the model's size (stride half a window, on the patch
grid), and average the normalised features of overlapping windows on one token grid. The grid has
about `scale * grid_size` tokens on the short side (14 for ViT-B/32 at scale 2).
"""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def _pair(v) -> Tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def vit_tower(clip_model) -> nn.Module:
    """The open_clip VisionTransformer of `clip_model`, or a ValueError saying what is unsupported."""
    visual = getattr(clip_model, "visual", clip_model)
    needed = ("conv1", "transformer", "ln_post", "proj", "image_size", "patch_size")
    missing = [a for a in needed if not hasattr(visual, a)]
    if missing or getattr(visual, "attn_pool", None) is not None:
        raise ValueError(
            f"dense CLIP features need an open_clip ViT image tower with a token output; "
            f"{type(visual).__name__} has {'no ' + ', '.join(missing) if missing else 'an attentional pooler'}. "
            f"Choose a ViT CLIP such as ViT-B-32, or use the learned density provider")
    return visual


def model_input_size(clip_model) -> Tuple[int, int]:
    visual = getattr(clip_model, "visual", clip_model)
    size = getattr(visual, "image_size", None)
    if size is None:
        raise ValueError(f"cannot tell the input size of {type(visual).__name__}; it has no `image_size`")
    return _pair(size)


def model_device_dtype(clip_model):
    p = next(getattr(clip_model, "visual", clip_model).parameters())
    return p.device, p.dtype


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.as_tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.as_tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def resize(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, *size), bicubic (antialiased when shrinking), clamped."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def check_image(x: torch.Tensor, name: str = "image") -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (B, 3, H, W) RGB in [0, 1]; got shape {tuple(x.shape)}")


# -- one pass of the tower ------------------------------------------------------------------
def _value_path(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last block's attention with every token attending only to itself: out_proj(W_v ln_1(x)).
    Works for nn.MultiheadAttention blocks and open_clip's custom Attention (head scale, inner norm)."""
    attn, D = block.attn, x.shape[-1]
    bias = attn.in_proj_bias[2 * D:] if attn.in_proj_bias is not None else None
    v = F.linear(block.ln_1(x), attn.in_proj_weight[2 * D:], bias)          # (N, L, D)
    if getattr(attn, "head_scale", None) is not None:                          # custom block
        v = (v.unflatten(-1, (attn.num_heads, -1)) * attn.head_scale.view(1, 1, attn.num_heads, 1)).flatten(-2)
    if hasattr(attn, "ln_inner"):
        v = attn.ln_inner(v)
    v = attn.out_proj(v)
    if hasattr(block, "ln_attn"):
        v = block.ln_attn(v)
    return block.ls_1(v)


def encode_windows(clip_model, x: torch.Tensor, dense: bool = True):
    """x (N, 3, h, w) normalised, at the model's input size -> (pooled (N, E), patches (N, gh, gw, E) or None).

    Features are not normalised. One forward pass gives both: the pooled embedding is the tower's
    own output, the patches come from the input of its last block (read by a pre-hook).
    """
    visual = vit_tower(clip_model) if dense else getattr(clip_model, "visual", clip_model)
    if not dense:
        out = visual(x)
        return (out[0] if isinstance(out, tuple) else out), None
    block = visual.transformer.resblocks[-1]
    captured = {}

    def grab(_module, args):
        captured["tokens"] = args[0]

    handle = block.register_forward_pre_hook(grab)
    try:
        out = visual(x)
    finally:
        handle.remove()
    pooled = out[0] if isinstance(out, tuple) else out
    tokens = captured["tokens"]
    if not getattr(visual.transformer, "batch_first", True):
        tokens = tokens.transpose(0, 1)                                        # (L, N, D) -> (N, L, D)
    ph, pw = _pair(visual.patch_size)
    gh, gw = x.shape[-2] // ph, x.shape[-1] // pw
    tokens = tokens[:, 1:]                                                     # drop the class token
    if tokens.shape[1] != gh * gw:
        raise ValueError(f"the CLIP tower returned {tokens.shape[1]} patch tokens for a {gh}x{gw} grid; "
                         f"patch dropout is active: call clip_model.eval()")
    patches = visual.ln_post(_value_path(block, tokens))
    if visual.proj is not None:
        patches = patches @ visual.proj                                        # (N, L, D) -> (N, L, E)
    return pooled, patches.reshape(x.shape[0], gh, gw, -1)


def encode_global(clip_model, x: torch.Tensor, mean, std, max_batch: int = 64) -> torch.Tensor:
    """x (B, 3, H, W) in [0, 1] -> (B, E) normalised float32 image embeddings (whole image, resized)."""
    check_image(x)
    device, dtype = model_device_dtype(clip_model)
    xs = normalize(resize(x.to(device=device, dtype=torch.float32), model_input_size(clip_model)), mean, std)
    feats = [encode_windows(clip_model, c.to(dtype), dense=False)[0] for c in xs.split(max_batch)]
    return F.normalize(torch.cat(feats).float(), dim=-1)


# -- sliding windows on a common token grid -----------------------------------------------------
def _starts(length: int, win: int, stride: int):
    s = list(range(0, length - win + 1, stride))
    if s[-1] != length - win:
        s.append(length - win)
    return s


def window_layout(H: int, W: int, win: Tuple[int, int], patch: Tuple[int, int], scale: float):
    """Resized size (Hs, Ws) with the short side ~ scale x window and both a multiple of the patch,
    plus the window origins along each axis (pixels, on the patch grid)."""
    s = scale * max(win[0] / H, win[1] / W)
    Hs = max(win[0], int(round(H * s / patch[0])) * patch[0])
    Ws = max(win[1], int(round(W * s / patch[1])) * patch[1])
    sy = max(patch[0], (win[0] // 2) // patch[0] * patch[0])
    sx = max(patch[1], (win[1] // 2) // patch[1] * patch[1])
    return (Hs, Ws), _starts(Hs, win[0], sy), _starts(Ws, win[1], sx)


def encode_dense(clip_model, x: torch.Tensor, mean, std, scale: float = 2.0,
                 max_batch: int = 32) -> torch.Tensor:
    """x (B, 3, H, W) in [0, 1] -> (B, E, Hg, Wg) normalised float32 patch features on one token grid,
    Hg / Wg ~ H / W (aspect kept). All windows of all images run batched, `max_batch` at a time."""
    check_image(x)
    visual = vit_tower(clip_model)
    device, dtype = model_device_dtype(clip_model)
    win, patch = model_input_size(clip_model), _pair(visual.patch_size)
    B, _, H, W = x.shape
    (Hs, Ws), ys, xs = window_layout(H, W, win, patch, scale)
    img = normalize(resize(x.to(device=device, dtype=torch.float32), (Hs, Ws)), mean, std)
    crops = torch.stack([img[:, :, y:y + win[0], x0:x0 + win[1]] for y in ys for x0 in xs], 1)
    crops = crops.flatten(0, 1).to(dtype)                                      # (B * nW, 3, h, w)
    feats = torch.cat([encode_windows(clip_model, c)[1] for c in crops.split(max_batch)])
    gh, gw = win[0] // patch[0], win[1] // patch[1]
    feats = F.normalize(feats.float(), dim=-1).unflatten(0, (B, len(ys) * len(xs)))   # (B, nW, gh, gw, E)
    grid = feats.new_zeros(B, Hs // patch[0], Ws // patch[1], feats.shape[-1])
    count = feats.new_zeros(1, Hs // patch[0], Ws // patch[1], 1)
    for k, (y, x0) in enumerate((y, x0) for y in ys for x0 in xs):
        ty, tx = y // patch[0], x0 // patch[1]
        grid[:, ty:ty + gh, tx:tx + gw] += feats[:, k]
        count[:, ty:ty + gh, tx:tx + gw] += 1
    grid = F.normalize(grid / count, dim=-1)
    return grid.permute(0, 3, 1, 2).contiguous()                               # (B, Hg, Wg, E) -> (B, E, Hg, Wg)


def gaussian_blur(m: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, h, w) -> same, separable Gaussian (replicate padding); sigma in grid cells, 0 = none."""
    if sigma <= 0:
        return m
    r = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-r, r + 1, device=m.device, dtype=m.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    m = F.conv2d(F.pad(m, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(m, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
