"""Writes example_workflows/*.json, ComfyUI's UI (LiteGraph) format, from the short graphs below.

    python tests/make_example_workflows.py        (re)write the files
tests/test_nodes_workflows.py checks that the committed files are what this script writes and
that their links are consistent; tests/test_comfyui_e2e.py runs every one in a real ComfyUI.
Widget values are positional, in the order of each node's widget inputs (required, then optional).
"""
import json
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "example_workflows"
SAMPLE = "sample_rain.png"
P = "WeatherRestore_"

# node type -> (input sockets [(name, type)], output sockets [(name, type)], default widget values)
NODES = {
    "LoadImage": ([], [("IMAGE", "IMAGE"), ("MASK", "MASK")], [SAMPLE, "image"]),
    "SaveImage": ([("images", "IMAGE")], [], ["weather/restored"]),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "ImageScaleBy": ([("image", "IMAGE")], [("IMAGE", "IMAGE")], ["lanczos", 2.0]),
    "MaskToImage": ([("mask", "MASK")], [("IMAGE", "IMAGE")], []),
    "PreviewAny": ([("source", "*")], [], []),
    "MarkdownNote": ([], [], [""]),
    P + "LoadModel": ([], [("weather_model", "WEATHER_MODEL")], ["default (bundled)", "none", "auto"]),
    P + "ClipPrior": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE")],
                      [("prior", "WEATHER_PRIOR"), ("summary", "STRING")], ["auto", -1.0, -1.0, -1.0, -1.0]),
    P + "DensityMap": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE")],
                       [("density", "MASK"), ("heatmap", "IMAGE")], ["auto"]),
    P + "Restore": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE"), ("prior", "WEATHER_PRIOR"),
                     ("density", "MASK"), ("region", "MASK")], [("image", "IMAGE")], [1.0, 16, 512, 64]),
    P + "QualityPerceiver": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE")],
                             [("score", "FLOAT"), ("tier", "STRING"), ("probabilities", "STRING")], ["auto"]),
}
LIST_OUTPUTS = {P + "QualityPerceiver"}          # is_output_list outputs are drawn as a grid (shape 6)
SIZES = {"LoadImage": [320, 340], "SaveImage": [360, 340], "PreviewImage": [360, 320], "MarkdownNote": [400, 200],
         P + "Restore": [300, 230], P + "ClipPrior": [300, 210], P + "LoadModel": [320, 110]}


class Graph:
    def __init__(self, name: str):
        self.name, self.nodes, self.links = name, [], []

    def node(self, type_: str, pos, widgets=None, title=None) -> dict:
        ins, outs, defaults = NODES[type_]
        n = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "size": SIZES.get(type_, [280, 120]),
             "flags": {}, "order": len(self.nodes), "mode": 0,
             "inputs": [{"name": a, "type": t, "link": None} for a, t in ins],
             "outputs": [{"name": a, "type": t, "links": None, **({"shape": 6} if type_ in LIST_OUTPUTS else {})}
                         for a, t in outs],
             "properties": {} if type_ == "MarkdownNote" else {"Node name for S&R": type_},
             "widgets_values": list(defaults if widgets is None else widgets)}
        if title:
            n["title"] = title
        if type_ == "MarkdownNote":
            n.update(color="#432", bgcolor="#653")
        self.nodes.append(n)
        return n

    def note(self, pos, text: str, title="How to use") -> dict:
        return self.node("MarkdownNote", pos, [text], title)

    def link(self, src: dict, out_name: str, dst: dict, in_name: str) -> None:
        o = next(i for i, s in enumerate(src["outputs"]) if s["name"] == out_name)
        t = next(i for i, s in enumerate(dst["inputs"]) if s["name"] == in_name)
        link_id = len(self.links) + 1
        typ = src["outputs"][o]["type"]
        self.links.append([link_id, src["id"], o, dst["id"], t, typ])
        src["outputs"][o]["links"] = (src["outputs"][o]["links"] or []) + [link_id]
        dst["inputs"][t]["link"] = link_id

    def to_json(self) -> dict:
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "weather-restore/" + self.name)), "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.9, "offset": [40, 40]}}, "version": 0.4}


def loader_pair(g: Graph):
    image = g.node("LoadImage", (0, 180))
    model = g.node(P + "LoadModel", (0, 40))
    return image, model


MODEL_NOTE = ("**Load Weather Model** uses the pack's bundled weights; other restorer weights go in "
              "`ComfyUI/models/weather`. Choose a CLIP to let CLIP estimate the weather; 'none' uses the "
              "restorer's own heads.")


