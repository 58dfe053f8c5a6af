"""`python weather.py learn-prompts`: learn the CLIP density and quality prompts (CoOp, CLIP frozen).

    python weather.py learn-prompts --clip openclip-vit-b-32-openai --data photos/ --out prompts.safetensors [--download]
    python weather.py learn-prompts --clip ViT-B-32.safetensors --clip-dir ComfyUI/models/clip ...

Weather is synthesized on the clean photos in --data (training/synth); the file written is read by
the CLIP providers, and its manifest entry (kind clip_prompts) is printed. Released prompts need a
real CLIP file, which the build machines of this project cannot download.
"""
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    from ..models.clip.prompt_io import PROMPT_TASKS
    p = sub.add_parser("learn-prompts", help="learn CLIP prompts for density and quality tiers on synthesized weather")
    p.add_argument("--clip", required=True, help="CLIP manifest id, or a CLIP weights file (path or name in --clip-dir)")
    p.add_argument("--clip-dir", action="append", default=[], help="folder with CLIP files, e.g. ComfyUI/models/clip "
                   "(repeatable)")
    p.add_argument("--data", required=True, action="append", help="folder of clean photos (repeatable)")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--tasks", nargs="+", choices=sorted(PROMPT_TASKS), default=sorted(PROMPT_TASKS))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=256, help="side of the synthesized training crops")
    p.add_argument("--n-ctx", type=int, default=8, help="learnable context vectors per task")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=0, help="data-loading worker processes")
    p.add_argument("--download", action="store_true",
                   help="download the CLIP file (about 605 MB) from the Hugging Face hub when it is not on disk; "
                        "without it a missing file is an error that says where to put it")
    p.set_defaults(run=run)


def make_dataset(roots, crop: int, seed: int):
    """The synthesizer's dataset; items have weathered, clean (3, H, W) and density (1, H, W)."""
    try:
        from ..training.synth import SyntheticWeatherDataset
    except ImportError as e:
        raise SystemExit(f"learn-prompts needs the weather synthesizer (training/synth), which cannot be imported "
                         f"here: {e}") from e
    return SyntheticWeatherDataset([str(r) for r in roots], crop=crop, seed=seed)


def manifest_entry(path: Path, bundle, tasks, metadata: dict) -> dict:
    from ..hub.manifest import sha256_file
    return {
        "id": f"clip-prompts-{bundle.entry_id}",
        "kind": "clip_prompts",
        "clip": bundle.entry_id,
        "file_name": path.name,
        "path": f"weights/{path.name}",            # where a released file is bundled
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "licence": "Apache-2.0",
        "tasks": list(tasks),
        "trained": metadata,
    }


def run(args) -> int:
    import torch
    from torch.utils.data import DataLoader

    from ..hub.clip_loader import load_clip
    from ..models.clip.prompt_io import save_prompts
    from ..training.prompt_learning import PromptLearningConfig, PromptTrainer

    from ..hub.clip_loader import ClipUnavailableError
    from ..models.weights_io import WeightsError

    from ..models.device import pick_device
    device = pick_device(args.device)
    try:
        bundle = load_clip(args.clip, device=device, search_dirs=args.clip_dir, allow_download=args.download)
    except (ClipUnavailableError, WeightsError) as e:
        raise SystemExit(f"learn-prompts: {e}") from e
    dataset = make_dataset(args.data, args.crop, args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=len(dataset) >= args.batch_size,
                        num_workers=args.workers, generator=torch.Generator().manual_seed(args.seed))
    cfg = PromptLearningConfig(tasks=tuple(args.tasks), n_ctx=args.n_ctx, lr=args.lr, seed=args.seed)
    trainer = PromptTrainer(bundle.model, bundle.tokenizer, bundle.mean, bundle.std, cfg)
    bar = None
    try:
        from tqdm import tqdm
        bar = tqdm(total=args.steps, desc="learn-prompts", unit="step")
    except ImportError:
        pass

    def on_step(i, losses):
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        elif (i + 1) % 50 == 0 or i == 0:
            log.info("step %d/%d %s", i + 1, args.steps, {k: round(v, 4) for k, v in losses.items()})

    try:
        final = trainer.fit(loader, args.steps, on_step)
    finally:
        if bar is not None:
            bar.close()
    meta = {"clip": bundle.entry_id, "steps": args.steps, "batch_size": args.batch_size, "crop": args.crop,
            "n_ctx": args.n_ctx, "lr": args.lr, "seed": args.seed,
            "data": [str(d) for d in args.data], "final_losses": {k: round(v, 5) for k, v in final.items()}}
    out = save_prompts(args.out, trainer.learner.export(), metadata=meta)
    log.info("wrote %s (final losses %s)", out, meta["final_losses"])
    print(json.dumps(manifest_entry(Path(out), bundle, args.tasks, meta), indent=2))
    return 0
