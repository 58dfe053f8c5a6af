"""`weather.py model-cost`: one row per config with parameters, GMACs/MP, s/MP and the effective
GMAC/s that follows from them."""
import subprocess
import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parents[1] / "weather.py"


def test_model_cost_table_has_effective_throughput():
    out = subprocess.run([sys.executable, str(LAUNCHER), "model-cost", "--configs", "tiny", "--sizes", "32",
                          "--repeats", "1", "--threads", "1"], check=True, capture_output=True, text=True).stdout
    header = next(line for line in out.splitlines() if line.startswith("| config"))
    row = next(line for line in out.splitlines() if line.startswith("| tiny"))
    cols = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    gmacs, s_per_mp, rate = float(cols["GMACs/MP"]), float(cols["s/MP @32²"]), float(cols["GMAC/s @32²"])
    assert 1 < gmacs < 60 and s_per_mp > 0
    assert abs(rate - gmacs / s_per_mp) <= 0.06 * rate + 0.1          # the printed values are rounded
    assert float(cols["peak RSS MB @32²"]) > 50                         # a real process's memory
