"""Multi-process training: two CPU processes under torchrun (gloo) stay in sync; only rank 0 writes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import sys, json, importlib.util
sys.path.insert(0, {root!r})
import weather; weather.load_pack()
import torch, torch.distributed as dist
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("h", {helpers!r})
h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
from weather_restore.training.trainer import Trainer
t = Trainer(h.tiny_train_config(steps=2, ckpt_every_steps=1), {out!r}, dataset=h.FakeWeather(n=8), show_progress=False)
t.fit()
flat = torch.cat([p.detach().flatten() for p in t.model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(t.world)]
dist.all_gather(gathered, flat)
batches = [None] * t.world
dist.all_gather_object(batches, t.loader(1).batch_sampler.batch_at(0))
if t.rank == 0:
    print("RESULT", json.dumps({{"world": t.world, "diff": (gathered[0] - gathered[1]).abs().max().item(), "batches": batches}}))
t.close()
'''


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None and
                    shutil.which("torchrun") is None, reason="torchrun not installed")
def test_two_cpu_processes_train_in_sync(tmp_path):
    script = tmp_path / "ddp.py"
    out = tmp_path / "run"
    script.write_text(SCRIPT.format(root=str(ROOT), helpers=str(ROOT / "tests" / "train_helpers.py"), out=str(out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", str(script)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    result = json.loads(line[len("RESULT "):])
    assert result["world"] == 2 and result["diff"] == 0.0              # gradients were all-reduced
    b0, b1 = result["batches"]
    assert len(b0) == len(b1) == 2 and not set(b0) & set(b1)           # each rank draws its own shard
    assert sorted(p.name for p in out.iterdir()) == ["curve.jsonl", "last.pt"]
    assert [json.loads(ln)["step"] for ln in (out / "curve.jsonl").read_text().splitlines()] == [1, 2]
