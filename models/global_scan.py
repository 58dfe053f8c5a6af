"""Global path of the dual-aggregation block: a selective state-space scan in four directions.

CLIPHaze (arXiv 2408.12317) runs a Mamba path beside window attention. Here each row is scanned
left->right and right->left and each column top->bottom and bottom->top, with step size dt and
projections B, C computed from the input (selective), one set per direction. Rows/columns are
independent sequences, so the cost is linear in the pixels and two stacked blocks see the whole
image. The scan itself is `selective_scan` (chunked, parallel).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .selective_scan import selective_scan

DIRECTIONS = ("left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")


def to_sequences(t: torch.Tensor, direction: str) -> torch.Tensor:
    """(B, C, H, W) -> (B*rows, length, C) ordered along `direction`."""
    if direction in ("left_to_right", "right_to_left"):
        seq = rearrange(t, "b c h w -> (b h) w c")
    else:
        seq = rearrange(t, "b c h w -> (b w) h c")
    return seq.flip(1) if direction in ("right_to_left", "bottom_to_top") else seq


def from_sequences(seq: torch.Tensor, direction: str, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `to_sequences`: (B*rows, length, C) -> (B, C, H, W)."""
    if direction in ("right_to_left", "bottom_to_top"):
        seq = seq.flip(1)
    if direction in ("left_to_right", "right_to_left"):
        return rearrange(seq, "(b h) w c -> b c h w", b=b, h=h)
    return rearrange(seq, "(b w) h c -> b c h w", b=b, w=w)


class GlobalScan(nn.Module):
    def __init__(self, dim: int, head_dim: int, state: int, chunk: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.heads, self.head_dim, self.state, self.chunk = dim // head_dim, head_dim, state, chunk
        self.in_proj = nn.Conv2d(dim, 2 * dim, 1, **kw)           # -> scanned stream x, gate z
        self.local = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **kw)
        n_dir = len(DIRECTIONS)
        # per direction: dt per head, B and C of size `state`
        self.ssm_params = nn.Conv2d(dim, n_dir * (self.heads + 2 * state), 1, **kw)
        # dt initialised in [1e-3, 1e-1] (log-uniform) as in Mamba, through the softplus bias
        dt = torch.exp(torch.rand(n_dir, self.heads, **kw) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, self.heads + 1, **kw).float().repeat(n_dir, 1)))
        self.skip = nn.Parameter(torch.ones(dim, **kw))           # Mamba's D term
        self.out_proj = nn.Conv2d(dim, dim, 1, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        u, z = self.in_proj(x).chunk(2, dim=1)
        u = F.silu(self.local(u))
        params = self.ssm_params(u).split(self.heads + 2 * self.state, dim=1)
        A = -torch.exp(self.A_log.float())                        # (directions, heads)
        y = u * self.skip[:, None, None]
        # one scan call per axis: the forward and backward directions are stacked along the batch
        for pair in ((0, 1), (2, 3)):
            dirs = [DIRECTIONS[i] for i in pair]
            seq_u = torch.cat([to_sequences(u, d) for d in dirs])                  # (2R, l, C)
            dt_raw, B, C = torch.cat([to_sequences(params[i], d) for i, d in zip(pair, dirs)]).split(
                [self.heads, self.state, self.state], dim=-1)
            rows = seq_u.shape[0] // 2
            bias = torch.cat([self.dt_bias[i].expand(rows, -1) for i in pair])[:, None]   # (2R, 1, heads)
            dt = F.softplus(dt_raw.float() + bias)
            A_seq = torch.cat([A[i].expand(rows, -1) for i in pair])                   # (2R, heads)
            out = selective_scan(rearrange(seq_u, "r l (n p) -> r l n p", n=self.heads), dt, A_seq, B, C,
                                 self.chunk)
            forward, backward = rearrange(out, "r l n p -> r l (n p)").chunk(2)
            # both directions summed in sequence order, then one rearrangement back to the map
            y = y + from_sequences(forward + backward.flip(1), dirs[0], b, h, w)
        return self.out_proj(y * F.silu(z))
