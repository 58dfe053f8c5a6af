"""Local path of the dual-aggregation block: multi-head self-attention inside non-overlapping windows.

Works for any H, W: the map is zero-padded to a multiple of the window and padded keys are masked
out, so padding never leaks into real pixels. A 3x3 depthwise conv on the values adds position
information (LePE, as in CSWin), instead of a relative-position table that would tie the weights
to one window size.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .attention import attention


class WindowAttention(nn.Module):
    def __init__(self, dim: int, head_dim: int, window: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.heads = dim // head_dim
        self.window = window
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, **kw)
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **kw)
        self.proj = nn.Conv2d(dim, dim, 1, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, H, W = x.shape
        w = self.window
        q, k, v = self.qkv(x).chunk(3, dim=1)
        lepe = self.pos(v)
        pad_h, pad_w = (-H) % w, (-W) % w
        if pad_h or pad_w:
            q, k, v = (F.pad(t, (0, pad_w, 0, pad_h)) for t in (q, k, v))
        Hp, Wp = H + pad_h, W + pad_w
        # (B, heads*c, Hp, Wp) -> (B * windows, heads, w*w, c)
        to_windows = "b (n c) (y wy) (x wx) -> (b y x) n (wy wx) c"
        q, k, v = (rearrange(t, to_windows, n=self.heads, wy=w, wx=w) for t in (q, k, v))
        mask = None
        if pad_h or pad_w:
            valid = torch.zeros(1, 1, Hp, Wp, dtype=torch.bool, device=x.device)
            valid[..., :H, :W] = True
            valid = rearrange(valid.expand(x.shape[0], -1, -1, -1),
                              "b 1 (y wy) (x wx) -> (b y x) 1 1 (wy wx)", wy=w, wx=w)
            mask = valid                                          # True = key takes part
        out = attention(q, k, v, mask)
        out = rearrange(out, "(b y x) n (wy wx) c -> b (n c) (y wy) (x wx)",
                        y=Hp // w, x=Wp // w, wy=w, wx=w)[..., :H, :W]
        return self.proj(out + lepe)
