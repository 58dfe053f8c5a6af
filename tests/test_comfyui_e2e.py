"""End to end in a real ComfyUI: the pack loads through comfy_entrypoint, every example workflow runs
through /prompt, and the outputs are checked (sizes, values, restoration where the rain is).

    COMFYUI_PATH=/path/to/ComfyUI [COMFYUI_PYTHON=/path/to/python] python -m pytest tests/test_comfyui_e2e.py

Skipped when COMFYUI_PATH is not set. The checkout is not modified: ComfyUI runs with --cpu on
127.0.0.1 and a free port, with --base-directory in a temporary folder whose custom_nodes/ holds a
link to this pack and whose input/ holds a generated rainy image (sample_rain.png, RGBA: its
transparent rectangle is the "painted" mask of restore_painted_region). An extra_model_paths.yaml
adds a `weather:` folder with a tiny random restorer, used when the pack bundles no weights
(then the checks are about plumbing, not about how well rain is removed). The workflows are UI
format; tests/comfy_api_format.py converts them to API prompts with the server's /object_info.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COMFYUI = Path(os.environ["COMFYUI_PATH"]).expanduser() if os.environ.get("COMFYUI_PATH") else None
pytestmark = [pytest.mark.comfyui, pytest.mark.skipif(
    COMFYUI is None or not (COMFYUI / "main.py").is_file(),
    reason="set COMFYUI_PATH to a ComfyUI checkout to run the end-to-end test")]

P = "WeatherRestore_"
DISPLAY_NAMES = {P + "LoadModel": "Load Weather Model", P + "ClipPrior": "CLIP Weather Prior",
                 P + "DensityMap": "Density Map", P + "Restore": "Restore", P + "QualityPerceiver": "Quality Perceiver"}
H, W = 192, 256
REGION = (slice(48, 144), slice(64, 192))       # the "painted" rectangle of sample_rain.png
TINY = "e2e_tiny.safetensors"
STARTUP_S, RUN_S = 300, 600


from comfy_api_format import ui_to_api
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))


# -- inputs --------------------------------------------------------------------------------------
def rainy_sample(seed: int = 0):
    """(clean, rainy) float (H, W, 3) and the rain mask (H, W): a simple scene with slanted streaks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] / np.array([H, W]).reshape(2, 1, 1)
    clean = np.stack([0.45 + 0.2 * yy, 0.55 + 0.15 * yy, 0.75 - 0.1 * yy], -1)     # sky
    ground = yy > 0.62
    clean[ground] = np.array([0.30, 0.42, 0.22]) + 0.1 * xx[ground, None]
    for x0, x1, top, colour in ((20, 70, 0.35, (0.55, 0.35, 0.3)), (150, 210, 0.25, (0.4, 0.4, 0.45))):
        clean[int(top * H):int(0.62 * H), x0:x1] = colour                             # two buildings
    rain = np.zeros((H, W))
    for _ in range(420):
        x0, y0, n = rng.uniform(0, W), rng.uniform(-10, H), rng.integers(8, 18)
        t = np.arange(n)
        ys, xs = (y0 + t).astype(int), (x0 + 0.25 * t).astype(int)
        ok = (ys >= 0) & (ys < H) & (xs < W)
        rain[ys[ok], xs[ok]] = rng.uniform(0.5, 0.8)
    rainy = clean * (1 - rain[..., None]) + 0.92 * rain[..., None]
    return clean.clip(0, 1), rainy.clip(0, 1), rain > 0


def write_inputs(folder: Path) -> dict:
    clean, rainy, rain = rainy_sample()
    rgba = np.dstack([np.round(rainy * 255), np.full((H, W), 255.0)]).astype(np.uint8)
    rgba[REGION[0], REGION[1], 3] = 0                                                # painted: transparent
    Image.fromarray(rgba, "RGBA").save(folder / "sample_rain.png")
    return {"clean": clean, "rainy": np.round(rainy * 255) / 255, "rain": rain}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the server ----------------------------------------------------------------------------------
