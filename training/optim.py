"""AdamW with linear warm-up then cosine decay (the usual restoration recipe, e.g. Restormer / NAFNet).

Weight decay applies to convolution / linear weights only, not to biases, norms or learned tokens.
"""
import math

import torch


def cosine_lr(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the base learning rate at `step` (0-based): linear warm-up over `warmup`
    steps, then cosine decay from 1 to `min_ratio` at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and not name.endswith("tokens") else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))


def build_scheduler(opt: torch.optim.Optimizer, total: int, warmup: int, min_ratio: float):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(s, total, warmup, min_ratio))
