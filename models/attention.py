"""The one attention product of the network's two attentions (window attention and CWP cross-attention).

    softmax(q k^T / sqrt(c) [masked]) v,   q (..., N, c), k and v (..., T, c)

PyTorch's fused kernel on the CPU is slow in bf16 / fp16 for these small windows and token sets: at
the training shapes its backward took 5-7x as long as the plain matrix products (bf16 autocast, 2
threads; docs/BENCHMARKS.md, "Training step"). So on the CPU in reduced precision the product is
written out; everywhere else (fp32 on the CPU, every GPU) the fused kernel runs. Both give the same
numbers to rounding (tests/test_attention.py).
"""
from typing import Optional

import torch
import torch.nn.functional as F


def use_fused(q: torch.Tensor) -> bool:
    return q.device.type != "cpu" or q.dtype == torch.float32 or q.dtype == torch.float64


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`F.scaled_dot_product_attention(q, k, v, attn_mask=mask)`; `mask` bool, True = the key takes
    part (every query needs at least one)."""
    if use_fused(q):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v