class Comfy:
    def __init__(self, url: str, log: Path, sample: dict, weights: str, trained: bool):
        self.url, self.log, self.sample, self.weights, self.trained = url, log, sample, weights, trained
        self._info = None

    def request(self, path: str, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    @property
    def object_info(self) -> dict:
        if self._info is None:
            self._info = self.request("/object_info")
        return self._info

    def api(self, workflow: dict) -> dict:
        return ui_to_api(workflow, self.object_info, {P + "LoadModel": {"weights": self.weights}})

    def submit(self, prompt: dict) -> str:
        try:
            return self.request("/prompt", {"prompt": prompt, "client_id": "weather-e2e"})["prompt_id"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"/prompt refused the prompt: {e.read().decode()[:2000]}") from e

    def run(self, prompt: dict) -> dict:
        """Queue an API prompt and wait for its history entry."""
        return self.wait(self.submit(prompt))

    def wait(self, pid: str) -> dict:
        deadline = time.time() + RUN_S
        while time.time() < deadline:
            entry = self.request(f"/history/{pid}").get(pid)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"]["status_str"] != "error" or entry["status"].get("messages"):
                    return entry
            time.sleep(0.5)
        raise AssertionError(f"prompt {pid} did not finish in {RUN_S}s; log: {self.log}")

    def error(self, entry: dict) -> str:
        assert entry["status"]["status_str"] == "error", "the prompt should have failed"
        return next(m[1]["exception_message"] for m in entry["status"]["messages"] if m[0] == "execution_error")

    def images(self, entry: dict, node_id: str) -> list:
        """The images a SaveImage / PreviewImage node wrote, as float (H, W, 3) arrays in [0, 1]."""
        out = []
        for im in entry["outputs"][node_id]["images"]:
            query = urllib.parse.urlencode({k: im[k] for k in ("filename", "subfolder", "type")})
            raw = self.request("/view?" + query)
            out.append(np.asarray(Image.open(BytesIO(raw)).convert("RGB"), dtype=np.float64) / 255)
        return out


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy")
    for d in ("custom_nodes", "input", "extra/weather"):
        (base / d).mkdir(parents=True)
    (base / "custom_nodes" / "weather_restore").symlink_to(ROOT, target_is_directory=True)
    sample = write_inputs(base / "input")

    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import save_restorer
    from weather_restore.pipeline.weights import DEFAULT_CHOICE, bundled_restorers
    torch.manual_seed(0)
    save_restorer(WeatherRestorer(load_config("tiny")), base / "extra/weather" / TINY)
    (base / "extra/weather/broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    yaml = base / "extra_model_paths.yaml"
    yaml.write_text(f"weather_e2e:\n  base_path: {base / 'extra'}\n  weather: weather/\n")
    trained = any((ROOT / e["path"]).is_file() for e in bundled_restorers())

    port = free_port()
    python = os.environ.get("COMFYUI_PYTHON") or next(
        (str(p) for p in (COMFYUI / ".venv/bin/python", COMFYUI / "venv/bin/python") if p.is_file()), sys.executable)
    log = base / "comfyui.log"
    cmd = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
           "--base-directory", str(base), "--extra-model-paths-config", str(yaml),
           "--database-url", "sqlite:///:memory:"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=COMFYUI, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Comfy(f"http://127.0.0.1:{port}", log, sample, DEFAULT_CHOICE if trained else TINY, trained)
    server.python, server.weights_dir = python, base / "extra/weather"
    try:
        deadline = time.time() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                server.request("/system_stats")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.time() > deadline:
                    pytest.fail(f"ComfyUI did not start in {STARTUP_S}s:\n{log.read_text()[-4000:]}")
                time.sleep(1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the pack in ComfyUI -------------------------------------------------------------------------
def test_pack_loads_with_its_five_nodes(comfy):
    info = comfy.object_info
    log = comfy.log.read_text()
    ours = [line for line in log.splitlines() if "weather_restore" in line]
    assert "Error while calling comfy_entrypoint" not in log
    assert ours and not [line for line in ours if "IMPORT FAILED" in line], ours
    for node_id, name in DISPLAY_NAMES.items():
        node = info[node_id]
        assert node["display_name"] == name
        assert node["category"] == "image/restoration/weather"
        assert "weather_restore" in node["python_module"]
        inputs = {**node["input"]["required"], **node["input"].get("optional", {})}
        missing = [k for k, spec in inputs.items() if not (len(spec) > 1 and spec[1].get("tooltip"))]
        assert not missing, f"{node_id} inputs without tooltip: {missing}"
    weights = info[P + "LoadModel"]["input"]["required"]["weights"][1]["options"]
    assert weights[0] == "default (bundled)" and TINY in weights     # extra_model_paths.yaml is honoured
    assert info[P + "LoadModel"]["input"]["required"]["clip"][1]["options"][0] == "none"


def test_example_workflows_are_served_as_templates(comfy):
    templates = comfy.request("/workflow_templates")
    assert sorted(templates["weather_restore"]) == [p.stem for p in WORKFLOWS]
    first = WORKFLOWS[0]
    served = comfy.request(f"/api/workflow_templates/weather_restore/{first.name}")
    assert served == json.loads(first.read_text())
    for wf in WORKFLOWS:                                          # the template browser's thumbnails: no 404
        url = f"{comfy.url}/api/workflow_templates/weather_restore/{urllib.parse.quote(wf.stem)}.jpg"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and r.read(3) == b"\xff\xd8\xff"


# -- every example workflow ----------------------------------------------------------------------
def outputs_of(prompt: dict, entry: dict, class_type: str) -> list:
    return sorted((k for k, v in prompt.items() if v["class_type"] == class_type and k in entry["outputs"]), key=int)


def check_restored(comfy, out: np.ndarray, where: np.ndarray = None):
    """Same size as the input, changed where the rain is; with trained weights, closer to the clean image."""
    s = comfy.sample
    assert out.shape == (H, W, 3)
    rain = s["rain"] if where is None else s["rain"] & where
    diff = np.abs(out - s["rainy"]).mean(-1)
    assert diff[rain].mean() > 0.01, "the restored image should differ from the input where rain was added"
    assert out.std() > 0.05                                      # an image, not a flat colour
    if comfy.trained:
        err_in = np.abs(s["rainy"] - s["clean"]).mean(-1)[rain].mean()
        err_out = np.abs(out - s["clean"]).mean(-1)[rain].mean()
        assert err_out < err_in, f"rain pixels: error {err_out:.4f} after vs {err_in:.4f} before"


def check_restore_and_save(comfy, prompt, entry):
    (save,) = outputs_of(prompt, entry, "SaveImage")
    (img,) = comfy.images(entry, save)
    check_restored(comfy, img)


def check_restore_then_upscale(comfy, prompt, entry):
    (save,) = outputs_of(prompt, entry, "SaveImage")
    (img,) = comfy.images(entry, save)
    assert img.shape == (2 * H, 2 * W, 3)
    small = np.asarray(Image.fromarray((img * 255).astype(np.uint8)).resize((W, H), Image.BOX)) / 255
    check_restored(comfy, small)


def check_restore_large_photo(comfy, prompt, entry):
    """The workflow's Restore runs with weather_scale 2: the image is restored, and differently from the plain
    restore of the same image (the coarse pass ran)."""
    (restore,) = [k for k, n in prompt.items() if n["class_type"] == P + "Restore"]
    assert prompt[restore]["inputs"]["weather_scale"] == 2.0
    (save,) = outputs_of(prompt, entry, "SaveImage")
    (img,) = comfy.images(entry, save)
    check_restored(comfy, img)
    (plain,) = comfy.images(comfy.run(base_prompt(comfy)), "4")
    assert np.abs(img - plain).max() > 2 / 255


def check_quality_before_after(comfy, prompt, entry):
    texts = [entry["outputs"][k]["text"][0] for k in outputs_of(prompt, entry, P + "QualityPerceiver")]
    assert len(texts) == 2
    scores = []
    for t in texts:
        m = re.fullmatch(r"score ([0-9.]+) \((low|medium|high)\) - low ([0-9.]+), medium ([0-9.]+), "
                         r"high ([0-9.]+) \((learned|clip)\)", t)
        assert m, t
        score, probs = float(m.group(1)), [float(m.group(i)) for i in (3, 4, 5)]
        assert 0 <= score <= 1 and abs(sum(probs) - 1) < 0.02
        assert abs(score - (probs[2] + 0.5 * probs[1])) < 0.01
        scores.append(score)
    if comfy.trained:
        before, after = scores                                   # the "before" node has the lower id
        assert after > before
    (preview,) = outputs_of(prompt, entry, "PreviewImage")
    check_restored(comfy, comfy.images(entry, preview)[0])


def check_density_map_preview(comfy, prompt, entry):
    previews = outputs_of(prompt, entry, "PreviewImage")
    assert len(previews) == 2
    heat, mask = (comfy.images(entry, k)[0] for k in previews)   # heat map node comes first in the graph
    assert heat.shape == mask.shape == (H, W, 3)
    assert np.allclose(mask[..., 0], mask[..., 2]), "the density mask preview is grey"
    assert np.abs(heat[..., 0] - heat[..., 2]).max() > 0.05, "the heat map is in colour"
    # heat map colours follow the mask: brighter (denser) mask pixels give brighter heat-map pixels
    lum = heat @ np.array([0.3, 0.6, 0.1])
    dense, clear = mask[..., 0] > np.quantile(mask[..., 0], 0.8), mask[..., 0] < np.quantile(mask[..., 0], 0.2)
    if mask[..., 0].std() > 1e-3:
        assert lum[dense].mean() > lum[clear].mean()


def check_restore_painted_region(comfy, prompt, entry):
    (save,) = outputs_of(prompt, entry, "SaveImage")
    (img,) = comfy.images(entry, save)
    inside = np.zeros((H, W), bool)
    inside[REGION[0].start + 12:REGION[0].stop - 12, REGION[1].start + 12:REGION[1].stop - 12] = True
    outside = np.ones((H, W), bool)
    feather = 24 + 4
    outside[REGION[0].start - feather:REGION[0].stop + feather, REGION[1].start - feather:REGION[1].stop + feather] = False
    diff = np.abs(img - comfy.sample["rainy"]).max(-1)
    assert diff[outside].max() <= 1 / 255 + 1e-6, "outside the painted mask the image must stay as it was"
    check_restored(comfy, img, where=inside)


def check_guided_restore(comfy, prompt, entry):
    (save,) = outputs_of(prompt, entry, "SaveImage")
    check_restored(comfy, comfy.images(entry, save)[0])
    (summary,) = outputs_of(prompt, entry, "PreviewAny")
    text = entry["outputs"][summary]["text"][0]
    assert re.fullmatch(r"(((rain|raindrops|snow|haze) [01]\.\d\d)(, )?)+ \(learned\)|clear \(all below 0\.10\) \(learned\)", text), text


def check_clip_guided_restore(comfy, prompt, entry):
    """No CLIP file offline: the workflow stops at Load Weather Model with a message that says what to do."""
    message = comfy.error(entry)
    assert "open_clip_ViT-B-32_openai.safetensors" in message and "models/clip" in message, message
    assert "download_clip on" in message or "HF_HUB_OFFLINE is set" in message, message   # the switch, unless offline


CHECKS = {"remove-rain-snow-and-haze-from-a-photo": check_restore_and_save,
          "restore-a-large-photo-with-weather-scale": check_restore_large_photo,
          "restore-first-then-upscale-2x": check_restore_then_upscale,
          "score-image-quality-before-and-after-restoring": check_quality_before_after,
          "see-where-the-weather-is-with-a-density-heat-map": check_density_map_preview,
          "restore-only-inside-a-painted-mask": check_restore_painted_region,
          "guide-the-restorer-by-hand-with-a-prior-and-a-density": check_guided_restore,
          "clip-guided-restore-needs-a-clip-file": check_clip_guided_restore}
NEEDS_A_CLIP_FILE = {"clip-guided-restore-needs-a-clip-file"}


def test_every_workflow_has_a_check():
    assert sorted(CHECKS) == [p.stem for p in WORKFLOWS]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_example_workflow_runs(comfy, path):
    prompt = comfy.api(json.loads(path.read_text()))
    entry = comfy.run(prompt)
    expected = "error" if path.stem in NEEDS_A_CLIP_FILE else "success"
    assert entry["status"]["status_str"] == expected, json.dumps(entry["status"])[:3000]
    CHECKS[path.stem](comfy, prompt, entry)


# -- batches, tiles and bad input ----------------------------------------------------------------
def base_prompt(comfy, **restore):
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sample_rain.png"}},
        "2": {"class_type": P + "LoadModel", "inputs": {"weights": comfy.weights, "clip": "none", "precision": "auto",
                                                         "download_clip": False}},
        "3": {"class_type": P + "Restore", "inputs": {"weather_model": ["2", 0], "image": ["1", 0], "strength": 1.0,
                                                      "feather": 16, "tile_size": 512, "tile_overlap": 64, **restore}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "weather/e2e"}},
    }


def test_batch_is_tiled_and_every_image_restored(comfy):
    prompt = base_prompt(comfy, image=["5", 0], tile_size=96, tile_overlap=32)
    prompt["5"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 2}}
    entry = comfy.run(prompt)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    a, b = comfy.images(entry, "4")
    check_restored(comfy, a)
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6                 # the same image twice: the same result


