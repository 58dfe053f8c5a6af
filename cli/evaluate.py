"""`python weather.py evaluate`: score weights on a paired folder, beside the input-vs-target row.

    python weather.py evaluate --weights FILE.safetensors --data ../shared/data/eval/rain100L
        [--out results.json] [--tile 512 --overlap 64] [--device auto] [--limit N]
    python weather.py evaluate --weights none --data ../shared/data/eval/hsts     (input row only)
"""
import argparse
import logging
from pathlib import Path

import torch

from ..evaluation import evaluate_folder, markdown_table, write_json
from ..hub.manifest import MANIFEST_PATH, entries, find_entry_by_sha256, sha256_file, verify_file
from ..models.weights_io import WeightsError, load_restorer
from ..models.device import pick_device

log = logging.getLogger(__name__)


def check_against_manifest(path: Path) -> dict:
    """Find the file's manifest entry by sha256 (else by file name) and verify it.

    Returns {"sha256", "manifest_id"} (id None when the file is not in the manifest); raises
    WeightsError when an entry with this file name exists but the file differs from it.
    """
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; give a .safetensors file, or --weights none")
    digest = sha256_file(path)
    entry = find_entry_by_sha256(digest)
    if entry is None:
        same_name = [e for e in entries() if Path(e.get("path") or (e.get("hub") or {}).get("file") or "").name == path.name]
        for e in same_name:
            verify_file(path, e)                                  # raises: same name, other content
    if entry is None:
        log.info("%s (sha256 %s) is not in %s; scoring it unverified", path.name, digest[:12], MANIFEST_PATH.name)
        return {"sha256": digest, "manifest_id": None}
    verify_file(path, entry)
    log.info("%s verified against manifest entry '%s'", path.name, entry["id"])
    return {"sha256": digest, "manifest_id": entry["id"]}


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score weights on a paired folder (Y-PSNR, Y-SSIM, RGB-PSNR)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="restorer .safetensors file, or 'none' for the input row only")
    p.add_argument("--data", type=Path, help="paired folder (input/target, hazy/gt, ...)")
    p.add_argument("--input-dir", help="degraded images (absolute, or relative to --data)")
    p.add_argument("--target-dir", help="clean images (absolute, or relative to --data)")
    p.add_argument("--out", type=Path, help="write the full result (rows and per-image scores) as JSON here")
    p.add_argument("--tile", type=int, default=512, help="tile side for large images (default 512)")
    p.add_argument("--overlap", type=int, default=64, help="overlap of neighbouring tiles (default 64)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default auto)")
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
    model, name, info = None, None, {}
    if args.weights.lower() != "none":
        path = Path(args.weights)
        info = check_against_manifest(path)
        device = pick_device(args.device)
        model = load_restorer(path, device=device)
        name = path.stem
        info.update(weights=str(path), config=model.cfg.name, device=str(device))
    result = evaluate_folder(model, args.data, args.input_dir, args.target_dir, tile=args.tile,
                             overlap=args.overlap, limit=args.limit, name=name)
    result.update(info)
    print(f"{result['count']} pairs from {result['input_dir']} vs {result['target_dir']}")
    print(markdown_table(result))
    print(f"({result['protocol']})")
    if args.out is not None:
        print(f"wrote {write_json(result, args.out)}")
    return 0
