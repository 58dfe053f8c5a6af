#!/usr/bin/env python
"""Command line of the weather-restoration pack, usable without ComfyUI.

    python weather.py restore photo.jpg            restore files / folders / globs
    python weather.py <command> --help             restore, train, evaluate, export, bench, synth-sheet, ...

The pack is a ComfyUI custom-node folder whose modules import each other relatively, so this
launcher registers the folder as the package `weather_restore` (as ComfyUI does with its own
name) and then hands over to `cli/main.py`.
"""
import importlib.util
import sys
from pathlib import Path

PACK_NAME = "weather_restore"
ROOT = Path(__file__).resolve().parent


def load_pack():
    """Import this folder as the package `weather_restore` (idempotent) and return it."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    load_pack()
    from weather_restore.cli.main import main
    sys.exit(main())
