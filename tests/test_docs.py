"""README.md and docs/: the score tables are the manifest's, README stays a user's page whose test
command prints pytest's closing line, and .ci/run runs exactly that command."""
import copy
import json
import re
import shlex
import tomllib
from pathlib import Path

from scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _score_tables():
    return load_script("score_tables")


def test_committed_tables_are_what_the_manifest_gives():
    st = _score_tables()
    for path, text in st.render_all(json.loads(st.MANIFEST.read_text())).items():
        assert path.read_text() == text, f"{path.name} is stale: run .venv/bin/python scripts/score_tables.py"


def test_tables_follow_the_manifest_default_and_its_numbers():
    st = _score_tables()
    m = json.loads(st.MANIFEST.read_text())
    old_default = next(e for e in m["weights"] if e.get("default") and e["kind"] == "restorer")
    v4 = copy.deepcopy(old_default)
    v4.update(id="weather-x-v4", default=True, bytes=3_300_000, config={"name": "x"})
    v4["scores"]["rain100L"]["model"]["y_psnr"] = 33.456
    old_default["default"] = False
    m["weights"].append(v4)
    table = st.score_table(m)
    header = next(line for line in table.splitlines() if line.startswith("| set"))
    assert header.index("`weather-x-v4` (default)") < header.index(f"`{old_default['id']}`")
    assert "**33.46 / " in table                                    # the default's cell, from its entry
    assert st.default_line(m).startswith("The default weights are **`weather-x-v4`** (`x` config, 3.3 MB")


def test_readme_is_a_short_users_page_starting_with_the_two_commands():
    lines = README.splitlines()
    assert len(lines) <= 150
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[0].startswith("bash scripts/setup.sh && .venv/bin/python weather.py restore assets/sample_rain.png")
    assert first_block[1].startswith("bash scripts/setup.sh && .venv/bin/python -m pytest")
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / link).is_file(), link
    for heading in ("## In ComfyUI", "## Command line", "## CLIP", "## Tests", "## Licence"):
        assert heading in README


def _readme_test_command():
    line = README.split("```bash\n", 1)[1].splitlines()[1]
    return line.split("#", 1)[0].strip()


def test_ci_runs_readme_test_command_and_pytest_prints_its_closing_line():
    command = _readme_test_command()
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert ci[-1].strip() == command
    addopts = shlex.split(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"])
    quiet = sum(a.count("q") for a in addopts + shlex.split(command) if re.fullmatch(r"-q+", a))
    quiet += sum(1 for a in addopts + shlex.split(command) if a == "--quiet")
    assert quiet < 2, "pytest -qq prints no 'N passed' line"
