"""Evaluation results as a Markdown table (the CLI writes the JSON file: image_io.write_json)."""
import math


def _fmt(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def markdown_table(result: dict) -> str:
    """The rows of `evaluate_folder`'s result as a Markdown table (PSNR in dB to 2 decimals, SSIM to 4)."""
    lines = ["| | Y-PSNR (dB) | Y-SSIM | RGB-PSNR (dB) | count |", "|---|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['name']} | {_fmt(row['y_psnr'], 2)} | {_fmt(row['y_ssim'], 4)} | "
                     f"{_fmt(row['rgb_psnr'], 2)} | {row['count']} |")
    return "\n".join(lines)