def test_mirror_ensemble_is_optional_and_changes_the_result(comfy):
    """An API prompt written before the input existed still runs (plain); with it on, the output differs."""
    plain, ens = comfy.run(base_prompt(comfy)), comfy.run(base_prompt(comfy, mirror_ensemble=True))
    for entry in (plain, ens):
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (a,), (b,) = comfy.images(plain, "4"), comfy.images(ens, "4")
    check_restored(comfy, b)
    assert np.abs(a - b).max() > 2 / 255


def test_weather_scale_is_optional_and_changes_the_result(comfy):
    """weather_scale 2 on the sample: a coarse pass on a copy of half the size first, so the output differs
    from the plain one (which a prompt written before the input existed gets)."""
    plain, coarse = comfy.run(base_prompt(comfy)), comfy.run(base_prompt(comfy, weather_scale=2.0))
    for entry in (plain, coarse):
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (a,), (b,) = comfy.images(plain, "4"), comfy.images(coarse, "4")
    check_restored(comfy, b)
    assert np.abs(a - b).max() > 2 / 255


def test_keep_brightness_is_optional_and_keeps_the_mean_brightness(comfy):
    """keep_brightness on the sample: the output differs from the plain one, and the change most pixels share
    (the median change: not the streaks taken out) is gone."""
    plain, kept = comfy.run(base_prompt(comfy)), comfy.run(base_prompt(comfy, keep_brightness=True))
    for entry in (plain, kept):
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (a,), (b,) = comfy.images(plain, "4"), comfy.images(kept, "4")
    check_restored(comfy, b)
    x = comfy.sample["rainy"]
    assert np.abs(a - b).max() > 1 / 255
    assert abs(float(np.median(b - x))) < 0.5 / 255 <= abs(float(np.median(a - x)))


