"""example_workflows/: up to date with their builder, consistent links, the scenarios the issue asks
for; and the UI -> API conversion used by the end-to-end test (no ComfyUI needed)."""
import json

import pytest


from comfy_api_format import ui_to_api
from make_example_workflows import NODES, OUT_DIR, build, dumps

P = "WeatherRestore_"
FILES = sorted(OUT_DIR.glob("*.json"))


def load(name):
    return json.loads((OUT_DIR / name).read_text())


def test_committed_workflows_are_what_the_builder_writes():
    built = build()
    assert sorted(built) == [f.name for f in FILES]
    for name, wf in built.items():
        assert (OUT_DIR / name).read_text() == dumps(wf), f"{name} is stale: run python tests/make_example_workflows.py"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_links_are_consistent(path):
    wf = json.loads(path.read_text())
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert len(nodes) == len(wf["nodes"]) and wf["last_node_id"] >= max(nodes)
    assert wf["last_link_id"] >= max(link[0] for link in wf["links"])
    for link_id, src, src_slot, dst, dst_slot, typ in wf["links"]:
        out, inp = nodes[src]["outputs"][src_slot], nodes[dst]["inputs"][dst_slot]
        assert link_id in out["links"] and inp["link"] == link_id
        assert out["type"] == typ and inp["type"] in (typ, "*")
    linked = {link[0] for link in wf["links"]}
    for n in wf["nodes"]:
        assert n["type"] in NODES
        assert len(n["widgets_values"]) == len(NODES[n["type"]][2])
        for slot in n["inputs"]:
            assert slot["link"] is None or slot["link"] in linked
    restores = [n for n in wf["nodes"] if n["type"] == P + "Restore"]
    for r in restores:                                          # model and image always connected
        assert all(s["link"] is not None for s in r["inputs"] if s["name"] in ("weather_model", "image"))


def edges(wf):
    nodes = {n["id"]: n for n in wf["nodes"]}
    return {(nodes[s]["type"], nodes[s]["outputs"][so]["name"], nodes[d]["type"], nodes[d]["inputs"][di]["name"])
            for _, s, so, d, di, _ in wf["links"]}


def test_the_scenarios_of_the_issue_are_there():
    assert (P + "Restore", "image", "SaveImage", "images") in edges(load("restore_and_save.json"))
    assert (P + "Restore", "image", "ImageScaleBy", "image") in edges(load("restore_then_upscale.json"))
    q = edges(load("quality_before_after.json"))
    assert ("LoadImage", "IMAGE", P + "QualityPerceiver", "image") in q
    assert (P + "Restore", "image", P + "QualityPerceiver", "image") in q
    assert (P + "DensityMap", "heatmap", "PreviewImage", "images") in edges(load("density_map_preview.json"))
    assert ("LoadImage", "MASK", P + "Restore", "region") in edges(load("restore_painted_region.json"))
    g = edges(load("guided_restore.json"))
    assert (P + "ClipPrior", "prior", P + "Restore", "prior") in g
    assert (P + "DensityMap", "density", P + "Restore", "density") in g
    for f in FILES:
        notes = [n for n in json.loads(f.read_text())["nodes"] if n["type"] == "MarkdownNote"]
        assert notes and notes[0]["widgets_values"][0].strip()          # every workflow explains itself


OBJECT_INFO = {
    "LoadImage": {"input": {"required": {"image": [["a.png"], {"image_upload": True}]}}},
    "KSampler": {"input": {"required": {
        "model": ["MODEL"], "seed": ["INT", {"control_after_generate": True}], "steps": ["INT", {}],
        "sampler_name": [["euler", "ddim"]], "latent": ["LATENT"]}}},
    "Scale": {"input": {"required": {"image": ["IMAGE"], "factor": ["FLOAT", {}]},
                        "optional": {"mode": ["COMBO", {"options": ["a", "b"]}], "mask": ["MASK"],
                                     "forced": ["INT", {"forceInput": True}]}}},
}


def test_ui_to_api_maps_widgets_links_and_skips_notes():
    wf = {"links": [[7, 1, 0, 3, 0, "IMAGE"]], "nodes": [
        {"id": 1, "type": "LoadImage", "inputs": [], "outputs": [{"links": [7]}], "widgets_values": ["a.png", "image"]},
        {"id": 2, "type": "KSampler", "inputs": [{"name": "model", "link": None}], "widgets_values": [42, "randomize", 20, "ddim"]},
        {"id": 3, "type": "Scale", "inputs": [{"name": "image", "link": 7}], "widgets_values": [2.5, "b"]},
        {"id": 4, "type": "MarkdownNote", "inputs": [], "outputs": [], "widgets_values": ["hi"]},
        {"id": 5, "type": "Scale", "mode": 4, "inputs": [], "widgets_values": [1.0, "a"]},
    ]}
    api = ui_to_api(wf, OBJECT_INFO, overrides={"Scale": {"factor": 3.0}})
    assert api == {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
        "2": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "sampler_name": "ddim"}},
        "3": {"class_type": "Scale", "inputs": {"image": ["1", 0], "factor": 3.0, "mode": "b"}},
    }


def test_ui_to_api_refuses_miscounted_widgets_and_unknown_nodes():
    bad = {"links": [], "nodes": [{"id": 1, "type": "Scale", "inputs": [], "widgets_values": [1.0]}]}
    with pytest.raises(ValueError, match="widget 'mode' has none"):
        ui_to_api(bad, OBJECT_INFO)
    extra = {"links": [], "nodes": [{"id": 1, "type": "Scale", "inputs": [], "widgets_values": [1.0, "a", 3]}]}
    with pytest.raises(ValueError, match="3 widget values but 2 widgets"):
        ui_to_api(extra, OBJECT_INFO)
    unknown = {"links": [], "nodes": [{"id": 1, "type": "Nope", "inputs": [], "outputs": [{"links": None}]}]}
    with pytest.raises(KeyError, match="'Nope'"):
        ui_to_api(unknown, OBJECT_INFO)
