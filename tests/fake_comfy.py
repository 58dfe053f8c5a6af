"""Just enough of ComfyUI's modules (comfy_api.latest, comfy.model_management, comfy.utils,
comfy.model_patcher, folder_paths) to run the pack's node adapters on CPU without ComfyUI.

    with fake_comfy(tmp_path) as fake:        # installs the modules, imports weather_restore.nodes
        fake.nodes.Restore.execute(...)
        fake.progress      -> every (value, total) the progress bars were given
        fake.interrupt     -> set True to press Cancel

Only the behaviour the nodes rely on is imitated; tests/test_comfyui_e2e.py runs the real thing.
"""
import contextlib
import importlib
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch


class _Socket:
    @classmethod
    def Input(cls, name, *args, **kw):
        return SimpleNamespace(kind=cls.__name__, name=name, args=args, **kw)

    @classmethod
    def Output(cls, *args, **kw):
        return SimpleNamespace(kind=cls.__name__, args=args, **kw)


WIDGET_KINDS = ("Combo", "Int", "Float", "Boolean", "String")


class NodeOutput:
    def __init__(self, *values, ui=None):
        self.values, self.ui = values, ui


class Interrupted(Exception):
    """comfy.model_management.InterruptProcessingException"""


@contextlib.contextmanager
def fake_comfy(root: Path):
    state = SimpleNamespace(progress=[], interrupt=False, loaded=[], nodes=None)
    io = types.SimpleNamespace(
        ComfyNode=type("ComfyNode", (), {}), Schema=lambda **kw: SimpleNamespace(**kw), NodeOutput=NodeOutput,
        Input=object, Custom=lambda name: type(name, (_Socket,), {}),
        **{k: type(k, (_Socket,), {}) for k in ("Combo", "Int", "Float", "Boolean", "String", "Image", "Mask")})
    ui = types.SimpleNamespace(PreviewText=lambda text: {"text": (text,)})
    latest = types.ModuleType("comfy_api.latest")
    latest.io, latest.ui, latest.ComfyExtension = io, ui, type("ComfyExtension", (), {})

    def throw():
        if state.interrupt:
            raise Interrupted("Processing interrupted")

    mm = types.ModuleType("comfy.model_management")
    mm.__dict__.update(
        get_torch_device=lambda: torch.device("cpu"), unet_offload_device=lambda: torch.device("cpu"),
        intermediate_device=lambda: torch.device("cpu"), should_use_fp16=lambda *a, **k: False,
        should_use_bf16=lambda *a, **k: False, soft_empty_cache=lambda *a, **k: None,
        load_models_gpu=lambda models, **kw: state.loaded.append((len(models), kw)),
        processing_interrupted=lambda: state.interrupt, throw_exception_if_processing_interrupted=throw,
        OOM_EXCEPTION=Exception, InterruptProcessingException=Interrupted)

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None):
            state.progress.append((value, total))

    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    patcher = types.ModuleType("comfy.model_patcher")
    patcher.ModelPatcher = lambda model, load_device, offload_device: SimpleNamespace(model=model)
    comfy = types.ModuleType("comfy")
    comfy.model_management, comfy.utils, comfy.model_patcher = mm, utils, patcher
    fp = types.ModuleType("folder_paths")
    folders = {"weather": [str(root / "models" / "weather")], "clip": [str(root / "models" / "clip")]}
    for ds in folders.values():
        Path(ds[0]).mkdir(parents=True, exist_ok=True)
    fp.__dict__.update(
        models_dir=str(root / "models"), folder_names_and_paths={},
        get_folder_paths=lambda name: folders[name],
        get_filename_list=lambda name: sorted(p.name for d in folders[name] for p in Path(d).iterdir()),
        get_full_path=lambda name, f: next((str(Path(d) / f) for d in folders[name] if (Path(d) / f).is_file()), None),
        get_input_directory=lambda: str(root / "input"))
    modules = {"comfy_api": types.ModuleType("comfy_api"), "comfy_api.latest": latest, "comfy": comfy,
               "comfy.model_management": mm, "comfy.utils": utils, "comfy.model_patcher": patcher, "folder_paths": fp}
    saved = {k: sys.modules.get(k) for k in modules}
    pack_nodes = [k for k in sys.modules if k.startswith("weather_restore.nodes")]
    for k in pack_nodes:
        del sys.modules[k]
    sys.modules.update(modules)
    try:
        state.nodes = importlib.import_module("weather_restore.nodes")
        yield state
    finally:
        for k in [k for k in sys.modules if k.startswith("weather_restore.nodes")]:
            del sys.modules[k]
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
