"""tools/reader_copies.py: the reader-ready copy of an executed notebook (what Colab opens)."""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402
import reader_copies  # noqa: E402


def _glue(name: str, text: str):
    return nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": text},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}})


def executed(tmp_path: Path, markdown: str) -> Path:
    """A small executed chapter: badge, install, parameters, injected parameters, glue, text."""
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("ch.glue(...)")
    code.outputs = [_glue("acc", "0.9712"), _glue("seeds", "0, 1, 2"),
                    nbformat.v4.new_output("stream", name="stdout", text=f"wrote {tmp_path}/build/ledger.json\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("badge", metadata={"tags": [notebooks.BADGE_TAG]}),
                nbformat.v4.new_code_cell("install", metadata={"tags": [notebooks.INSTALL_TAG]}),
                nbformat.v4.new_code_cell('preset = "cpu"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f'ledger = "{tmp_path}/build/ledger.json"',
                                          metadata={"tags": ["injected-parameters", "remove-cell"]}),
                code, nbformat.v4.new_markdown_cell(markdown)]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_reader_copy_fills_the_numbers_and_pins_the_commit(tmp_path):
    path = executed(tmp_path, "Held out: {glue:text}`acc:.2f` on seeds {glue:text}`seeds` ({glue:}`acc`), "
                              "as {cite}`noroozizadeh2025geometric`.")
    nb = reader_copies.reader_copy(path, commit="a" * 40, seconds=150.0, machine="a CPU (2 threads)",
                                   folders=[str(tmp_path)])
    text = nbformat.writes(nb)
    assert nb.cells[-1].source == "Held out: 0.97 on seeds 0, 1, 2 (0.9712), as [noroozizadeh2025geometric]."
    assert "2.5 min on a CPU (2 threads)" in nb.cells[0].source and "`aaaaaaaaaaaa`" in nb.cells[0].source
    assert "@" + "a" * 40 in nb.cells[1].source and "print(" in nb.cells[1].source
    assert str(tmp_path) not in text and "injected-parameters" not in text and "papermill.record" not in text
    assert "wrote build/ledger.json" in text  # the output kept, its folder taken out


def test_a_glue_the_notebook_does_not_hold_is_an_error_naming_it(tmp_path):
    with pytest.raises(reader_copies.GlueError, match="chapter.ipynb, cell 5.*'missing'"):
        reader_copies.reader_copy(executed(tmp_path, "{glue:text}`missing`"), commit="b" * 40, seconds=None,
                                  machine="x", folders=[])
    with pytest.raises(reader_copies.GlueError, match="format '.2f'"):
        reader_copies.reader_copy(executed(tmp_path, "{glue:text}`seeds:.2f`"), commit="b" * 40, seconds=None,
                                  machine="x", folders=[])
