"""The logic behind the ComfyUI nodes, without ComfyUI: layouts, mask checks, region blending,
signal sources, tiled restoration with out-of-memory fallback, weights and precision choices.

`nodes/` only adapts these functions to ComfyUI (types, devices, progress bar, interrupts), so
everything here is tested on CPU with no ComfyUI installed.
"""
