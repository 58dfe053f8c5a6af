"""Building blocks: the chunked selective scan against a sequential loop, window attention padding."""
import pytest
import torch

from weather_restore.models import global_scan
from weather_restore.models.global_scan import DIRECTIONS, GlobalScan, from_sequences, to_sequences
from weather_restore.models.selective_scan import selective_scan, selective_scan_reference
from weather_restore.models.window_attention import WindowAttention


def _random_scan_inputs(b, length, h, p, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, h, p, generator=g)
    dt = torch.nn.functional.softplus(torch.randn(b, length, h, generator=g))
    A = -torch.rand(h, generator=g) * 2 - 0.05
    B = torch.randn(b, length, n, generator=g)
    C = torch.randn(b, length, n, generator=g)
    return x, dt, A, B, C


@pytest.mark.parametrize("length,chunk", [(1, 4), (7, 4), (16, 16), (37, 8), (50, 64)])
def test_chunked_scan_equals_sequential(length, chunk):
    x, dt, A, B, C = _random_scan_inputs(2, length, 3, 4, 5, seed=length)
    fast = selective_scan(x, dt, A, B, C, chunk)
    slow = selective_scan_reference(x, dt, A, B, C)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_chunked_scan_per_sequence_decay():
    x, dt, _, B, C = _random_scan_inputs(4, 23, 2, 3, 4)
    A = -torch.rand(4, 2) - 0.1
    torch.testing.assert_close(selective_scan(x, dt, A, B, C, 8), selective_scan_reference(x, dt, A, B, C),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_scan_in_every_direction_equals_sequential(direction):
    """Each direction: image -> sequences -> chunked scan -> image equals the sequential loop, and
    the first element of each sequence is the pixel the direction starts from."""
    g = torch.Generator().manual_seed(3)
    img = torch.randn(2, 6, 9, 13, generator=g)                  # (B, C, H, W), C = heads * p
    seq = to_sequences(img, direction)
    torch.testing.assert_close(from_sequences(seq, direction, 2, 9, 13), img)
    start = {"left_to_right": img[0, :, 0, 0], "right_to_left": img[0, :, 0, -1],
             "top_to_bottom": img[0, :, 0, 0], "bottom_to_top": img[0, :, -1, 0]}[direction]
    torch.testing.assert_close(seq[0, 0], start)
    r, length, _ = seq.shape
    x = seq.reshape(r, length, 2, 3)
    dt = torch.nn.functional.softplus(torch.randn(r, length, 2, generator=g))
    B, C = torch.randn(r, length, 4, generator=g), torch.randn(r, length, 4, generator=g)
    A = -torch.rand(2, generator=g) - 0.1
    torch.testing.assert_close(selective_scan(x, dt, A, B, C, 4), selective_scan_reference(x, dt, A, B, C),
                               atol=1e-5, rtol=1e-5)


def test_global_scan_module_equals_sequential_version(monkeypatch):
    torch.manual_seed(0)
    block = GlobalScan(dim=8, head_dim=4, state=4, chunk=4)
    x = torch.randn(2, 8, 7, 10)
    with torch.no_grad():
        fast = block(x)
        monkeypatch.setattr(global_scan, "selective_scan",
                            lambda x, dt, A, B, C, chunk: selective_scan_reference(x, dt, A, B, C))
        slow = block(x)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_window_attention_padding_is_masked():
    """A 3x3 map in a 4x4 window (7 padded keys masked) equals exact 3x3-window attention."""
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, head_dim=4, window=4)
    x = torch.randn(2, 8, 3, 3)
    with torch.no_grad():
        padded = attn(x)
        attn.window = 3
        exact = attn(x)
    torch.testing.assert_close(padded, exact, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hw", [(5, 5), (13, 11), (8, 8)])
def test_window_attention_any_size(hw):
    attn = WindowAttention(dim=8, head_dim=4, window=4)
    out = attn(torch.randn(1, 8, *hw))
    assert out.shape == (1, 8, *hw) and torch.isfinite(out).all()
