"""Run records: `curve.jsonl` (one JSON object per line: step, elapsed seconds, losses, eval
scores) for score-vs-training-time plots, the `train.log` file, and the progress bar."""
import json
import logging
from pathlib import Path


class CurveLog:
    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **record) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()


def attach_log_file(path, level=logging.INFO) -> logging.Handler:
    """Copy the pack's log records to `path` (appending, so resumed runs keep one log)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > level or logging.getLogger().level == logging.NOTSET:
        logging.getLogger().setLevel(level)
    return handler


class _NoBar:
    def update(self, n=1): pass
    def set_postfix(self, **kw): pass
    def close(self): pass


def progress(start: int, total: int, enabled: bool = True):
    """A tqdm bar showing step, loss and time left (tqdm's remaining-time estimate)."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, smoothing=0.05)


def logging_to_bar():
    """Context in which log lines print above the progress bar instead of through it."""
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return logging_redirect_tqdm()
