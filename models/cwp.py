"""CLIP Weather Prior (CWP) injection, from CLIP-SRD/CWP (TIP 2024, arXiv 2306.09008).

Features attend (cross-attention, features are queries) to K+1 prior tokens
    T = [sum_k p_k E_k ; E_1 .. E_K]
where E_k are learned distribution tokens, one per weather type ("distribution-specific
information"), and p is the sample-specific weather prior (B, K) from any provider: CLIP, the
restorer's own head, or a user. Unlike the paper, the sample-specific part enters through p only,
so the restorer never sees CLIP tensors and works with any CLIP or none.
"""
import torch
import torch.nn as nn
from einops import rearrange

from .attention import attention


class WeatherTokens(nn.Module):
    """Learned distribution tokens E (K, dim) and the prior-weighted token: p (B, K) -> T (B, K+1, dim)."""

    def __init__(self, num_types: int, dim: int, device=None, dtype=None):
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(num_types, dim, device=device, dtype=dtype) * 0.5)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        E = self.tokens.to(p.dtype)
        mixed = p @ E                                             # (B, K) @ (K, dim) -> (B, dim)
        return torch.cat([mixed[:, None], E.expand(p.shape[0], -1, -1)], dim=1)


class PriorCrossAttention(nn.Module):
    def __init__(self, dim: int, token_dim: int, head_dim: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.heads = dim // head_dim
        self.q = nn.Conv2d(dim, dim, 1, **kw)
        self.kv = nn.Linear(token_dim, 2 * dim, **kw)
        self.proj = nn.Conv2d(dim, dim, 1, **kw)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        _, _, H, W = x.shape
        q = rearrange(self.q(x), "b (n c) h w -> b n (h w) c", n=self.heads)
        k, v = rearrange(self.kv(tokens.to(x.dtype)), "b t (two n c) -> two b n t c", two=2, n=self.heads)
        out = attention(q, k, v)                                  # (B, heads, H*W, c)
        return self.proj(rearrange(out, "b n (h w) c -> b (n c) h w", h=H, w=W))
