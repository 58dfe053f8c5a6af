"""Non-local contrastive learning on unpaired real rain (NLCL, Ye et al., CVPR 2022,
"Unsupervised Deraining: Where Contrastive Learning Meets Self-similarity").

For a real rainy crop x the restorer's output y is the clean layer and r = x - y the rain layer.
    anchors    A patches of the clean layer, at random grid cells
    positives  for each anchor, its k most self-similar clean-layer patches (pixel distance on
               y, detached) inside a search window around it, itself excluded: non-local
               self-similarity, which rain breaks and clean texture keeps
    negatives  M rain-layer patches of the same image
    embedding  the SAR encoder's features at one level, average-pooled over each patch, L2-normalised
    loss       InfoNCE with several positives: -log(sum_pos e^{s/t} / (sum_pos e^{s/t} + sum_neg e^{s/t}))
Differences from the paper: the embedding is the restorer's own encoder (by default its EMA copy,
frozen, so the loss can only be lowered by changing y, never by collapsing the features) instead
of a separate encoder with a projection head; and the stage is mixed with the paired synthetic
loss (weight `paired_weight`) so the synthetic-benchmark scores do not fall.
"""
import torch
import torch.nn.functional as F

from ..models.restorer import WeatherRestorer, pad_to_multiple
from .data import generator_for
from .real_rain import RealRainCrops
from .train_config import resolve_path


def patch_embeddings(model: WeatherRestorer, x: torch.Tensor, level: int, patch: int) -> torch.Tensor:
    """(N, 3, H, W) -> (N, L, C) unit vectors, one per patch of a non-overlapping patch grid."""
    feats, _ = model.encode(pad_to_multiple(x, model.cfg.stride))
    f = feats[level]
    k = patch // 2 ** level
    gh, gw = x.shape[-2] // patch, x.shape[-1] // patch
    f = F.avg_pool2d(f[..., :gh * k, :gw * k], k)                         # (N, C, gh, gw)
    return F.normalize(f.flatten(2).transpose(1, 2), dim=-1)              # (N, L, C)