def test_bad_inputs_fail_with_clear_errors(comfy):
    odd_mask = base_prompt(comfy, region=["6", 0])               # a 64x64 non-constant mask on a 192x256 image
    odd_mask["5"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}}
    odd_mask["6"] = {"class_type": "FeatherMask", "inputs": {"mask": ["5", 0], "left": 16, "top": 0, "right": 0, "bottom": 0}}
    assert re.search(r"region is 64x64 \(H x W\) but the image is 192x256.*resize or crop", comfy.error(comfy.run(odd_mask)))

    tiny = base_prompt(comfy, image=["5", 0])
    tiny["5"] = {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}}
    entry = comfy.run(tiny)                                       # smaller than the stride: padded, restored
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:2000]
    assert comfy.images(entry, "4")[0].shape == (4, 4, 3)

    broken = base_prompt(comfy)
    broken["2"]["inputs"]["weights"] = "broken.safetensors"
    assert re.search(r"broken\.safetensors is not a readable \.safetensors file", comfy.error(comfy.run(broken)))

    if not comfy.trained:                                        # nothing bundled yet: say where weights go
        missing = base_prompt(comfy)
        missing["2"]["inputs"]["weights"] = "default (bundled)"
        assert re.search(r"no bundled restorer weights; put a \.safetensors .*models/weather",
                         comfy.error(comfy.run(missing)))

    clip_id = comfy.object_info[P + "LoadModel"]["input"]["required"]["clip"][1]["options"]
    manifest_clips = [c for c in clip_id if c.startswith("openclip-")]
    if manifest_clips:                                            # a manifest CLIP whose file is not here
        no_clip = base_prompt(comfy)
        no_clip["2"]["inputs"]["clip"] = manifest_clips[0]
        message = comfy.error(comfy.run(no_clip))
        assert "not on this machine" in message and "models/clip" in message, message


