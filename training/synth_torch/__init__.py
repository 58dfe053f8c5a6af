"""The weather synthesizer as batched torch ops on the training device (training/synth/ is the
numpy reference: the same recipes and labels, kept for tests and contact sheets). Crops come from
CleanCrops (the numpy dataset's crops, without weather); `TorchWeather` makes a step's weather."""
from .compose import synthesize_batch
from .crops import CleanCrops, TorchWeather

__all__ = ["synthesize_batch", "CleanCrops", "TorchWeather"]
