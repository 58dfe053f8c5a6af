"""ComfyUI V3 nodes of the pack: thin adapters over `pipeline/` and `models/`.

The only package that imports ComfyUI (`comfy*`, `folder_paths`, `comfy_api`). The pack's root
`__init__.py` hands `WeatherExtension` to ComfyUI through `comfy_entrypoint`.
"""
import logging
import shutil
from pathlib import Path

from comfy_api.latest import ComfyExtension, io

from . import paths
from .density_map import DensityMap
from .load_model import LoadWeatherModel
from .quality import QualityPerceiver
from .restore import Restore
from .weather_prior import ClipWeatherPrior

log = logging.getLogger(__name__)

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample_rain.png"

paths.register_folders()


def copy_sample_image() -> None:
    """Put the bundled sample into ComfyUI's input folder once, so the example workflows open ready to run."""
    try:
        import folder_paths
        target = Path(folder_paths.get_input_directory()) / SAMPLE.name
        if SAMPLE.is_file() and not target.exists():
            shutil.copyfile(SAMPLE, target)
            log.info("copied the sample image to %s for the example workflows", target)
    except OSError as e:
        log.debug("sample image not copied: %s", e)


class WeatherExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        copy_sample_image()                     # here, not in on_load: ComfyUI (0.3.6x) never calls on_load
        return [LoadWeatherModel, ClipWeatherPrior, DensityMap, Restore, QualityPerceiver]
