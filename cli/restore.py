"""`python weather.py restore`: remove rain, snow and haze from image files, folders or globs.

    python weather.py restore assets/sample_rain.png                 -> assets/sample_rain_restored.png
    python weather.py restore photos/ "shots/*.jpg" --out restored/ --save-density --save-prior
    python weather.py restore photo.jpg --region mask.png --feather 24    (only where the mask is white)
    python weather.py restore misty_rain.jpg --weather haze=0            (remove the rain, keep the mist)
    python weather.py restore big_photo.jpg --weather-scale 3            (streaks several pixels wide)

The same service as the Restore node (pipeline.restore.restore_batch): learned signals at the fixed
analysis size, tiles with feathered overlap (memory is bounded by the tile, plus a few float copies
of the image itself), a smaller tile tried on out-of-memory, strength in [0, 1], an optional region
mask, and a refusal of NaN / infinite outputs. Any mode (gray, alpha kept, 16-bit PNG), EXIF
orientation applied. Results go to --out or next to each input as `<name>_restored.<ext>` in the
input's format; an input is never replaced, nor any file this pack did not write (cli/inputs.py).
Output folders are checked before the model loads. A file that cannot be read or restored is reported
and the batch goes on; the exit code is 1 when any input failed, 0 otherwise, 130 on Ctrl-C (after a
summary; every file is written whole or not at all, so none is left half-written).
"""
import argparse
import logging
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..models.device import empty_cache
from ..models.signals import WEATHER_TYPES
from ..models.weights_io import WeightsError
from ..pipeline.layout import InputError
from ..pipeline.memory import MIN_TILE
from ..pipeline.coarse import check_weather_scale
from ..pipeline.restore import restore_batch, check_restore_args
from ..pipeline.signals import apply_overrides, learned_prior_density, parse_weather
from ..imagefiles.image_io import ImageData, output_format, read_image, write_gray8, write_image, write_json
from .inputs import OutputExists, OutputPlanner, collect_inputs, folder_problem
from .model_loading import add_ensemble_argument, add_keep_brightness_argument, add_model_arguments, add_weather_scale_argument, add_tile_arguments, apply_threads, describe, load_model

log = logging.getLogger(__name__)


