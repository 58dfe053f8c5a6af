"""Exponential moving average of the weights; the EMA copy is what `export` ships.

    ema <- d * ema + (1 - d) * param,   d = min(decay, (1 + n) / (10 + n)) with warm-up
Buffers are copied as they are. The EMA model is a full WeatherRestorer in eval mode, so it also
serves as the `ema` teacher of soft residual distillation.
"""
import copy

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float = 0.999, warmup: bool = True):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        src = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src[k].detach().to(v.dtype), alpha=1 - d)
            else:
                v.copy_(src[k])

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"], strict=True)
        self.updates = int(state["updates"])
