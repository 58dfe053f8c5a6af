"""ComfyUI UI-format workflows (what the editor saves and the template browser opens) -> API-format
prompts (what POST /prompt runs), using the node definitions of GET /object_info.

UI widgets are stored positionally in `widgets_values`, in the order of each node's widget inputs
(required, then optional); a seed with control_after_generate and an image-upload combo each store
one extra value after their own. Nodes that only exist in the editor (notes) and muted or bypassed
nodes are left out.
"""
from typing import Dict, Optional

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SKIPPED_MODES = {2, 4}                                   # muted, bypassed


def is_widget(spec) -> bool:
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not opts.get("forceInput")


def extra_values(spec) -> int:
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return int(bool(opts.get("control_after_generate"))) + int(bool(opts.get("image_upload")))


def ui_to_api(workflow: dict, object_info: dict, overrides: Optional[Dict[str, dict]] = None) -> dict:
    """overrides: {node type: {input name: value}} applied after conversion (e.g. the weights file)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        kind = node["type"]
        if node.get("mode", 0) in SKIPPED_MODES or kind not in object_info:
            if kind not in object_info and node.get("outputs"):
                raise KeyError(f"node {node['id']} has type {kind!r}, which this ComfyUI does not know")
            continue
        info = object_info[kind]["input"]
        inputs = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, origin, origin_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = [str(origin), origin_slot]
        values = list(node.get("widgets_values") or [])
        i = 0
        for section in ("required", "optional"):
            for name, spec in info.get(section, {}).items():
                if not is_widget(spec):
                    continue
                if i >= len(values):
                    raise ValueError(f"node {node['id']} ({kind}) has {len(values)} widget values; "
                                     f"its widget '{name}' has none")
                inputs.setdefault(name, values[i])
                i += 1 + extra_values(spec)
        if i != len(values):
            raise ValueError(f"node {node['id']} ({kind}) has {len(values)} widget values but {i} widgets")
        inputs.update((overrides or {}).get(kind, {}))
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt
