"""Writes example_workflows/*.json, ComfyUI's UI (LiteGraph) format, from the short graphs below.

    .venv/bin/python scripts/make_example_workflows.py      (re)write the files

ComfyUI's template browser shows a custom pack's workflow by its file name (title, and the name
with '-' and '_' read as spaces as its one-line description) and `<name>.jpg` as its thumbnail
(scripts/make_workflow_thumbnails.py), so each file is named by what it does. Nodes are laid out
from their content (slots, widgets, title bar) with room between them: none overlap, also after
Quality Perceiver grows its score text. tests/test_nodes_workflows.py checks the committed files
against this script, the widgets against the nodes' schemas, and the layout; tests/test_comfyui_e2e.py
runs every workflow in a real ComfyUI. Widget values are positional, in the order of each node's
widget inputs.
"""
import json
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "example_workflows"
SAMPLE = "sample_rain.png"
P = "WeatherRestore_"
CLIP_ID = "openclip-vit-b-32-openai"             # the manifest's default CLIP

# node type -> (input sockets [(name, type)], output sockets [(name, type)], default widget values)
NODES = {
    "LoadImage": ([], [("IMAGE", "IMAGE"), ("MASK", "MASK")], [SAMPLE, "image"]),
    "SaveImage": ([("images", "IMAGE")], [], ["weather/restored"]),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "ImageScaleBy": ([("image", "IMAGE")], [("IMAGE", "IMAGE")], ["lanczos", 2.0]),
    "MaskToImage": ([("mask", "MASK")], [("IMAGE", "IMAGE")], []),
    "PreviewAny": ([("source", "*")], [], []),
    "MarkdownNote": ([], [], [""]),
    P + "LoadModel": ([], [("weather_model", "WEATHER_MODEL")], ["default (bundled)", "none", "auto", False]),
    P + "ClipPrior": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE")],
                      [("prior", "WEATHER_PRIOR"), ("summary", "STRING")], ["auto", -1.0, -1.0, -1.0, -1.0]),
    P + "DensityMap": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE")],
                       [("density", "MASK"), ("heatmap", "IMAGE")], ["auto", "normalised"]),
    P + "Restore": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE"), ("prior", "WEATHER_PRIOR"),
                     ("density", "MASK"), ("region", "MASK")], [("image", "IMAGE")], [1.0, 16, 512, 64, False, 1.0, False]),
    P + "QualityPerceiver": ([("weather_model", "WEATHER_MODEL"), ("image", "IMAGE")],
                             [("score", "FLOAT"), ("tier", "STRING"), ("probabilities", "STRING")], ["auto"]),
}
LIST_OUTPUTS = {P + "QualityPerceiver"}          # is_output_list outputs are drawn as a grid (shape 6)
# room for what a node draws beyond its slots and widgets: image previews, the score text, notes
EXTRA = {"LoadImage": (320, 300), "SaveImage": (340, 300), "PreviewImage": (340, 280), "PreviewAny": (300, 100),
         "MarkdownNote": (400, 0), P + "QualityPerceiver": (300, 90)}
TITLE_H, SLOT_H, WIDGET_H, PAD = 30, 22, 26, 16  # LiteGraph's title bar, slot row, widget row and margin
GAP = 40                                         # between neighbouring nodes