def add_parser(sub):
    p = sub.add_parser("restore", help="restore image files, folders or globs",
                       description="Remove rain, snow and haze from image files, folders or glob patterns. "
                                   "Results go to --out DIR or next to each input as <name>_restored.<ext>, "
                                   "in the input's format; inputs are never replaced.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted glob patterns")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (created); default: next to each input")
    p.add_argument("--recursive", action="store_true", help="look into subfolders of folder inputs")
    add_model_arguments(p)
    add_tile_arguments(p)
    add_ensemble_argument(p)
    add_weather_scale_argument(p)
    add_keep_brightness_argument(p)
    p.add_argument("--strength", type=float, default=1.0,
                   help="0 = input, 1 = full restoration (default), between: a blend")
    p.add_argument("--region", type=Path, default=None, metavar="MASK",
                   help="restore only where this gray image is white (same size or aspect ratio as the inputs)")
    p.add_argument("--feather", type=int, default=16, help="softness of the --region edge in pixels (default 16)")
    p.add_argument("--weather", type=_weather_values, default={}, metavar="TYPE=VALUE,...",
                   help="set weather types by hand, in [0, 1], instead of the learned estimate (as CLIP Weather "
                        "Prior's manual inputs): e.g. haze=0 removes rain but keeps mist and its brightness; "
                        "types: rain (rain_streaks), raindrops, snow, haze")
    p.add_argument("--save-density", action="store_true", help="also write <name>_density.png (8-bit gray)")
    p.add_argument("--save-prior", action="store_true", help="also write <name>_prior.json (weather types)")
    p.add_argument("--suffix", default="_restored", help="added to each output name (default _restored)")
    p.add_argument("--overwrite-outputs", action="store_true",
                   help="replace earlier outputs of this command (inputs and other files are never replaced)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _weather_values(text: str) -> dict:
    try:
        return parse_weather(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _check_args(args) -> Optional[str]:
    try:
        check_restore_args(args.strength, args.tile, args.overlap, MIN_TILE)
    except InputError as e:
        return f"--strength {args.strength} --tile {args.tile} --overlap {args.overlap}: {e}"
    try:
        check_weather_scale(args.weather_scale)
    except InputError as e:
        return f"--weather-scale {args.weather_scale}: {e}"
    if args.feather < 0:
        return f"--feather {args.feather}: must be 0 or more pixels"
    if not args.suffix and args.out is None:
        return "--suffix '' writes next to the inputs with their own names; give a suffix or --out DIR"
    return None


def read_region(path: Path) -> torch.Tensor:
    """A mask image -> (1, H, W) in [0, 1]: its gray level (white = restore)."""
    return read_image(path).to_tensor().mean(dim=1)            # (1, 3, H, W) -> (1, H, W)


def restore_file(model, src: Path, planner: OutputPlanner, args, tile_bar=None, region=None) -> Path:
    """Restore one file and write its outputs; returns the restored image's path."""
    img: ImageData = read_image(src)
    fmt, suffix = output_format(img, src.suffix)
    out_path = planner.path(src, args.suffix, suffix)
    density_path = planner.path(src, "_density", ".png") if args.save_density else None
    prior_path = planner.path(src, "_prior", ".json") if args.save_prior else None

    def on_progress(done, total):
        if tile_bar is not None:
            tile_bar.total = total
            tile_bar.update(done - tile_bar.n)

    if tile_bar is not None:
        tile_bar.reset()
    device = next(model.parameters()).device
    x = img.to_tensor()                                                # (1, 3, H, W) in [0, 1]
    prior = density = None
    manual = args.weather
    if args.save_density or args.save_prior or manual:                 # the signals the restoration uses
        prior, density = learned_prior_density(model, x, on_oom=lambda t: empty_cache(device))
        prior, _ = apply_overrides(prior, manual)
    y = restore_batch(model, x, prior=prior, density=None if density is None else density[:, 0], region=region,
                      strength=args.strength, tile=args.tile, overlap=args.overlap, feather=args.feather,
                      on_progress=on_progress, on_oom=lambda t: empty_cache(device), mirror_ensemble=args.mirror_ensemble,
                      weather_scale=args.weather_scale, keep_brightness=args.keep_brightness)
    del x
    write_image(out_path, img.with_tensor(y), fmt)
    if density_path is not None:
        write_gray8(density_path, density)
    if prior_path is not None:
        values = {k: round(float(v), 4) for k, v in zip(WEATHER_TYPES, prior[0].tolist())}
        write_json(prior_path, {"image": src.name, "source": "learned+manual" if manual else "learned",
                                "weather": values})
    return out_path


def run(args) -> int:
    problem = _check_args(args)
    if problem:
        log.error(problem)
        return 2
    files, failures = collect_inputs(args.inputs, args.recursive, (args.suffix, "_density"))
    for msg in failures:
        log.error(msg)
    if not files:
        log.error("nothing to restore")
        return 1
    for folder in [args.out] if args.out is not None else dict.fromkeys(p.parent for p in files):
        problem = folder_problem(folder)                            # before any work, not once per image
        if problem:
            log.error("%s; give --out a folder you can write to", problem)
            return 2
    try:
        apply_threads(args.threads)
        model, choice = load_model(args.weights, args.device, args.precision)
        region = None if args.region is None else read_region(args.region)
    except (WeightsError, ValueError) as e:
        log.error("%s", e)
        return 1
    log.info("model %s", describe(model, choice))
    planner = OutputPlanner(args.out, files, args.overwrite_outputs)
    done, skipped, i = [], [], 0
    quiet = args.no_progress or None                                   # None: bars on a terminal only
    try:
        with tqdm(files, unit="image", disable=quiet, dynamic_ncols=True) as bar, \
                tqdm(unit="tile", leave=False, disable=quiet, dynamic_ncols=True) as tile_bar:
            for i, src in enumerate(bar):
                bar.set_postfix_str(src.name)
                try:
                    out = restore_file(model, src, planner, args, tile_bar, region)
                    done.append(out)
                    log.debug("%s -> %s", src, out)
                except OutputExists as e:
                    skipped.append(src)
                    log.warning("%s: skipped, %s", src, e)
                except Exception as e:                                 # report it, go on with the batch
                    failures.append(f"{src}: {e}")
                    log.error("%s", e if str(src) in str(e) else f"{src}: {type(e).__name__}: {e}")
                    log.debug("traceback of %s", src, exc_info=True)
    except KeyboardInterrupt:               # Ctrl-C: a summary, no traceback; _atomic removed any temp file
        rest = files[i:]
        print(f"interrupted: restored {len(done)} of {len(files)} image(s); not restored: {rest[0]}"
              + (f" and {len(rest) - 1} more" if len(rest) > 1 else "")
              + "; no partial file was left (files are written whole or not at all)")
        return 130
    print(f"restored {len(done)} image(s)" + (f" into {args.out}" if args.out else "")
          + (f", skipped {len(skipped)} with existing outputs" if skipped else "")
          + (f", {len(failures)} problem(s)" if failures else ""))
    for out in done[:20]:
        print(f"  {out}")
    return 1 if failures else 0