def self_similar_positives(clean: torch.Tensor, patch: int, anchors: torch.Tensor, window: int,
                           k: int) -> torch.Tensor:
    """For anchor cells (N, A) of the patch grid of `clean` (N, 3, H, W), the k cells (N, A, k) whose
    pixel patches are closest to the anchor's, within `window` pixels (Chebyshev), anchor excluded."""
    N, _, H, W = clean.shape
    gh, gw = H // patch, W // patch
    P = F.unfold(clean[..., :gh * patch, :gw * patch], patch, stride=patch).transpose(1, 2)  # (N, L, 3 p p)
    Pa = torch.gather(P, 1, anchors[..., None].expand(-1, -1, P.shape[-1]))                 # (N, A, 3 p p)
    dist = torch.cdist(Pa, P)                                                               # (N, A, L)
    cells = torch.arange(gh * gw, device=clean.device)
    cy, cx = cells // gw, cells % gw                                                        # (L,)
    ay, ax = anchors // gw, anchors % gw                                                    # (N, A)
    r = max(1, window // patch)
    near = ((cy[None, None] - ay[..., None]).abs() <= r) & ((cx[None, None] - ax[..., None]).abs() <= r)
    near &= cells[None, None] != anchors[..., None]
    dist = dist.masked_fill(~near, float("inf"))
    k = min(k, int(near.sum(-1).min()))
    return dist.topk(k, dim=-1, largest=False).indices


def nlcl_loss(encoder: WeatherRestorer, rainy: torch.Tensor, restored: torch.Tensor, opts: dict,
              g: torch.Generator) -> torch.Tensor:
    """The non-local contrastive loss of one batch of real rainy crops and their restorations."""
    p, level = int(opts["patch"]), int(opts["level"])
    if p % 2 ** level:
        raise ValueError(f"nlcl.patch={p} must be a multiple of 2**nlcl.level={2 ** level}")
    clean, rain = restored, rainy - restored                                # clean and rain layers
    N, _, H, W = clean.shape
    L = (H // p) * (W // p)
    if L < 4:
        raise ValueError(f"nlcl.crop={H}x{W} holds only {L} patches of {p} px; use a larger crop or smaller patch")
    A, M = min(int(opts["anchors"]), L), int(opts["negatives"])
    anchors = torch.stack([torch.randperm(L, generator=g)[:A] for _ in range(N)]).to(clean.device)  # (N, A)
    pos_idx = self_similar_positives(clean.detach(), p, anchors, int(opts["window"]), int(opts["positives"]))
    neg_idx = torch.randint(0, L, (N, A * M), generator=g).to(clean.device)

    fc = patch_embeddings(encoder, clean, level, p)                                  # (N, L, C)
    fr = patch_embeddings(encoder, rain.clamp(-1, 1), level, p)                      # (N, L, C)
    C = fc.shape[-1]
    q = torch.gather(fc, 1, anchors[..., None].expand(-1, -1, C))                   # (N, A, C)
    kp = torch.gather(fc, 1, pos_idx.flatten(1)[..., None].expand(-1, -1, C)).view(N, A, -1, C)
    kn = torch.gather(fr, 1, neg_idx[..., None].expand(-1, -1, C)).view(N, A, M, C)
    return info_nce(q, kp, kn, float(opts["temperature"]))


def lowpass_fidelity(rainy: torch.Tensor, restored: torch.Tensor, block: int) -> torch.Tensor:
    """Mean L1 between the block x block means of real rainy crops and of their restorations.
    Streaks are thin, so removing them moves a block's mean by little; what this term stops is
    the whole photo turning darker or tinted (a shift every block shares), which NLCL does not see."""
    if min(rainy.shape[-2:]) < block:
        raise ValueError(f"nlcl.lowpass_block={block} is larger than nlcl.crop={tuple(rainy.shape[-2:])}")
    return (F.avg_pool2d(restored, block) - F.avg_pool2d(rainy, block)).abs().mean()


def info_nce(q: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, temperature: float) -> torch.Tensor:
    """q (N, A, C), pos (N, A, k, C), neg (N, A, M, C), unit vectors -> mean over anchors of
    -log(sum_pos e^{q.k/t} / (sum_pos e^{q.k/t} + sum_neg e^{q.k/t}))."""
    s_pos = torch.einsum("nac,nakc->nak", q, pos) / temperature                    # (N, A, k)
    s_neg = torch.einsum("nac,namc->nam", q, neg) / temperature                    # (N, A, M)
    return (torch.logsumexp(torch.cat([s_pos, s_neg], -1), -1) - torch.logsumexp(s_pos, -1)).mean()


class NLCLStage:
    """Draws the real rainy crops of each step and computes the NLCL loss for the trainer."""

    def __init__(self, opts: dict, seed: int, rank: int = 0, world: int = 1, crops: RealRainCrops = None):
        self.opts, self.seed, self.rank = opts, seed, rank
        self.crops = crops if crops is not None else RealRainCrops(resolve_path(opts["real_root"]), opts["crop"], seed)
        if opts.get("encoder", "ema") not in ("ema", "shared"):
            raise ValueError(f"nlcl.encoder must be 'ema' or 'shared'; got {opts.get('encoder')!r}")

    def batch(self, step: int, device) -> torch.Tensor:
        return self.crops.batch_at(step, int(self.opts["batch"]), self.rank).to(device)

    def loss(self, rainy: torch.Tensor, restored: torch.Tensor, student: WeatherRestorer,
             ema: WeatherRestorer, step: int) -> dict:
        """The stage's weighted losses on real rain: {"nlcl": ...} and, when weighted, {"lowpass": ...}."""
        encoder = ema if self.opts.get("encoder", "ema") == "ema" else student
        parts = {"nlcl": float(self.opts["weight"]) * nlcl_loss(
            encoder, rainy, restored, self.opts, generator_for(self.seed, step, self.rank, 6))}
        if self.opts["lowpass_weight"]:
            parts["lowpass"] = float(self.opts["lowpass_weight"]) * lowpass_fidelity(
                rainy, restored, int(self.opts["lowpass_block"]))
        return parts