def restore_and_save() -> Graph:
    g = Graph("restore_and_save")
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (380, 40))
    save = g.node("SaveImage", (720, 40))
    g.link(model, "weather_model", restore, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(restore, "image", save, "images")
    g.note((380, 320), "Remove rain, snow and haze from a photo.\n\n1. Load your image.\n2. Queue.\n\n" + MODEL_NOTE
           + "\n\nLower **strength** to keep some of the weather; large images are restored in tiles.")
    return g


def restore_then_upscale() -> Graph:
    g = Graph("restore_then_upscale")
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (380, 40))
    scale = g.node("ImageScaleBy", (720, 40))
    save = g.node("SaveImage", (1040, 40), ["weather/restored_x2"])
    g.link(model, "weather_model", restore, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(restore, "image", scale, "image")
    g.link(scale, "IMAGE", save, "images")
    g.note((380, 320), "Restore first, then upscale: upscaling rain streaks only makes them bigger.\n\n"
           "The upscale is the core **Upscale Image By** node (lanczos, x2); an upscale model "
           "(**Load Upscale Model** + **Upscale Image (using Model)**) fits in its place.")
    return g


def quality_before_after() -> Graph:
    g = Graph("quality_before_after")
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (380, 40))
    before = g.node(P + "QualityPerceiver", (380, 320), title="Quality Perceiver (before)")
    after = g.node(P + "QualityPerceiver", (720, 320), title="Quality Perceiver (after)")
    preview = g.node("PreviewImage", (720, 40))
    for n in (restore, before, after):
        g.link(model, "weather_model", n, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(image, "IMAGE", before, "image")
    g.link(restore, "image", after, "image")
    g.link(restore, "image", preview, "images")
    g.note((1080, 40), "Score the image before and after restoration: 0 = degraded, 1 = clean, and the "
           "quality tier (low / medium / high), per image of the batch. The scores show on the nodes; "
           "their outputs can feed any node that takes a FLOAT or STRING.")
    return g


def density_map_preview() -> Graph:
    g = Graph("density_map_preview")
    image, model = loader_pair(g)
    density = g.node(P + "DensityMap", (380, 40))
    heat = g.node("PreviewImage", (720, 40), title="Heat map")
    to_img = g.node("MaskToImage", (720, 380))
    mask_preview = g.node("PreviewImage", (1000, 380), title="Density mask")
    g.link(model, "weather_model", density, "weather_model")
    g.link(image, "IMAGE", density, "image")
    g.link(density, "heatmap", heat, "images")
    g.link(density, "density", to_img, "mask")
    g.link(to_img, "IMAGE", mask_preview, "images")
    g.note((380, 220), "Where is the weather? **Density Map** estimates per pixel how strongly the image is "
           "degraded (dark: clear, yellow: dense). Its MASK output can drive **Restore**'s density input, "
           "be edited with mask nodes, or be replaced by a mask you paint.")
    return g


def restore_painted_region() -> Graph:
    g = Graph("restore_painted_region")
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (380, 40), [1.0, 24, 512, 64])
    save = g.node("SaveImage", (720, 40), ["weather/restored_region"])
    g.link(model, "weather_model", restore, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(image, "MASK", restore, "region")
    g.link(restore, "image", save, "images")
    g.note((380, 320), "Restore only where you paint.\n\n1. Right-click **Load Image** > *Open in MaskEditor*.\n"
           "2. Paint over the area to clean and save.\n3. Queue.\n\nEverything outside the mask stays as it "
           "was; **feather** softens the edge (pixels). An unpainted image is left unchanged.")
    return g


def guided_restore() -> Graph:
    g = Graph("guided_restore")
    image, model = loader_pair(g)
    prior = g.node(P + "ClipPrior", (380, 40))
    density = g.node(P + "DensityMap", (380, 300))
    restore = g.node(P + "Restore", (720, 40))
    save = g.node("SaveImage", (1060, 40), ["weather/restored_guided"])
    summary = g.node("PreviewAny", (720, 320), title="Weather summary")
    for n in (prior, density, restore):
        g.link(model, "weather_model", n, "weather_model")
        g.link(image, "IMAGE", n, "image")
    g.link(prior, "prior", restore, "prior")
    g.link(prior, "summary", summary, "source")
    g.link(density, "density", restore, "density")
    g.link(restore, "image", save, "images")
    g.note((1060, 420), "Guide the restorer by hand: **CLIP Weather Prior** says which weather the image shows "
           "(set any type from 0 to 1 to override it, -1 keeps the estimate), **Density Map** where. "
           "Both go into **Restore**; any MASK can stand in for the density.")
    return g


WORKFLOWS = [restore_and_save, restore_then_upscale, quality_before_after, density_map_preview,
             restore_painted_region, guided_restore]


def build() -> dict:
    return {f.__name__ + ".json": f().to_json() for f in WORKFLOWS}


def dumps(workflow: dict) -> str:
    return json.dumps(workflow, indent=2) + "\n"


if __name__ == "__main__":
    OUT_DIR.mkdir(exist_ok=True)
    for name, wf in build().items():
        (OUT_DIR / name).write_text(dumps(wf))
        print("wrote", OUT_DIR / name)
