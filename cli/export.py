"""`python weather.py export`: training checkpoint -> `.safetensors` + its weights-manifest entry.

    python weather.py export --checkpoint runs/s/last.pt --out weights/weather-s-v1.safetensors \\
        --id weather-s-v1 --eval rain100L=../shared/data/eval/rain100L --eval hsts=../shared/data/eval/hsts \\
        --eval-clean rain100L_targets_as_input=../shared/data/eval/rain100L/target \\
        [--write-manifest [--default]] [--entry-out entry.json]
The entry (sha256, bytes, config, training data, measured scores) is printed as JSON.
"""
import argparse
import json
import logging
from pathlib import Path

from .model_loading import add_tile_arguments

log = logging.getLogger(__name__)


def _named_folder(text: str):
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"wants NAME=FOLDER (e.g. rain100L=../shared/data/eval/rain100L); got {text!r}")
    return name, folder


def _blend(text: str):
    path, sep, share = text.rpartition("=")
    try:
        value = float(share)
    except ValueError:
        value = None
    if not sep or not path or value is None or not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"wants WEIGHTS=SHARE with SHARE between 0 and 1 "
                                         f"(e.g. weights/weather_m_v4_8.safetensors=0.5); got {text!r}")
    return path, value


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a training checkpoint to .safetensors with its manifest entry",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint (runs/<name>/last.pt)")
    p.add_argument("--out", required=True, type=Path, help="the .safetensors file to write")
    p.add_argument("--id", required=True, help="manifest id of the weights, e.g. weather-s-v1")
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA weights")
    p.add_argument("--blend", action="append", type=_blend, default=[], metavar="WEIGHTS=SHARE",
                   help="average with a weights file of the same network, which gets SHARE of the result "
                        "(e.g. weights/weather_m_v4_8.safetensors=0.5; repeatable, a soup: the checkpoint keeps "
                        "1 - the sum of the shares); recorded in the entry")
    p.add_argument("--drop-stage", type=Path, default=None, metavar="CHECKPOINT",
                   help="add the raindrop stage of this checkpoint (scripts/train_drop_stage.py's last.pt) to the "
                        "exported network; recorded in the entry")
    p.add_argument("--drop-stage-raw", action="store_true",
                   help="with --drop-stage: add the stage's raw weights instead of its EMA (the EMA of a short run "
                        "lags behind it; measure both)")
    p.add_argument("--eval", action="append", type=_named_folder, default=[], metavar="NAME=FOLDER",
                   help="paired folder to score the exported weights on (repeatable)")
    p.add_argument("--eval-clean", action="append", type=_named_folder, default=[], metavar="NAME=FOLDER",
                   help="folder of clean photos fed in and scored against themselves (do no harm; repeatable)")
    add_tile_arguments(p)
    p.add_argument("--limit", type=int, help="score only the first N pairs of each folder")
    p.add_argument("--device", default="auto", help="device for evaluation: auto | cpu | cuda | mps")
    p.add_argument("--licence", default=None, help="licence recorded in the entry (default: research-only)")
    p.add_argument("--entry-out", type=Path, help="also write the manifest entry as JSON here")
    p.add_argument("--write-manifest", action="store_true",
                   help="add the entry to weights_manifest.json (replacing an entry with the same id)")
    p.add_argument("--default", action="store_true",
                   help="with --write-manifest: make these the default restorer weights")
    p.add_argument("--manifest", type=Path, default=None, help="manifest file (default: the pack's)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..hub.manifest import MANIFEST_PATH
    from ..models.weights_io import WeightsError
    from ..training import export as E
    from ..models.device import pick_device

    if args.default and not args.write_manifest:
        raise SystemExit("export: --default only applies with --write-manifest")
    if args.drop_stage_raw and args.drop_stage is None:
        raise SystemExit("export: --drop-stage-raw only applies with --drop-stage")
    if args.out.suffix != ".safetensors":
        raise SystemExit(f"export: --out must end in .safetensors; got {args.out}")
    try:
        path, model, ck = E.export_checkpoint(args.checkpoint, args.out, args.id, ema=not args.raw, blend=args.blend,
                                             drop_stage=args.drop_stage, drop_stage_ema=not args.drop_stage_raw)
    except (FileNotFoundError, RuntimeError, ValueError, WeightsError) as e:
        raise SystemExit(f"export: {e}") from e
    scores = {}
    if args.eval or args.eval_clean:
        model = model.to(pick_device(args.device))
        scores = E.measure_scores(model, dict(args.eval), tile=args.tile, overlap=args.overlap, limit=args.limit)
        scores.update(E.measure_scores(model, dict(args.eval_clean), tile=args.tile, overlap=args.overlap,
                                             limit=args.limit, clean=True))
    entry = E.manifest_entry(path, args.id, model, ck, scores, ema=not args.raw,
                             licence=args.licence or E.DEFAULT_LICENCE)
    text = json.dumps(entry, indent=2)
    print(text)
    if args.entry_out:
        args.entry_out.parent.mkdir(parents=True, exist_ok=True)
        args.entry_out.write_text(text + "\n")
    if args.write_manifest:
        E.write_manifest_entry(entry, args.manifest or MANIFEST_PATH, make_default=args.default)
    return 0
