"""Image quality metrics as deraining/dehazing papers compute them (the MATLAB reference scripts).

    rgb_to_y     Y of YCbCr, ITU-R BT.601, studio range 16-235, as MATLAB `rgb2ycbcr` on uint8
                 images: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, R, G, B in 0..255,
                 rounded to integers (MATLAB returns uint8 for uint8 input)
    psnr         10 log10(data_range^2 / MSE), +inf for identical images
    ssim_matlab  Wang et al.'s `ssim_index.m`: 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
                 K2 = 0.03, L = 255, 'valid' filtering (no padding), mean of the SSIM map
    quantize     a float image in [0, 1] -> uint8 0..255 (round half up, clip), as results are saved

The scripts that published the Rain100L numbers (e.g. MPRNet's evaluate_PSNR_SSIM.m) read PNGs as
uint8, take `rgb2ycbcr(img)(:, :, 1)` (uint8) and score that; this module does the same, so the
Rain100L input-vs-target row reads 26.90 dB / 0.838 (tests/test_evaluate.py). Pure numpy, float64.
"""
import numpy as np

# BT.601 studio-range luma coefficients of MATLAB rgb2ycbcr, for R, G, B in [0, 1]
_Y_COEFFS = np.array([65.481, 128.553, 24.966])
_Y_OFFSET = 16.0


def quantize(img) -> np.ndarray:
    """Float image in [0, 1] (any shape, numpy or torch) -> uint8 in 0..255: 255 x rounded half up
    (as MATLAB im2uint8; numpy/torch round() would round halves to even), clipped."""
    if hasattr(img, "detach"):                                   # torch tensor
        img = img.detach().float().cpu().numpy()
    img = np.asarray(img, dtype=np.float64)
    return np.clip(np.floor(img * 255.0 + 0.5), 0, 255).astype(np.uint8)


def rgb_to_y(img, round_output: bool = True) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) float64 Y in [16, 235], BT.601 as MATLAB rgb2ycbcr.

    `img` must be uint8 (0..255) or floating point in [0, 1] (it is NOT guessed from the values: a
    float image in 0..255 raises). Rounded to integers like MATLAB's uint8 output unless
    `round_output` is False (BasicSR-style float Y).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"rgb_to_y needs an (H, W, 3) RGB image; got shape {img.shape}")
    if img.dtype == np.uint8:
        rgb = img.astype(np.float64) / 255.0
    elif np.issubdtype(img.dtype, np.floating):
        rgb = img.astype(np.float64)
        if rgb.size and (rgb.min() < -1e-6 or rgb.max() > 1 + 1e-6):
            raise ValueError(
                f"rgb_to_y got a float image with values in [{rgb.min():.3g}, {rgb.max():.3g}]; float "
                f"images must be in [0, 1] (divide by 255, or pass uint8)")
    else:
        raise ValueError(f"rgb_to_y needs uint8 (0..255) or float ([0, 1]) pixels; got dtype {img.dtype}")
    y = _Y_OFFSET + rgb @ _Y_COEFFS                              # (H, W, 3) @ (3,) -> (H, W)
    return np.floor(y + 0.5) if round_output else y          # half up, as MATLAB uint8()


def psnr(a, b, data_range: float = 255.0) -> float:
    """PSNR in dB of two same-shape arrays; +inf when they are identical."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr needs arrays of the same shape; got {a.shape} and {b.shape}")
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / mse))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """1-D normalised Gaussian (size,); its outer product is MATLAB fspecial('gaussian', size, sigma)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB filter2(g' * g, img, 'valid') for a symmetric separable window: (H, W) -> (H-n+1, W-n+1)."""
    windows = np.lib.stride_tricks.sliding_window_view
    rows = windows(img, g.size, axis=0) @ g                      # (H-n+1, W, n) @ (n,) -> (H-n+1, W)
    return windows(rows, g.size, axis=1) @ g                     # -> (H-n+1, W-n+1)


def ssim_matlab(a, b, data_range: float = 255.0, window: int = 11, sigma: float = 1.5,
                k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM of two (H, W) single-channel images (values on a 0..data_range scale), exactly as
    `ssim_index.m`; both sides must be at least `window` pixels."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim_matlab needs two (H, W) images of the same shape; got {a.shape} and {b.shape}")
    if min(a.shape) < window:
        raise ValueError(f"ssim_matlab needs images of at least {window} x {window} pixels; got {a.shape}")
    g = gaussian_window(window, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a ** 2
    var_b = _filter_valid(b * b, g) - mu_b ** 2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def score_pair(pred: np.ndarray, target: np.ndarray) -> dict:
    """Scores of one (H, W, 3) uint8 prediction against its uint8 target: Y-PSNR, Y-SSIM, RGB-PSNR."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.dtype != np.uint8 or target.dtype != np.uint8:
        raise ValueError(f"score_pair needs uint8 images (use quantize() on float output); "
                         f"got {pred.dtype} and {target.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    y_pred, y_target = rgb_to_y(pred), rgb_to_y(target)
    return {"y_psnr": psnr(y_pred, y_target), "y_ssim": ssim_matlab(y_pred, y_target),
            "rgb_psnr": psnr(pred, target)}
