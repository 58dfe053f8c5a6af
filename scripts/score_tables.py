"""Write the score tables of docs/BENCHMARKS.md and the default-weights line of README.md from
weights_manifest.json, so that no score is ever copied by hand.

    .venv/bin/python scripts/score_tables.py           rewrite the generated blocks
    .venv/bin/python scripts/score_tables.py --check   exit 1 when a committed block is stale

A generated block sits between `<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->`;
the text around it is written by hand. tests/test_docs.py runs the check. The restorer marked
`"default": true` comes first; a new entry (a v4 network) appears as soon as it is in the manifest.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "weights_manifest.json"
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
README = ROOT / "README.md"
SET_NAMES = {"rain100L": "Rain100L", "hsts": "HSTS haze", "rain100L_targets_as_input": "Rain100L *targets* fed in (do no harm)"}


def restorers(manifest: dict) -> list:
    """Restorer entries, the default first, then in manifest order."""
    es = [e for e in manifest["weights"] if e.get("kind") == "restorer"]
    return sorted(es, key=lambda e: not e.get("default"))


def default_entry(manifest: dict) -> dict:
    es = restorers(manifest)
    if not es:
        raise SystemExit("the manifest has no restorer entry")
    return es[0]


def _triple(s: dict) -> str:
    return f"{s['y_psnr']:.2f} / {s['y_ssim']:.4f} / {s['rgb_psnr']:.2f}"


def _label(e: dict) -> str:
    return f"`{e['id']}`" + (" (default)" if e.get("default") else "")


def score_table(manifest: dict) -> str:
    es = restorers(manifest)
    sets = list(dict.fromkeys(k for e in es for k in (e.get("scores") or {})))
    head = "| set | count | input vs target | " + " | ".join(_label(e) for e in es) + " |"
    lines = ["Y-PSNR (dB) / Y-SSIM / RGB-PSNR (dB), means over the images of each set.", "",
             head, "|---|---:|---|" + "---|" * len(es)]
    for name in sets:
        scored = [(e.get("scores") or {}).get(name) for e in es]
        first = next(s for s in scored if s)
        inp = next((s["input"] for s in scored if s and s.get("input")), None)
        cells = [f"**{_triple(s['model'])}**" if s and e.get("default") else _triple(s["model"]) if s else "-"
                 for e, s in zip(es, scored)]
        lines.append(f"| {SET_NAMES.get(name, name)} | {first.get('count', '?')} | "
                     f"{_triple(inp) if inp else '(identical)'} | " + " | ".join(cells) + " |")
    protocols = {s.get("protocol") for e in es for s in (e.get("scores") or {}).values() if s.get("protocol")}
    tiles = {(s.get("tile"), s.get("overlap")) for e in es for s in (e.get("scores") or {}).values() if s.get("tile")}
    lines.append("")
    lines += [f"Protocol: {p}." for p in sorted(protocols)]
    if tiles:
        lines.append("Tiles: " + ", ".join(f"{t} px, overlap {o}" for t, o in sorted(tiles)) + ".")
    return "\n".join(lines)


def weights_table(manifest: dict) -> str:
    lines = ["| weights | config | file | training stage | steps | minutes | started from | licence |",
             "|---|---|---:|---|---:|---:|---|---|"]
    for e in restorers(manifest):
        t = e.get("trained_on") or {}
        minutes = f"{t['train_seconds'] / 60:.0f}" if t.get("train_seconds") else "-"
        lines.append(f"| {_label(e)} | {(e.get('config') or {}).get('name', '?')} | {e['bytes'] / 1e6:.1f} MB | "
                     f"{t.get('train_config', '-')} | {t.get('steps', '-')} | {minutes} | "
                     f"{t.get('init_weights') or '-'} | {e.get('licence', '?')} |")
    return "\n".join(lines)


def default_line(manifest: dict) -> str:
    e = default_entry(manifest)
    cfg = (e.get("config") or {}).get("name", "?")
    return (f"The default weights are **`{e['id']}`** (`{cfg}` config, {e['bytes'] / 1e6:.1f} MB, licence "
            f"{e.get('licence', '?')}); their scores beside the other bundled weights are in "
            f"[docs/BENCHMARKS.md](docs/BENCHMARKS.md).")


def blocks(manifest: dict) -> dict:
    """{path: {block name: text}} of every generated block."""
    return {BENCHMARKS: {"scores": score_table(manifest), "weights": weights_table(manifest)},
            README: {"default-weights": default_line(manifest)}}


def fill(text: str, name: str, body: str, where: str = "") -> str:
    pattern = re.compile(rf"(<!-- BEGIN generated:{re.escape(name)} -->\n).*?(<!-- END generated:{re.escape(name)} -->)",
                         re.S)
    if not pattern.search(text):
        raise SystemExit(f"{where}: no block '{name}' (<!-- BEGIN generated:{name} --> ... <!-- END generated:{name} -->)")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text, count=1)


def render_all(manifest: dict) -> dict:
    """{path: full new text} for every file with generated blocks."""
    out = {}
    for path, named in blocks(manifest).items():
        text = path.read_text()
        for name, body in named.items():
            text = fill(text, name, body, str(path))
        out[path] = text
    return out


def main(argv) -> int:
    manifest = json.loads(MANIFEST.read_text())
    stale = []
    for path, text in render_all(manifest).items():
        if path.read_text() != text:
            stale.append(path)
            if "--check" not in argv:
                tmp = path.with_name(f".{path.name}.part")
                tmp.write_text(text)
                tmp.replace(path)
                print(f"wrote {path.relative_to(ROOT)}")
    if "--check" in argv and stale:
        print("stale: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
              + "; run .venv/bin/python scripts/score_tables.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