def node_size(type_: str, text: str = "") -> list:
    """[width, height] of a node's body (below its title bar), from its slots, widgets and content."""
    ins, outs, widgets = NODES[type_]
    w, extra = EXTRA.get(type_, (300, 0))
    if type_ == "MarkdownNote":                  # about 52 characters per line of 400 px, 20 px per line
        lines = sum(max(1, -(-len(line) // 52)) for line in text.split("\n"))
        return [w, 20 * lines + 40]
    return [w, max(len(ins), len(outs)) * SLOT_H + len(widgets) * WIDGET_H + PAD + extra]


class Graph:
    def __init__(self, name: str):
        self.name, self.nodes, self.links = name, [], []

    def node(self, type_: str, pos, widgets=None, title=None) -> dict:
        ins, outs, defaults = NODES[type_]
        values = list(defaults if widgets is None else widgets)
        n = {"id": len(self.nodes) + 1, "type": type_, "pos": [int(pos[0]), int(pos[1])],
             "size": node_size(type_, values[0] if type_ == "MarkdownNote" else ""),
             "flags": {}, "order": len(self.nodes), "mode": 0,
             "inputs": [{"name": a, "type": t, "link": None} for a, t in ins],
             "outputs": [{"name": a, "type": t, "links": None, **({"shape": 6} if type_ in LIST_OUTPUTS else {})}
                         for a, t in outs],
             "properties": {} if type_ == "MarkdownNote" else {"Node name for S&R": type_},
             "widgets_values": values}
        if title:
            n["title"] = title
        if type_ == "MarkdownNote":
            n.update(color="#432", bgcolor="#653")
        self.nodes.append(n)
        return n

    def note(self, pos, text: str, title="How to use") -> dict:
        return self.node("MarkdownNote", pos, [text], title)

    @staticmethod
    def below(n: dict) -> int:
        """y of a node placed under n (its title bar included)."""
        return n["pos"][1] + n["size"][1] + GAP + TITLE_H

    @staticmethod
    def right(n: dict) -> int:
        return n["pos"][0] + n["size"][0] + GAP

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
                "extra": {"ds": {"scale": 0.8, "offset": [40, 40]}}, "version": 0.4}


def loader_pair(g: Graph, model_widgets=None, image_title=None):
    """Load Weather Model above Load Image in the first column."""
    model = g.node(P + "LoadModel", (0, TITLE_H), model_widgets)
    image = g.node("LoadImage", (0, g.below(model)), title=image_title)
    return image, model


MODEL_NOTE = ("**Load Weather Model** uses the pack's default weights (the manifest's default); other restorer "
              "weights go in `ComfyUI/models/weather`. Choose a CLIP to let CLIP estimate the weather; 'none' "
              "uses the restorer's own heads.")


def restore_and_save(name: str, restore_widgets=None, save_widgets=None):
    """Load Image + Load Weather Model -> Restore -> Save Image; -> (graph, the Load Image node)."""
    g = Graph(name)
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (g.right(model), TITLE_H), restore_widgets)
    save = g.node("SaveImage", (g.right(restore), TITLE_H), save_widgets)
    g.link(model, "weather_model", restore, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(restore, "image", save, "images")
    return g, image


def remove_rain_snow_and_haze_from_a_photo() -> Graph:
    g, image = restore_and_save("restore_and_save")
    g.note((0, g.below(image)), "Remove rain, snow and haze from a photo.\n\n1. Load your image.\n"
           "2. Queue.\n\n" + MODEL_NOTE + "\n\nLower **strength** to keep some of the weather; large images "
           "are restored in tiles. For a large photo whose streaks are several pixels wide, set "
           "**weather_scale** to 2-3.")
    return g


def restore_a_large_photo_with_weather_scale() -> Graph:
    g, image = restore_and_save("restore_large_photo", [1.0, 16, 512, 64, False, 2.0, False], ["weather/restored_large"])
    g.note((0, g.below(image)), "## A large photo\n\nThe restorer learned rain streaks a few pixels wide, as in "
           "photos of about 480x320. In a large photo the same rain is wider. **weather_scale** 2 restores a copy "
           "shrunk 2x first, adds what it removed to the full-size photo, then runs the full-resolution pass.\n\n"
           "Use 2-3 when the streaks are several pixels wide; keep 1 when they are fine (1-2 px): there it "
           "costs a little.", title="A large photo: weather_scale")
    return g


def restore_first_then_upscale_2x() -> Graph:
    g = Graph("restore_then_upscale")
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (g.right(model), TITLE_H))
    scale = g.node("ImageScaleBy", (g.right(restore), TITLE_H))
    save = g.node("SaveImage", (g.right(scale), TITLE_H), ["weather/restored_x2"])
    g.link(model, "weather_model", restore, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(restore, "image", scale, "image")
    g.link(scale, "IMAGE", save, "images")
    g.note((0, g.below(image)), "Restore first, then upscale: upscaling rain streaks only makes "
           "them bigger.\n\nThe upscale is the core **Upscale Image By** node (lanczos, x2); an upscale model "
           "(**Load Upscale Model** + **Upscale Image (using Model)**) fits in its place.")
    return g


def score_image_quality_before_and_after_restoring() -> Graph:
    g = Graph("quality_before_after")
    image, model = loader_pair(g)
    restore = g.node(P + "Restore", (g.right(model), TITLE_H))
    before = g.node(P + "QualityPerceiver", (restore["pos"][0], g.below(restore)), title="Quality Perceiver (before)")
    preview = g.node("PreviewImage", (g.right(restore), TITLE_H))
    after = g.node(P + "QualityPerceiver", (preview["pos"][0], g.below(preview)), title="Quality Perceiver (after)")
    for n in (restore, before, after):
        g.link(model, "weather_model", n, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(image, "IMAGE", before, "image")
    g.link(restore, "image", after, "image")
    g.link(restore, "image", preview, "images")
    g.note((g.right(preview), TITLE_H), "Score the image before and after restoration: 0 = degraded, 1 = clean, "
           "and the quality tier (low / medium / high), per image of the batch. After a run each Quality "
           "Perceiver shows its score and tier on the node; its outputs can feed any node that takes a FLOAT "
           "or STRING.")
    return g


def see_where_the_weather_is_with_a_density_heat_map() -> Graph:
    g = Graph("density_map_preview")
    image, model = loader_pair(g)
    density = g.node(P + "DensityMap", (g.right(model), TITLE_H))
    heat = g.node("PreviewImage", (g.right(density), TITLE_H), title="Heat map")
    to_img = g.node("MaskToImage", (density["pos"][0], g.below(heat)))
    mask_preview = g.node("PreviewImage", (heat["pos"][0], g.below(heat)), title="Density mask")
    g.link(model, "weather_model", density, "weather_model")
    g.link(image, "IMAGE", density, "image")
    g.link(density, "heatmap", heat, "images")
    g.link(density, "density", to_img, "mask")
    g.link(to_img, "IMAGE", mask_preview, "images")
    g.note((0, g.below(image)), "Where is the weather? **Density Map** estimates per pixel how "
           "strongly the image is degraded (dark: clear, yellow: the densest part of this image with "
           "heatmap_scale 'normalised'; 'absolute' makes yellow = 1). It is the map Restore uses; its MASK "
           "output can drive **Restore**'s density input, be edited with mask nodes, or be replaced by a "
           "mask you paint.")
    return g


def restore_only_inside_a_painted_mask() -> Graph:
    g = Graph("restore_painted_region")
    image, model = loader_pair(g, image_title="Load Image (paint the region here first)")
    restore = g.node(P + "Restore", (g.right(model), TITLE_H), [1.0, 24, 512, 64, False, 1.0, False])
    note = g.note((restore["pos"][0], g.below(restore)), "## Paint the mask first\n\nThis workflow restores **only "
                  "where you paint**; with nothing painted it returns the image unchanged.\n\n1. Right-click "
                  "**Load Image** > *Open in MaskEditor*.\n2. Paint over the area to clean, then *Save*.\n"
                  "3. Queue.\n\nEverything outside the mask stays as it was; **feather** softens the edge "
                  "(pixels).", title="Paint the mask first")
    save = g.node("SaveImage", (max(g.right(restore), g.right(note)), TITLE_H), ["weather/restored_region"])
    g.link(model, "weather_model", restore, "weather_model")
    g.link(image, "IMAGE", restore, "image")
    g.link(image, "MASK", restore, "region")
    g.link(restore, "image", save, "images")
    return g


def prior_and_density_into_restore(g: Graph, image: dict, model: dict, prior_widgets, density_widgets,
                                    summary_title: str, save_prefix: str) -> dict:
    """CLIP Weather Prior and Density Map both feeding Restore, the prior's summary previewed; -> the save node."""
    prior = g.node(P + "ClipPrior", (g.right(model), TITLE_H), prior_widgets)
    density = g.node(P + "DensityMap", (prior["pos"][0], g.below(prior)), density_widgets)
    restore = g.node(P + "Restore", (g.right(prior), TITLE_H))
    summary = g.node("PreviewAny", (restore["pos"][0], g.below(restore)), title=summary_title)
    save = g.node("SaveImage", (g.right(restore), TITLE_H), [save_prefix])
    for n in (prior, density, restore):
        g.link(model, "weather_model", n, "weather_model")
        g.link(image, "IMAGE", n, "image")
    g.link(prior, "prior", restore, "prior")
    g.link(prior, "summary", summary, "source")
    g.link(density, "density", restore, "density")
    g.link(restore, "image", save, "images")
    return save


def guide_the_restorer_by_hand_with_a_prior_and_a_density() -> Graph:
    g = Graph("guided_restore")
    image, model = loader_pair(g)
    save = prior_and_density_into_restore(g, image, model, None, None, "Weather summary", "weather/restored_guided")
    g.note((save["pos"][0], g.below(save)), "Guide the restorer by hand: **CLIP Weather Prior** says which weather "
           "the image shows (set any type from 0 to 1 to override it, -1 keeps the estimate), **Density Map** "
           "where. Both go into **Restore**; any MASK can stand in for the density.")
    return g


def clip_guided_restore_needs_a_clip_file() -> Graph:
    g = Graph("clip_guided_restore")
    image, model = loader_pair(g, ["default (bundled)", CLIP_ID, "auto", False])
    save = prior_and_density_into_restore(g, image, model, ["clip", -1.0, -1.0, -1.0, -1.0], ["clip", "normalised"],
                                          "CLIP's weather summary", "weather/restored_clip")
    g.note((save["pos"][0], g.below(save)), "## The CLIP path\n\nHere **CLIP** (OpenAI ViT-B/32), not the "
           "restorer's own heads, estimates which weather the image shows (**CLIP Weather Prior**, source "
           "*clip*) and where (**Density Map**, source *clip*); **Restore** follows both.\n\nNo CLIP file is "
           "bundled: put `open_clip_ViT-B-32_openai.safetensors` into `ComfyUI/models/clip` (the error of "
           "**Load Weather Model** says where to download it, its size and sha256), or switch "
           "**download_clip** on to download it once (about 605 MB).", title="CLIP path: needs a CLIP file")
    return g


WORKFLOWS = [remove_rain_snow_and_haze_from_a_photo, restore_a_large_photo_with_weather_scale, restore_first_then_upscale_2x,
             score_image_quality_before_and_after_restoring, see_where_the_weather_is_with_a_density_heat_map,
             restore_only_inside_a_painted_mask, guide_the_restorer_by_hand_with_a_prior_and_a_density,
             clip_guided_restore_needs_a_clip_file]


def file_stem(builder) -> str:
    """The template browser's title and one-line description: the builder's name, words by '-'."""
    return builder.__name__.replace("_", "-")


def build() -> dict:
    return {file_stem(f) + ".json": f().to_json() for f in WORKFLOWS}


def dumps(workflow: dict) -> str:
    return json.dumps(workflow, indent=2) + "\n"


if __name__ == "__main__":
    OUT_DIR.mkdir(exist_ok=True)
    built = build()
    for old in OUT_DIR.glob("*.json"):
        if old.name not in built:
            old.unlink()
            print("removed", old)
    for name, wf in built.items():
        (OUT_DIR / name).write_text(dumps(wf))
        print("wrote", OUT_DIR / name)
