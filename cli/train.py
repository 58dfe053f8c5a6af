"""`python weather.py train`: train the restorer from a train config (training/configs/*.json).

    python weather.py train --config training/configs/s.json --out runs/s
    python weather.py train --config training/configs/s.json --out runs/s --resume
    torchrun --nproc_per_node 2 weather.py train --config <cfg> --out runs/x   (DDP)
"""
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the restorer on synthesized weather (and real rain: NLCL)")
    p.add_argument("--config", required=True, help="train config name (training/configs/) or JSON path")
    p.add_argument("--out", required=True, help="run folder: checkpoints, train.log, curve.jsonl")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt exactly where it stopped")
    p.add_argument("--steps", type=int, default=None,
                   help="total steps, replacing the config's (the cosine schedule follows it)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop (with a checkpoint) at this step without changing the schedule")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: config, 0 = all cores)")
    p.add_argument("--workers", type=int, default=None, help="data-loading worker processes (default: config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch
    from ..training.runlog import attach_log_file
    from ..training.train_config import load_train_config

    cfg = load_train_config(args.config)
    if args.steps is not None and not args.resume:
        cfg.steps = args.steps
    if args.workers is not None:
        cfg.num_workers = args.workers
    threads = args.threads if args.threads is not None else cfg.threads
    world = int(os.environ.get("WORLD_SIZE", 1))
    torch.set_num_threads(threads if threads > 0 else max(1, (os.cpu_count() or 1) // world))
    rank = int(os.environ.get("RANK", 0))
    if rank:                                   # one voice: only rank 0 logs progress and writes files
        logging.getLogger().setLevel(logging.WARNING)
    handler = attach_log_file(os.path.join(args.out, "train.log")) if rank == 0 else None
    try:
        return _train(cfg, args, world)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _train(cfg, args, world: int) -> int:
    import torch
    from ..training.trainer import Trainer

    last = Path(args.out) / "last.pt"
    if args.resume and not last.is_file():
        raise SystemExit(f"train: --resume but {last} does not exist; start without --resume")
    if not args.resume and last.is_file():
        raise SystemExit(f"train: {last} exists: add --resume to continue it, or choose another --out")
    from ..models.weights_io import WeightsError
    try:                                       # bad init weights or checkpoint: a message, not a traceback
        trainer = Trainer(cfg, args.out, device=args.device, show_progress=not args.no_progress)
        log.info("train config %s on %s (%d process%s, %d threads): %s", cfg.name, trainer.device, world,
                 "es" if world > 1 else "", torch.get_num_threads(), cfg.to_dict())
        if args.resume:
            trainer.resume(steps=args.steps)
    except WeightsError as e:
        raise SystemExit(f"train: {e}") from None
    try:
        stats = trainer.fit(args.stop_at)
    finally:
        trainer.close()
    log.info("stopped at step %d; last losses %s", trainer.step, stats)
    return 0
