"""The book as a product: table of contents, committed notebooks, Colab wiring, the executor,
and (marked ``book``) the whole book executed at the default preset and built to HTML."""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402

BOOK = ROOT / "book"


def test_every_toc_entry_exists():
    files = notebooks.toc_files()
    assert files[0] == "intro" and "report" in files
    for f in files:
        notebooks.resolve(BOOK, f)


def test_notebooks_are_output_free_and_wired_to_colab():
    nbs = notebooks.notebooks()
    assert nbs
    for nb in nbs:
        assert notebooks.problems(nb) == [], nb.name


def test_badges_follow_the_configured_repository():
    url = notebooks.config()["repository"]["url"]
    for nb in notebooks.notebooks():
        cells = nbformat.read(nb, as_version=4).cells
        assert f"/github/{url.removeprefix('https://github.com/')}/blob/{notebooks.COLAB_BRANCH}/{nb.name})" in cells[0].source
        assert f"git+{url}@{notebooks.install_ref()}" in cells[1].source and "google.colab" in cells[1].source
        assert "remove-cell" in cells[1].metadata["tags"]


def test_colab_installs_the_books_release_or_main_between_releases():
    assert notebooks.install_ref(version="1.2.0") == "v1.2.0"
    assert notebooks.install_ref(version="1.3.0.dev0") == notebooks.config()["repository"]["branch"]
    src = notebooks.install_source()
    assert "capture_output=True" in src and "print(r.stdout" in src  # pip's output shown when it fails
    compile(src, "install-cell", "exec")


# Decimals a chapter's prose may type: settings (inits, learning rates, betas, shares) and the checks'
# thresholds. Any other decimal in a chapter's text is a measurement, and a measurement is glued from a
# run or a shipped file ({glue:text}`name`), never typed.
TYPED_DECIMALS = {"0.0002", "0.0005", "0.002", "0.005", "0.01", "0.02", "0.1", "0.25", "0.5", "0.8", "0.9", "0.95",
                  "0.999", "1.0"}


def typed_decimals(markdown: str) -> list[str]:
    """The decimals of ``markdown`` outside glue roles, math, code spans and links, not in TYPED_DECIMALS."""
    text = re.sub(r"\{glue(?::text|:)?\}`[^`]*`", " ", markdown)
    text = re.sub(r"\$[^$]*\$|`[^`]*`|\]\([^)]*\)", " ", text)
    return [m for m in re.findall(r"(?<![\w.])\d+\.\d+", text) if m not in TYPED_DECIMALS]


