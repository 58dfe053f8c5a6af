"""The attention product: written out on the CPU in reduced precision, fused elsewhere; the same numbers."""
import pytest
import torch
import torch.nn.functional as F

from weather_restore.models.attention import attention, use_fused
from weather_restore.models.cwp import PriorCrossAttention
from weather_restore.models.window_attention import WindowAttention


def _qkv(shape_q, keys, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g)
    k = torch.randn(*shape_q[:-2], keys, shape_q[-1], generator=g)
    v = torch.randn(*shape_q[:-2], keys, shape_q[-1], generator=g)
    return [t.to(dtype).requires_grad_() for t in (q, k, v)]


def test_which_path_runs():
    assert use_fused(torch.zeros(1, dtype=torch.float32))
    assert not use_fused(torch.zeros(1, dtype=torch.bfloat16))
    assert not use_fused(torch.zeros(1, dtype=torch.float16))


@pytest.mark.parametrize("masked", [False, True])
def test_written_out_product_equals_the_fused_kernel_with_gradients(masked):
    """bf16 on the CPU takes the written-out path: its output and gradients match the fused kernel run
    in float32 on the same bf16 values to bf16 rounding, masked keys included."""
    q, k, v = _qkv((3, 2, 16, 8), 16, torch.bfloat16)
    mask = None
    if masked:
        mask = torch.ones(3, 1, 1, 16, dtype=torch.bool)
        mask[0, ..., 10:] = False                          # the padded keys of one window
    out = attention(q, k, v, mask)
    (out.float() * torch.linspace(-1, 1, 8)).sum().backward()
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q32, k32, v32, attn_mask=mask)
    (ref * torch.linspace(-1, 1, 8)).sum().backward()
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
    assert (out.float() - ref).abs().max() < 0.03
    for got, want in ((q.grad, q32.grad), (k.grad, k32.grad), (v.grad, v32.grad)):
        assert (got.float() - want).abs().max() < 0.03 * want.abs().max() + 1e-3
    if masked:                                             # a masked key gets no gradient at all
        assert k.grad[0, :, 10:].abs().max() == 0 and v.grad[0, :, 10:].abs().max() == 0


def test_float32_runs_the_fused_kernel_exactly():
    q, k, v = _qkv((2, 2, 10, 4), 6, torch.float32)
    assert torch.equal(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))


def test_modules_agree_in_bf16_and_float32():
    """Window attention on a padded map and CWP cross-attention: bf16 (written out) within bf16 rounding
    of float32 (fused)."""
    torch.manual_seed(0)
    win, cross = WindowAttention(dim=8, head_dim=4, window=4), PriorCrossAttention(8, 8, 4)
    x, tokens = torch.randn(2, 8, 10, 7), torch.randn(2, 5, 8)
    want_w, want_c = win(x), cross(x, tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_w, got_c = win(x), cross(x, tokens)
    assert got_w.dtype == torch.bfloat16
    for got, want in ((got_w, want_w), (got_c, want_c)):
        assert (got.float() - want).abs().max() < 0.05 * want.abs().max()
