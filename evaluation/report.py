"""Evaluation results as a Markdown table and a JSON file."""
import json
import math
from pathlib import Path


def _fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def markdown_table(result: dict) -> str:
    """The rows of `evaluate_folder`'s result as a Markdown table (PSNR in dB to 2 decimals, SSIM to 4)."""
    lines = ["| | Y-PSNR (dB) | Y-SSIM | RGB-PSNR (dB) | count |", "|---|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['name']} | {_fmt(row['y_psnr'], 2)} | {_fmt(row['y_ssim'], 4)} | "
                     f"{_fmt(row['rgb_psnr'], 2)} | {row['count']} |")
    return "\n".join(lines)


def write_json(result: dict, path) -> Path:
    """Write the result (identical pairs score PSNR Infinity, as Python's json writes it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
