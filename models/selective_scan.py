"""Selective state-space scan (Mamba-style), pure PyTorch, parallel over chunks.

Recurrence per sequence, head and channel (input-dependent step dt and projections B, C):
    h_t = exp(dt_t * A) * h_{t-1} + dt_t * B_t * x_t        h: (N,)  state
    y_t = C_t . h_t
`A` is one negative scalar per head (the Mamba-2 "SSD" form), which lets a chunk of L steps be
computed at once as a masked (L x L) decay matrix; chunks are then linked by a short scan over
chunk states. Cost is linear in the sequence length; no Python loop over positions.
`selective_scan_reference` is the plain sequential loop that the tests compare against.
"""
import torch
import torch.nn.functional as F
from einops import rearrange


def _segment_sum(x: torch.Tensor) -> torch.Tensor:
    """x: (..., T) -> (..., T, T) with out[..., i, j] = sum(x[..., j+1 : i+1]) for i >= j, else -inf."""
    T = x.shape[-1]
    x = x[..., None].expand(*x.shape, T)                         # (..., T, T): x[..., i] along dim -2
    keep_strict = torch.ones(T, T, dtype=torch.bool, device=x.device).tril(-1)
    x = x.masked_fill(~keep_strict, 0)
    sums = torch.cumsum(x, dim=-2)
    keep = torch.ones(T, T, dtype=torch.bool, device=x.device).tril(0)
    return sums.masked_fill(~keep, float("-inf"))


def selective_scan(x, dt, A, B, C, chunk: int = 32):
    """Chunked selective scan.

    x:  (b, l, h, p)  inputs, h heads of p channels
    dt: (b, l, h)     positive step sizes
    A:  (h,)          negative decay rates
    B, C: (b, l, n)   input / output projections of the n-dim state (shared by the heads)
    returns y: (b, l, h, p), in the dtype of x; computed in float32 for stability.
    """
    out_dtype = x.dtype
    x, dt, A, B, C = (t.float() for t in (x, dt, A, B, C))
    b, length, h, p = x.shape
    pad = (-length) % chunk
    if pad:  # dt = 0 past the end: no decay, no input, so the padding changes no real output
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, pad))
    xd = x * dt[..., None]                                        # input scaled by its step
    a = rearrange(dt * A, "b (c l) h -> b h c l", l=chunk)        # log-decay per step
    xd = rearrange(xd, "b (c l) h p -> b c l h p", l=chunk)
    B = rearrange(B, "b (c l) n -> b c l n", l=chunk)
    C = rearrange(C, "b (c l) n -> b c l n", l=chunk)
    a_cum = torch.cumsum(a, dim=-1)                               # (b, h, c, l)

    # 1. within each chunk: y_i = sum_{j<=i} C_i.B_j exp(a_{j+1..i}) xd_j
    decay = torch.exp(_segment_sum(a))                            # (b, h, c, l, l)
    scores = torch.einsum("bcin,bcjn->bcij", C, B)                # (b, c, l, l)
    y_in = torch.einsum("bcij,bhcij,bcjhp->bcihp", scores, decay, xd)

    # 2. state each chunk ends with, from its own inputs only
    to_end = torch.exp(a_cum[..., -1:] - a_cum)                   # (b, h, c, l)
    states = torch.einsum("bcjn,bhcj,bcjhp->bchpn", B, to_end, xd)

    # 3. carry states across chunks: a scan over (#chunks), done as one masked matrix product
    chunk_decay = torch.exp(_segment_sum(F.pad(a_cum[..., -1], (1, 0))))   # (b, h, c+1, c+1)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)   # (b, c+1, h, p, n)
    carried = torch.einsum("bhzc,bchpn->bzhpn", chunk_decay, states)[:, :-1]  # state entering chunk

    # 4. contribution of the carried state inside each chunk
    y_carry = torch.einsum("bcin,bchpn,bhci->bcihp", C, carried, torch.exp(a_cum))
    y = rearrange(y_in + y_carry, "b c l h p -> b (c l) h p")[:, :length]
    return y.to(out_dtype)


def selective_scan_reference(x, dt, A, B, C):
    """Sequential loop over positions; the ground truth for tests. Same shapes as `selective_scan`."""
    b, length, h, p = x.shape
    state = x.new_zeros(b, h, p, B.shape[-1])
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]                          # (b, h, 1, 1)
        inp = (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, None, None, :]    # (b, h, p, n)
        state = decay * state + inp
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1)
