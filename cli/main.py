"""`python weather.py <command>`: one argparse front for every command of the pack."""
import argparse
import importlib
import logging

# command name -> module in this package exposing add_parser(subparsers) and run(args)
COMMANDS = {
    "restore": "restore",
    "bench": "bench",
    "make-sample": "make_sample",
    "model-cost": "model_cost",
    "synth-sheet": "synth_sheet",
    "train": "train",
    "export": "export",
    "evaluate": "evaluate",
    "learn-prompts": "learn_prompts",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python weather.py",
                                     description="CLIP-guided rain, snow and haze removal.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(f".{module_name}", __package__).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "device", None) not in (None, "auto"):   # every command's --device, one check
        from ..models.device import pick_device
        try:
            pick_device(args.device)
        except ValueError as e:
            parser.error(str(e))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    return args.run(args) or 0
