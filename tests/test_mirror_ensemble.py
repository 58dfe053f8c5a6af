"""The mirror ensemble: each tile restored as it is and mirrored left-right (then mirrored back), the
two averaged, with one set of signals (the image's own, computed once) for both views."""
from types import SimpleNamespace

import torch
import torch.nn as nn

from weather_restore.models.tiling import MIRROR_VIEWS, global_signals, restore_image
from weather_restore.pipeline.restore import restore_batch


class MirrorMean(nn.Module):
    """The ensemble written out: a network whose output is the mean of `net` on the image and its mirror."""

    def __init__(self, net):
        super().__init__()
        self.net, self.cfg = net, net.cfg

    def forward(self, x, prior=None, density=None):
        as_is = self.net(x, prior=prior, density=density).image
        mirrored = self.net(x.flip(-1), prior=prior, density=None if density is None else density.flip(-1)).image
        return SimpleNamespace(image=(as_is + mirrored.flip(-1)) / 2)


def test_the_ensemble_is_the_mean_of_the_image_and_its_mirror(tiny_model):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 40, 56)
    prior, density = global_signals(tiny_model, x)
    with torch.no_grad():
        plain = restore_image(tiny_model, x)
        ens = restore_image(tiny_model, x, mirror_ensemble=True)          # one tile: signals computed first
        expected = MirrorMean(tiny_model)(x, prior, density).image.clamp(0, 1)
    torch.testing.assert_close(ens, expected, atol=1e-6, rtol=0)
    assert (ens - plain).abs().max() > 1e-3                             # a random net is not mirror-symmetric
    assert MIRROR_VIEWS == ((), (-1,))                                 # never upside-down (haze)


def test_tiles_are_mirrored_one_by_one_with_their_density_crops(tiny_model):
    """Tiled: every tile (and its density crop) is mirrored on its own, then the tiles are blended as usual."""
    torch.manual_seed(1)
    x = torch.rand(2, 3, 48, 72)
    prior = torch.rand(2, 4)
    density = torch.linspace(0, 1, 72).expand(2, 1, 48, 72).contiguous()   # not mirror-symmetric
    with torch.no_grad():
        ens = restore_image(tiny_model, x, prior, density, tile=32, overlap=8, mirror_ensemble=True)
        expected = restore_image(MirrorMean(tiny_model), x, prior, density, tile=32, overlap=8)
        single = restore_image(tiny_model, x, prior, density, tile=32, overlap=8)
    torch.testing.assert_close(ens, expected, atol=1e-6, rtol=0)
    assert (ens - single).abs().max() > 1e-3


def test_restore_batch_ensemble_computes_the_signals_once_then_the_tile(tiny_model):
    """Even an image of one tile gets its signals first, so both views use the same ones."""
    x = torch.rand(1, 3, 40, 40)
    seen = []
    with torch.no_grad():
        y = restore_batch(tiny_model, x, mirror_ensemble=True, on_progress=lambda d, t: seen.append((d, t)))
        plain = restore_batch(tiny_model, x, on_progress=lambda d, t: None)
        expected = restore_image(tiny_model, x, mirror_ensemble=True)
    torch.testing.assert_close(y, expected)
    assert (y - plain).abs().max() > 1e-3
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)                     # one signal call, then the one tile
