"""ComfyUI weather restoration: remove rain streaks, raindrops, snow and haze, guided by CLIP.

ComfyUI imports this folder as a package and calls `comfy_entrypoint` (V3 node API). Nothing
ComfyUI-specific is imported at module level, so the pack also imports outside ComfyUI
(tests, the `weather.py` command line).
"""

__version__ = "0.1.0"
WEB_DIRECTORY = "./web"                         # web/weather_restore.js: Quality Perceiver's score on the node


async def comfy_entrypoint():
    from .nodes import WeatherExtension
    return WeatherExtension()
