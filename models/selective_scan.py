"""Selective state-space scan (Mamba-style), pure PyTorch, parallel over chunks.

Recurrence per sequence, head and channel (input-dependent step dt and projections B, C):
    h_t = exp(dt_t * A) * h_{t-1} + dt_t * B_t * x_t        h: (N,)  state
    y_t = C_t . h_t
`A` is one negative scalar per head (the Mamba-2 "SSD" form), which lets a chunk of L steps be
computed at once as a masked (L x L) decay matrix; chunks are then linked by a scan over chunk
states done as one small matrix product. Cost is linear in the sequence length; no Python loop
over positions. `selective_scan_reference` is the plain sequential loop the tests compare against.
"""
import torch
import torch.nn.functional as F
from einops import rearrange


def _decay_matrix(a_cum: torch.Tensor) -> torch.Tensor:
    """a_cum (..., T) cumulative log-decay -> (..., T, T) with exp(a_cum[i] - a_cum[j]) for i >= j, else 0."""
    T = a_cum.shape[-1]
    diff = a_cum[..., :, None] - a_cum[..., None, :]
    upper = torch.ones(T, T, dtype=torch.bool, device=a_cum.device).triu(1)
    return torch.exp(diff.masked_fill(upper, float("-inf")))


def selective_scan(x, dt, A, B, C, chunk: int = 32):
    """Chunked selective scan.

    x:  (b, l, h, p)  inputs, h heads of p channels
    dt: (b, l, h)     positive step sizes
    A:  (h,) or (b, h) negative decay rates (per sequence when 2-D, so several scan directions can
                      share one call)
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
    a = dt * (A if A.ndim == 1 else A[:, None, :])               # (b, L, h) log-decay per step
    a_cum = torch.cumsum(rearrange(a, "b (c l) h -> b h c l", l=chunk), dim=-1)   # (b, h, c, l)
    xd = rearrange(x * dt[..., None], "b (c l) h p -> b h c l p", l=chunk)       # input x step
    B = rearrange(B, "b (c l) n -> b 1 c l n", l=chunk)
    C = rearrange(C, "b (c l) n -> b 1 c l n", l=chunk)

    # 1. within each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(a_cum_i - a_cum_j) xd_j
    weights = (C @ B.transpose(-1, -2)) * _decay_matrix(a_cum)    # (b, h, c, l, l)
    y = weights @ xd                                              # (b, h, c, l, p)

    # 2. state each chunk ends with, from its own inputs only: (b, h, c, n, p)
    to_end = torch.exp(a_cum[..., -1:] - a_cum)[..., None]        # (b, h, c, l, 1)
    states = B.transpose(-1, -2) @ (xd * to_end)

    # 3. state entering chunk c = sum over earlier chunks j of their end state, decayed from the
    #    end of j to the start of c: a scan over chunks done as one masked (c x c) matrix
    ending = torch.cumsum(a_cum[..., -1], dim=-1)                  # (b, h, c) log-decay to chunk end
    entering = F.pad(ending, (1, 0))[..., :-1]                    # ... to chunk start
    n_chunks = ending.shape[-1]
    not_before = torch.ones(n_chunks, n_chunks, dtype=torch.bool, device=x.device).triu(0)
    carry = torch.exp((entering[..., :, None] - ending[..., None, :]).masked_fill(not_before, float("-inf")))
    carried = torch.einsum("bhcj,bhjnp->bhcnp", carry, states)

    # 4. the carried state, decayed to each position and read out by C
    y = y + (C @ carried) * torch.exp(a_cum)[..., None]
    y = rearrange(y, "b h c l p -> b (c l) h p")[:, :length]
    return y.to(out_dtype)


def selective_scan_reference(x, dt, A, B, C):
    """Sequential loop over positions; the ground truth for tests. Same shapes as `selective_scan`."""
    b, length, h, p = x.shape
    A = A if A.ndim == 2 else A.expand(b, h)
    state = x.new_zeros(b, h, p, B.shape[-1])
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]                          # (b, h, 1, 1)
        inp = (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, None, None, :]    # (b, h, p, n)
        state = decay * state + inp
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1)
