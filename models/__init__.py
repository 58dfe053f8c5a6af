"""Pure-PyTorch restorer: no ComfyUI, no network. Everything else in the pack builds on this."""
from .config import RestorerConfig, load_config, list_configs
from .restorer import WeatherRestorer, RestorerOutput
from .signals import WEATHER_TYPES, QUALITY_TIERS

__all__ = [
    "RestorerConfig", "load_config", "list_configs",
    "WeatherRestorer", "RestorerOutput", "WEATHER_TYPES", "QUALITY_TIERS",
]
