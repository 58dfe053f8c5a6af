"""The pack's ComfyUI rules, checked on the source: one V3 entrypoint and no V1 mappings beside it
(ComfyUI would ignore the entrypoint), ComfyUI imported only in nodes/, devices only through
comfy.model_management."""
import ast
from pathlib import Path

import weather_restore

ROOT = Path(weather_restore.__file__).resolve().parent
COMFY_MODULES = {"comfy", "comfy_api", "comfy_execution", "folder_paths", "nodes", "server", "node_helpers"}


def imported_roots(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_only_the_v3_entrypoint_is_exported():
    assert callable(weather_restore.comfy_entrypoint)
    for name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "NODES_LIST"):
        assert not hasattr(weather_restore, name), f"{name} beside comfy_entrypoint makes ComfyUI skip the V3 nodes"


def test_comfyui_is_imported_only_in_nodes():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for folder in ("pipeline", "models", "hub")
                 for p in (ROOT / folder).rglob("*.py") for m in imported_roots(p) if m in COMFY_MODULES]
    assert not offenders
    assert {"comfy_api"} <= {m for p in (ROOT / "nodes").glob("*.py") for m in imported_roots(p)}


def test_devices_only_through_model_management():
    for folder in ("nodes", "pipeline"):
        for p in (ROOT / folder).glob("*.py"):
            text = p.read_text()
            assert ".cuda(" not in text and "torch.cuda.empty_cache" not in text, p


def test_quality_text_reaches_the_node_through_the_web_extension():
    """Quality Perceiver returns its report as the V3 `text` UI output; web/weather_restore.js (served
    through WEB_DIRECTORY) draws it on that node and does not save it into workflows."""
    assert weather_restore.WEB_DIRECTORY == "./web"
    js = (ROOT / "web" / "weather_restore.js").read_text()
    assert 'import { app } from "../../scripts/app.js"' in js and "registerExtension" in js
    assert "WeatherRestore_QualityPerceiver" in js and "message?.text" in js and "serialize = false" in js
    source = (ROOT / "nodes" / "quality.py").read_text()
    assert "is_output_node=True" in source and "ui=ui.PreviewText(quality_text(" in source
