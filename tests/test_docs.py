"""The documentation site: its generated pages are current, the benchmarks' tables are stamped with date and
command, and the README is the landing page (short, CI's exact test command, an example that runs).

`mkdocs build --strict` (in .ci/run) checks the rest: every link, anchor and API reference resolves."""
import glob
import importlib.util
import os
import re
import shutil

import pytest
from conftest import ROOT, run_tensorflow_only

BENCH = re.compile(r"<!-- bench:(?P<key>[\w-]+) -->\n(?P<body>.*?)<!-- /bench:(?P=key) -->", re.S)


def benchmarks_common():
    spec = importlib.util.spec_from_file_location("benchmarks_common", os.path.join(ROOT, "benchmarks", "common.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stale_pages(root: str) -> list[str]:
    """The generated files under `root` that differ from what `python -m tfpg.docs --write` would write."""
    from tfpg import layers
    from tfpg.cli import docs

    stale = []
    for page, text in docs.expected_pages((layers.LAYERS, layers.TOP)).items():
        path = os.path.join(root, page)
        if not os.path.exists(path) or open(path).read() != text:
            stale.append(page)
    return stale


def test_generated_pages_are_current():
    """The flags and presets references, each algorithm's options and presets, the algorithms table, the
    layer diagram, the API reference and docs/index.md (README.md) hold exactly what the code generates;
    regenerate them with `python -m tfpg.docs --write` after changing an option, a preset or a module."""
    stale = stale_pages(ROOT)
    assert not stale, f"out of date: {', '.join(stale)}; run python -m tfpg.docs --write"


def test_a_stale_page_fails(tmp_path, monkeypatch):
    """The check above compares whole pages: an edited row of a generated table, or a README edited without
    regenerating docs/index.md, is caught."""
    from tfpg.cli import docs

    for name in ("docs", "tfpg"):   # tfpg/: the API pages list its modules
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "README.md"), tmp_path / "README.md")
    monkeypatch.setattr(docs, "ROOT", str(tmp_path))
    assert stale_pages(str(tmp_path)) == []
    flags = tmp_path / "docs" / "guide" / "flags.md"
    flags.write_text(flags.read_text().replace("| `--seed` | `0` |", "| `--seed` | `1` |"))
    (tmp_path / "README.md").write_text((tmp_path / "README.md").read_text() + "\nOne more line.\n")
    assert stale_pages(str(tmp_path)) == ["docs/guide/flags.md", "docs/index.md"]


def test_every_api_page_is_in_the_nav():
    """A package added to tfpg/layers.py gets a generated API page, which must be listed in mkdocs.yml."""
    nav = open(os.path.join(ROOT, "mkdocs.yml")).read()
    pages = sorted(os.path.relpath(p, os.path.join(ROOT, "docs"))
                   for p in glob.glob(os.path.join(ROOT, "docs", "reference", "api", "*.md")))
    assert pages and [p for p in pages if f" {p}\n" not in nav] == []


def bench_blocks() -> list[tuple[str, str, str]]:
    """(page, key, body) of every <!-- bench:KEY --> block under docs/ and in README.md."""
    found = []
    for page in [*glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True),
                 os.path.join(ROOT, "README.md")]:
        found += [(os.path.relpath(page, ROOT), m["key"], m["body"]) for m in BENCH.finditer(open(page).read())]
    return found


def test_benchmark_tables_are_stamped_and_in_the_results_pages():
    """Each table a benchmark writes sits once in docs/results/ and ends with its stamp (date and command);
    the plots it shows exist; every key belongs to a script of benchmarks/ (so its --docs finds the block)."""
    stamp = benchmarks_common().STAMP
    blocks = bench_blocks()
    keys = [key for _, key, _ in blocks]
    assert len(blocks) >= 20 and len(set(keys)) == len(keys), keys
    scripts = "".join(open(p).read() for p in glob.glob(os.path.join(ROOT, "benchmarks", "*.py")))
    for page, key, body in blocks:
        assert re.fullmatch(r"docs/results/[\w-]+\.md", page), f"bench:{key} is in {page}, not docs/results/"
        last = body.rstrip("\n").split("\n")[-1]
        assert stamp.fullmatch(last), f"bench:{key} in {page} does not end with its stamp: {last!r}"
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", body):
            assert os.path.exists(os.path.join(ROOT, "docs", "results", image)), f"bench:{key} shows {image}"
        assert f'"{key}"' in scripts or key.startswith("advanced-pg-"), f"no benchmark writes bench:{key}"


def test_a_benchmark_writes_its_block_with_a_stamp(tmp_path, monkeypatch):
    """`--docs` replaces the block in the page that holds it and stamps it with today and the command line."""
    common = benchmarks_common()
    page = tmp_path / "atari.md"
    page.write_text("# Atari\n\n<!-- bench:atari -->\nold\n<!-- /bench:atari -->\n\nAfter.\n")
    monkeypatch.setattr(common, "DOCS_RESULTS", str(tmp_path))
    monkeypatch.setattr("sys.argv", [os.path.join(ROOT, "benchmarks", "atari_throughput.py"), "--docs"])
    common.write_docs_section("atari", "| a |\n|---|\n| 1 |")
    (key, body), = [(m["key"], m["body"]) for m in BENCH.finditer(page.read_text())]
    date, command = common.STAMP.fullmatch(body.rstrip("\n").split("\n")[-1]).groups()
    assert body.startswith("| a |\n|---|\n| 1 |\n\n") and command == "python benchmarks/atari_throughput.py --docs"
    assert page.read_text().endswith("<!-- /bench:atari -->\n\nAfter.\n")
    with pytest.raises(SystemExit, match="bench:lunarlander"):
        common.write_docs_section("lunarlander", "text")


def test_readme_is_the_landing_page():
    """At most 250 lines, every relative link resolves, and its test command is the one .ci/run runs."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert len(readme.splitlines()) <= 250
    for target in re.findall(r"\]\((?!https?:|#)([^)#]+)", readme):
        assert os.path.exists(os.path.join(ROOT, target)), f"README links to {target}, which does not exist"
    ci = [line for line in open(os.path.join(ROOT, ".ci", "run")).read().splitlines()
          if line.startswith("pip install")]
    assert len(ci) == 1 and f"```bash\n{ci[0]}\n```" in readme, "README's test command differs from .ci/run's"


@pytest.mark.integration
def test_readme_example_runs_with_tensorflow_only():
    """The README's ten lines, run as written from the repository root, where the shipped PPO lander lands."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    block = readme.split("<!-- example:readme -->")[1].split("<!-- /example:readme -->")[0]
    code = block.split("```python")[1].split("```")[0]
    code += "\nimport sys, json\nprint(json.dumps({'total': total, 'tfpg': 'tfpg' in sys.modules}))\n"
    out = run_tensorflow_only(code, cwd=ROOT)
    assert not out["tfpg"] and out["total"] > 200
