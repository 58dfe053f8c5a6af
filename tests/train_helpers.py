"""A tiny in-memory stand-in for the weather synthesizer, and a tiny train config, for the trainer tests."""
import torch

from weather_restore.training.train_config import TrainConfig


class FakeWeather(torch.utils.data.Dataset):
    """Deterministic (weathered, clean, labels) items: clean = smooth random colours, weathered =
    clean + bright vertical streaks where density is 1 (prior says rain_streaks)."""

    def __init__(self, n: int = 4, crop: int = 32, seed: int = 0):
        self.n, self.crop, self.seed, self.epoch = n, crop, seed, 0

    def set_epoch(self, e: int) -> None:
        self.epoch = e

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1000 + i)
        c = self.crop
        clean = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(c, c),
                                                mode="bilinear", align_corners=False)[0]
        density = torch.zeros(1, c, c)
        cols = torch.randperm(c, generator=g)[: c // 6]
        density[..., cols] = 1.0
        weathered = (clean + 0.6 * density).clamp(0, 1)
        return {"weathered": weathered, "clean": clean, "density": density,
                "prior": torch.tensor([1.0, 0.0, 0.0, 0.0]), "severity": torch.tensor(0.6), "recipe_index": 1}


def tiny_train_config(**over) -> TrainConfig:
    base = dict(name="test", model="tiny", crop=32, batch=2, lr=2e-3, steps=8, warmup=1, ema_decay=0.9,
                seed=0, threads=1, ckpt_every_steps=2, ckpt_every_minutes=60, log_every=1,
                loss={"difficulty_start": 0})
    base.update(over)
    return TrainConfig(**base)
