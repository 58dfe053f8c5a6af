"""Benchmark scoring: MATLAB-style Y-PSNR / Y-SSIM and RGB PSNR on paired folders (no ComfyUI)."""
from .evaluate import evaluate_folder
from .metrics import psnr, quantize, rgb_to_y, score_pair, ssim_matlab
from .report import markdown_table

__all__ = ["evaluate_folder", "psnr", "quantize", "rgb_to_y", "score_pair", "ssim_matlab",
           "markdown_table"]