def test_chapter_numbers_are_glued():
    assert typed_decimals("0.56 over 8 seeds, {glue:text}`x:.2f`, $0.37$, `0.41`, lr 0.02, at least 0.9.") == ["0.56"]
    found = {}
    for stem in notebooks.chapters():
        nb = nbformat.read(BOOK / f"{stem}.ipynb", as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown" and typed_decimals(cell.source):
                found[f"{stem}, cell {i}"] = typed_decimals(cell.source)
    assert not found, f"typed measurements (glue them, or add a setting to TYPED_DECIMALS): {found}"


def test_chapters_never_pin_torch():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=' in text and "torch==" not in text


def _fixture_book(tmp_path: Path) -> Path:
    book = tmp_path / "fixture_book"
    book.mkdir()
    (book / "_config.yml").write_text((BOOK / "_config.yml").read_text())
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: true_claim\n  - file: false_claim\n")
    (book / "intro.md").write_text("# Fixture\n")
    for name, value in [("true_claim", 0.95), ("false_claim", 0.5)]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell('preset: str = "cpu"\nseed: int = 0', metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(
                "from geomlib import check_claim\nfrom geomlib.claims import CHECKS\n"
                f"CHECKS['fixture.{name}'] = ('>=', 0.9)\n"
                f"check_claim('fixture.{name}', {value}, '>=', 0.9, paper='p', description='d', chapter='{name}',"
                " preset=preset, seed=seed)"),
        ]
        nbformat.write(nb, book / f"{name}.ipynb")
    return book


def _run_book(*args, timeout: int = 600):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "run_book.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_executor_fails_on_a_false_claim_and_names_it(tmp_path):
    book = _fixture_book(tmp_path)
    r = _run_book("--book", book, "--build", tmp_path / "build", "--only", "false_claim", "--no-html")
    assert r.returncode == 1
    assert "false_claim" in r.stderr and "fixture.false_claim" in r.stderr and "ClaimFailed" in r.stderr
    # where: the cell's index in the notebook and the line of it that raised
    assert re.search(r"chapter 'false_claim', cell \d+, line .*check", r.stderr), r.stderr
    partial = tmp_path / "build" / "fixture_book" / "false_claim.ipynb"
    assert partial.exists()  # kept for inspection
    assert json.loads((tmp_path / "build" / "ledger.json").read_text())["fixture.false_claim"]["status"] == "fail"


def test_executor_succeeds_on_a_true_claim(tmp_path):
    book = _fixture_book(tmp_path)
    r = _run_book("--book", book, "--build", tmp_path / "build", "--only", "true_claim", "--no-html", "--seed", "3")
    assert r.returncode == 0, r.stderr
    row = json.loads((tmp_path / "build" / "ledger.json").read_text())["fixture.true_claim"]
    assert row["status"] == "pass" and row["seed"] == 3 and row["preset"] == "cpu"
    assert not nbformat.read(book / "true_claim.ipynb", as_version=4).cells[1].outputs  # sources stay clean
    r = _run_book("--book", book, "--build", tmp_path / "build", "--only", "nope", "--no-html")
    assert r.returncode == 2 and "not in _toc.yml" in r.stderr
    executed = nbformat.read(tmp_path / "build" / "fixture_book" / "true_claim.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells)  # running other chapters keeps this executed copy


@pytest.mark.book
def test_whole_book_executes_builds_and_every_claim_passes(built_book, html):
    """The README's book command, into a temporary folder: every chapter at the default preset."""
    print(built_book.log[-3000:])
    ledger = json.loads((built_book.build / "ledger.json").read_text())
    chapters = notebooks.chapters()
    assert {row["chapter"] for row in ledger.values()} == set(chapters)  # every chapter recorded its claims
    # every claim passes, except those a chapter reports, in prose and in the ledger, as not
    # reproduced (with the reason); those are shown as such on the report page, never as a pass
    from geomlib.claims import TENDENCIES
    failed = {k: v for k, v in ledger.items()
              if not (v["status"] == "pass" or (v["status"] == "not reproduced" and v["details"].get("known_failure"))
                      or (v["status"] == "tendency" and k in TENDENCIES))}
    assert not failed, failed
    assert (html / "index.html").exists() and (html / "report.html").exists()
    report = (html / "report.html").read_text()
    assert all(claim in report for claim in ledger)
    intro = (html / "intro.html").read_text()
    assert "see the report" not in intro and "{{ status_" not in intro  # statuses filled from this build's ledger
    assert "{{ measured_" not in intro and "(not measured in this build)" not in intro  # so are its quoted values
    for ch in chapters:
        page = (html / f"{ch}.html").read_text()
        assert "geomlib-verdict" in page, f"{ch}: no verdict box"
        if "Setup vs the authors" in page:  # the setup table renders as a table, not as raw Markdown
            after = page.split("Setup vs the authors", 1)[1][:4000]
            assert "| setting |" not in page and "<table" in after, f"{ch}: the setup table is not an HTML table"
    # every claim of the ledger is in CHECKS and, once the robustness data is shipped, its pass rate
    # over seeds is on the report page and in its chapter's verdict box
    from geomlib.claims import CHECKS
    from geomlib.robustness import load as robustness
    from geomlib.robustness import over_seeds
    assert set(ledger) <= set(CHECKS), sorted(set(ledger) - set(CHECKS))
    spread = robustness()
    for cid, row in ledger.items():
        if cid in spread:
            text = over_seeds(cid, spread).replace("&", "&amp;")
            assert text in report, f"report.html: no pass rate for {cid}"
            assert text in (html / f"{row['chapter']}.html").read_text(), f"{row['chapter']}: no pass rate for {cid}"


@pytest.mark.book
def test_reader_ready_notebooks_carry_the_builds_numbers_and_no_machine_paths(built_book, html):
    """Each executed notebook's reader-ready copy (what the Colab badges open): every glue role filled,
    the build's outputs kept, no build-machine folder, no injected parameters, the install cell pinned to
    the build's commit, and the chapter's build time stated."""
    from geomlib.provenance import git_commit

    copies = {p.stem: p for p in (html / "colab").glob("*.ipynb")}
    assert set(copies) == {nb.stem for nb in notebooks.notebooks()}
    machine = [str(built_book.root), str(ROOT), str(Path.home()) + "/"]
    timings = json.loads((built_book.build / "timings.json").read_text())
    for stem, path in copies.items():
        text = path.read_text()
        nb = nbformat.reads(text, as_version=4)
        assert "{glue" not in text and "{cite}" not in text, f"{stem}: a role is left unfilled"
        assert not [m for m in machine if m in text], f"{stem}: shows a build-machine folder"
        assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), stem
        assert f"@{git_commit()}" in nb.cells[1].source and "print(" in nb.cells[1].source, stem
        assert f"{timings[stem] / 60:.1f} min" in nb.cells[0].source, stem
        assert sum(len(c.get("outputs", [])) for c in nb.cells if c.cell_type == "code") > 0, stem


def test_a_chapter_executes_after_the_one_that_trains_its_runs_in_a_pool():
    """The book is executed in reading order but for run_book.EXECUTE_AFTER: each such chapter's
    runs are among those the other chapter trains (one cache entry), so it loads them."""
    import run_book

    from geomlib.cache import config_hash
    from geomlib.presets import get_preset
    from geomlib.runkeys import run_key
    from geomlib.sweep import phase_diagram_cells

    def key(run):
        return config_hash(run_key("pathstar", run, 0, run.precision))

    twin = get_preset("mamba_too").transformer
    assert key(twin) in {key(c) for c in phase_diagram_cells(get_preset("scaling")).values()}
    order = [p.stem for p in run_book.execution_order(notebooks.notebooks())]
    reading = [p.stem for p in notebooks.notebooks()]
    assert sorted(order) == sorted(reading) and order[-1] == reading[-1]
    for late, first in run_book.EXECUTE_AFTER.items():
        assert reading.index(late) < reading.index(first) and order.index(late) == order.index(first) + 1
    alone = [p for p in notebooks.notebooks() if p.stem in ("mamba_too", "no_reverse_cascade")]
    assert run_book.execution_order(alone) == alone  # the chapter that trains them is not executed: no move


def test_html_build_gets_local_mathjax_and_this_builds_statuses(tmp_path):
    import run_book
    import yaml

    from geomlib.fileio import write_json_atomic

    book = _fixture_book(tmp_path)
    ledger = tmp_path / "ledger.json"
    row = dict(claim="fixture.true_claim", description="d", measured=1.0, op=">=", threshold=0.9, paper="p",
               passed=True, status="pass", chapter="true_claim", preset="cpu", seed=0, torch="x", threads=1,
               wall_seconds=1.0, details={})
    write_json_atomic(ledger, {"fixture.true_claim": row})
    run_book.prepare_html(book, ledger)
    cfg = yaml.safe_load((book / "_config.yml").read_text())
    subs = cfg["parse"]["myst_substitutions"]
    assert subs["status_true_claim"] == "✓ 1 of 1 pass" and subs["status_false_claim"] == "not run in this build"
    assert subs["measured_path_finding_from_memory__paper_graph"] == "(not measured in this build)"  # not in this ledger
    assert cfg["repository"]["url"] == notebooks.config()["repository"]["url"]  # the rest survives the rewrite
    if (run_book.MATHJAX / "tex-mml-chtml.js").exists():  # `make` installs it with npm
        assert cfg["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-mml-chtml.js"
        assert (book / "_mathjax" / "mathjax" / "tex-mml-chtml.js").exists()
        assert not (book / "_static").exists()  # Jupyter Book would load every .js there on every page
