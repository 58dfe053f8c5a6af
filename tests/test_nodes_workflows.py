"""example_workflows/: up to date with their builder (scripts/make_example_workflows.py), widgets as the
nodes declare them, consistent links, no overlapping nodes, a thumbnail each, the scenarios the issue
asks for; and the UI -> API conversion used by the end-to-end test (no ComfyUI needed)."""
import itertools
import json

import pytest

from comfy_api_format import ui_to_api
from fake_comfy import WIDGET_KINDS, fake_comfy
from scripts_loader import load_script

mew = load_script("make_example_workflows")
NODES, OUT_DIR, build, dumps = mew.NODES, mew.OUT_DIR, mew.build, mew.dumps

P = "WeatherRestore_"
FILES = sorted(OUT_DIR.glob("*.json"))


def load(stem):
    return json.loads((OUT_DIR / f"{stem}.json").read_text())


def test_committed_workflows_are_what_the_builder_writes():
    built = build()
    assert sorted(built) == [f.name for f in FILES]
    for name, wf in built.items():
        assert (OUT_DIR / name).read_text() == dumps(wf), \
            f"{name} is stale: run .venv/bin/python scripts/make_example_workflows.py"


def test_builder_widgets_are_the_nodes_widgets(tmp_path):
    """Positional widget values must match each pack node's widget inputs, in order, with their defaults."""
    with fake_comfy(tmp_path) as fake:
        for cls in (fake.nodes.LoadWeatherModel, fake.nodes.ClipWeatherPrior, fake.nodes.DensityMap,
                    fake.nodes.Restore, fake.nodes.QualityPerceiver):
            schema = cls.define_schema()
            widgets = [i for i in schema.inputs if i.kind in WIDGET_KINDS]
            assert [w.default for w in widgets] == NODES[schema.node_id][2], schema.node_id
            sockets = [i.name for i in schema.inputs if i.kind not in WIDGET_KINDS]
            assert sockets == [n for n, _ in NODES[schema.node_id][0]], schema.node_id


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


def box(n):
    """(x0, y0, x1, y1) of a node on the canvas, its title bar (above pos) included."""
    x, y = n["pos"]
    w, h = n["size"]
    return x, y - mew.TITLE_H, x + w, y + h


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_no_two_nodes_overlap(path):
    nodes = json.loads(path.read_text())["nodes"]
    for a, b in itertools.combinations(nodes, 2):
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = box(a), box(b)
        apart = ax1 + 10 <= bx0 or bx1 + 10 <= ax0 or ay1 + 10 <= by0 or by1 + 10 <= ay0
        assert apart, f"{a.get('title', a['type'])} and {b.get('title', b['type'])} overlap in {path.name}"
    for n in nodes:                                             # room for every slot and widget
        ins, outs, widgets = NODES[n["type"]]
        assert n["size"][1] >= max(len(ins), len(outs)) * 20 + len(widgets) * 24, n["type"]
        assert n["pos"][1] >= mew.TITLE_H and n["pos"][0] >= 0


def test_the_layout_check_can_fail():
    a = {"pos": [0, 30], "size": [300, 200]}
    assert box(a) == (0, 0, 300, 230)
    assert box({"pos": [100, 250], "size": [10, 10]})[1] < box(a)[3]      # a title bar under a node overlaps


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_workflow_has_a_thumbnail_and_a_telling_name(path):
    thumb = path.with_suffix(".jpg")                            # what the template browser loads
    assert thumb.is_file(), f"{thumb.name} missing: run .venv/bin/python scripts/make_workflow_thumbnails.py"
    data = thumb.read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and len(data) < 120_000
    words = path.stem.split("-")
    assert len(words) >= 4 and all(w.isalnum() and w == w.lower() for w in words)   # a one-line description


def edges(wf):
    nodes = {n["id"]: n for n in wf["nodes"]}
    return {(nodes[s]["type"], nodes[s]["outputs"][so]["name"], nodes[d]["type"], nodes[d]["inputs"][di]["name"])
            for _, s, so, d, di, _ in wf["links"]}


def test_the_scenarios_of_the_issue_are_there():
    assert (P + "Restore", "image", "SaveImage", "images") in edges(load("remove-rain-snow-and-haze-from-a-photo"))
    assert (P + "Restore", "image", "ImageScaleBy", "image") in edges(load("restore-first-then-upscale-2x"))
    large = load("restore-a-large-photo-with-weather-scale")
    assert next(n for n in large["nodes"] if n["type"] == P + "Restore")["widgets_values"][5] == 2.0
    assert any("weather_scale" in n["widgets_values"][0] for n in large["nodes"] if n["type"] == "MarkdownNote")
    q = edges(load("score-image-quality-before-and-after-restoring"))
    assert ("LoadImage", "IMAGE", P + "QualityPerceiver", "image") in q
    assert (P + "Restore", "image", P + "QualityPerceiver", "image") in q
    d = load("see-where-the-weather-is-with-a-density-heat-map")
    assert (P + "DensityMap", "heatmap", "PreviewImage", "images") in edges(d)
    assert next(n for n in d["nodes"] if n["type"] == P + "DensityMap")["widgets_values"] == ["auto", "normalised"]
    painted = load("restore-only-inside-a-painted-mask")
    assert ("LoadImage", "MASK", P + "Restore", "region") in edges(painted)
    notes = [n for n in painted["nodes"] if n["type"] == "MarkdownNote"]
    assert "Paint the mask first" in notes[0]["title"] and "only where you paint" in notes[0]["widgets_values"][0]
    assert "paint" in next(n for n in painted["nodes"] if n["type"] == "LoadImage")["title"]
    g = edges(load("guide-the-restorer-by-hand-with-a-prior-and-a-density"))
    assert (P + "ClipPrior", "prior", P + "Restore", "prior") in g
    assert (P + "DensityMap", "density", P + "Restore", "density") in g
    clip = load("clip-guided-restore-needs-a-clip-file")
    by_type = {n["type"]: n for n in clip["nodes"]}
    assert by_type[P + "LoadModel"]["widgets_values"][1] == mew.CLIP_ID
    assert by_type[P + "LoadModel"]["widgets_values"][3] is False                   # no download unasked
    assert by_type[P + "ClipPrior"]["widgets_values"][0] == by_type[P + "DensityMap"]["widgets_values"][0] == "clip"
    assert "models/clip" in by_type["MarkdownNote"]["widgets_values"][0]
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
