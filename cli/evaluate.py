"""`python weather.py evaluate`: score weights on a paired folder, beside the input-vs-target row.

    python weather.py evaluate --weights FILE.safetensors --data ../shared/data/eval/rain100L
        [--out results.json] [--tile 512 --overlap 64] [--device auto] [--precision fp32] [--limit N]
    python weather.py evaluate --weights none --data ../shared/data/eval/hsts     (input row only)

--precision defaults to fp32, the precision of the manifest's scores; `auto` scores what restore's own
default computes (bf16 convolutions on a CPU with native bf16, fp16 on most GPUs).

--out is checked before any work: it may be a new file or a JSON report of this command (replaced
atomically), never a folder or any other file.
"""
import argparse
import logging
from pathlib import Path

from ..evaluation import evaluate_folder, markdown_table
from ..hub.manifest import MANIFEST_PATH, sha256_file
from ..imagefiles.image_io import write_json
from ..models.weights_io import WeightsError
from ..pipeline.precision import PRECISIONS
from .inputs import folder_problem, output_problem
from .model_loading import add_ensemble_argument, add_keep_brightness_argument, add_weather_scale_argument, add_tile_arguments, dtype_name, load_model

log = logging.getLogger(__name__)


def load_for_scoring(spec: str, device: str = "auto", manifest_path: Path = MANIFEST_PATH, precision: str = "fp32"):
    """--weights (a file or a manifest id) -> (model in `precision`, info for the result JSON), loaded
    as `restore` loads it (cli.model_loading.load_model: verified, precision and autocast chosen alike)."""
    if not Path(spec).expanduser().is_file() and (spec.endswith(".safetensors") or "/" in spec):
        raise WeightsError(f"weights file not found: {spec}; give a .safetensors file, a manifest id, or --weights none")
    model, choice = load_model(spec, device, precision, manifest_path)
    path, entry, dev = choice.path, choice.entry, next(model.parameters()).device
    if entry is None:
        log.info("%s is not in %s; scoring it unverified", path.name, Path(manifest_path).name)
    else:
        log.info("%s verified against manifest entry '%s'", path.name, entry["id"])
    info = {"sha256": entry["sha256"] if entry and entry.get("sha256") else sha256_file(path),
            "manifest_id": entry["id"] if entry else None, "weights": str(path), "config": model.cfg.name,
            "device": str(dev), "precision": precision,
            "computes_in": dtype_name(model.autocast_dtype or next(model.parameters()).dtype)}
    return model, path.stem, info


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score weights on a paired folder (Y-PSNR, Y-SSIM, RGB-PSNR)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True,
                   help="restorer .safetensors file or manifest id, or 'none' for the input row only")
    p.add_argument("--data", type=Path, help="paired folder (input/target, hazy/gt, ...)")
    p.add_argument("--input-dir", help="degraded images (absolute, or relative to --data)")
    p.add_argument("--target-dir", help="clean images (absolute, or relative to --data)")
    p.add_argument("--out", type=Path, help="write the full result (rows and per-image scores) as JSON here "
                                            "(a new file, or a report of this command)")
    add_tile_arguments(p)
    add_ensemble_argument(p)
    add_weather_scale_argument(p)
    add_keep_brightness_argument(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="fp32 (default: the manifest's scores) or auto / fp16 / bf16, chosen as restore chooses them")
    p.add_argument("--limit", type=int, help="score only the first N pairs (natural file order)")
    p.set_defaults(run=run)


def run(args) -> int:
    try:
        return _run(args)
    except (FileNotFoundError, ValueError, WeightsError) as e:      # messages name the input and the fix
        raise SystemExit(f"evaluate: {e}") from e


def _run(args) -> int:
    if args.data is None and (args.input_dir is None or args.target_dir is None):
        raise SystemExit("evaluate: give --data FOLDER, or both --input-dir and --target-dir")
    if args.out is not None:
        problem = output_problem(args.out) or folder_problem(args.out.parent)
        if problem:
            raise SystemExit(f"evaluate: --out {args.out}: {problem}; give a new file name such as results.json")
    model, name, info = None, None, {}
    if args.weights.lower() != "none":
        model, name, info = load_for_scoring(args.weights, args.device, precision=args.precision)
    result = evaluate_folder(model, args.data, args.input_dir, args.target_dir, tile=args.tile,
                             overlap=args.overlap, limit=args.limit, name=name, mirror_ensemble=args.mirror_ensemble,
                             weather_scale=args.weather_scale, keep_brightness=args.keep_brightness)
    result.update(info)
    print(f"{result['count']} pairs from {result['input_dir']} vs {result['target_dir']}")
    print(markdown_table(result))
    print(f"({result['protocol']})")
    if args.out is not None:
        print(f"wrote {write_json(args.out, result)}")
    return 0