def test_interrupt_stops_the_work(comfy):
    prompt = base_prompt(comfy, image=["5", 0], tile_size=64, tile_overlap=16, strength=0.95)
    prompt["5"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 16}}   # 320 tiles
    pid = comfy.submit(prompt)
    deadline = time.time() + RUN_S
    while not any(item[1] == pid for item in comfy.request("/queue")["queue_running"]):
        assert time.time() < deadline and pid not in comfy.request(f"/history/{pid}"), "finished before the interrupt"
        time.sleep(0.2)
    time.sleep(1.0)
    comfy.request("/interrupt", {})
    entry = comfy.wait(pid)
    kinds = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds and "execution_success" not in kinds, kinds
    assert "4" not in entry["outputs"]                            # nothing was saved


def test_nodes_in_process_with_a_tiny_clip(comfy):
    """The CLIP path through ComfyUI's model management (no CLIP file can be had offline)."""
    script = Path(__file__).with_name("comfyui_node_script.py")
    run = subprocess.run([comfy.python, str(script), str(COMFYUI), str(comfy.weights_dir)], cwd=COMFYUI,
                         capture_output=True, text=True, timeout=RUN_S)
    assert run.returncode == 0, run.stderr[-4000:]
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["asked"]["choice"] == "tiny-clip" and r["asked"]["dtype"] == "torch.float32"     # auto on CPU
    assert any(d.endswith("clip") for d in r["asked"]["dirs"])
    assert r["has_clip"] and r["clip_patcher"] == "ModelPatcher" and r["same_clip_patcher"]
    prior = np.array(r["prior"])
    assert prior.shape == (2, 4) and (prior >= 0).all() and (prior <= 1).all()
    assert np.allclose(prior[:, 2], 0.75) and r["prior_source"] == "clip+manual"
    assert r["summary"].startswith("#1: ") and "snow 0.75" in r["summary"] and r["summary"].endswith("(clip+manual)")
    assert r["density_shape"] == [2, 40, 56] and 0 <= r["density_range"][0] <= r["density_range"][1] <= 1
    assert r["heat_shape"] == [2, 40, 56, 3]
    assert len(r["scores"]) == 2 and all(0 <= s <= 1 for s in r["scores"])
    assert set(r["tiers"]) <= {"low", "medium", "high"} and len(r["probs"]) == 2
    assert r["ui"]["text"][0].count("\n") == 1 and r["ui"]["text"][0].endswith(" (clip)")
    assert r["restored_shape"] == [2, 40, 56, 3] and r["restored_device"] == "cpu"
    assert 0 <= r["restored_range"][0] <= r["restored_range"][1] <= 1 and r["changed"] > 0.01
