"""Reader-ready notebooks: each executed notebook of a build as a reader opens it in Colab.

The committed notebooks carry no outputs, and their prose quotes numbers through ``{glue}`` roles
that only the book's HTML build fills in. A reader-ready copy is the build's executed notebook with
every glue role replaced by its value, the build's outputs kept, papermill's injected parameters
and the build machine's folders taken out, a first cell saying what it is (build date, commit, how
long it took) and an install cell that installs geomlib at that commit. ``tools/run_book.py``
writes them after the HTML build into ``<html>/colab/``; the publishing workflow puts them on the
``colab`` branch, which every Colab badge opens (``tools/notebooks.py``).
"""
from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import nbformat
from notebooks import BADGE_TAG, BOOK, INSTALL_TAG, _is, install_source

# {glue}`name`, {glue:}`name`, {glue:text}`name` and {glue:text}`name:.2f`
GLUE_ROLE = re.compile(r"\{glue(?::text|:)?\}`([^`:]+)(?::([^`]*))?`")
# {cite}`key`: the book's bibliography is not in the notebook; the key names the work (book/references.bib)
CITE_ROLE = re.compile(r"\{cite\}`([^`]+)`")


class GlueError(ValueError):
    """A glue role whose value the executed notebook does not hold."""


def glued_values(nb) -> dict[str, str]:
    """Every value a notebook glued: name -> its text (the ``text/plain`` form the book renders)."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            book = out.get("metadata", {}).get("scrapbook", {})
            if "name" in book:
                data = out.get("data", {})
                text = data.get(book.get("mime_prefix", "") + "text/plain", data.get("text/plain"))
                if text is not None:
                    values[book["name"]] = text
    return values


def _formatted(text: str, spec: str | None, name: str, where: str) -> str:
    if not spec:
        return text
    try:
        return format(ast.literal_eval(text), spec)
    except (ValueError, SyntaxError, TypeError) as err:
        raise GlueError(f"{where}: glue {name!r} is {text!r}, which format {spec!r} cannot take ({err})") from None


def fill_glue(markdown: str, values: dict[str, str], where: str = "notebook") -> str:
    """``markdown`` with each glue role replaced by its value (formatted as the role asks)."""
    def one(m: re.Match) -> str:
        name, spec = m.group(1), m.group(2)
        if name not in values:
            raise GlueError(f"{where}: the text quotes glue {name!r}, which the executed notebook does not hold")
        return _formatted(values[name], spec, name, where)
    return CITE_ROLE.sub(lambda m: f"[{m.group(1)}]", GLUE_ROLE.sub(one, markdown))


def _scrub(text: str, folders: list[str]) -> str:
    for folder in sorted(folders, key=len, reverse=True):
        text = text.replace(folder.rstrip("/") + "/", "").replace(folder.rstrip("/"), ".")
    return text


def reader_copy(executed: Path, *, commit: str, seconds: float | None, machine: str, folders: list[str],
                book=None, date: str | None = None):
    """The reader-ready copy of the executed notebook ``executed`` (an ``nbformat`` notebook)."""
    nb = nbformat.read(executed, as_version=4)
    values = glued_values(nb)
    date = date or time.strftime("%Y-%m-%d", time.gmtime())
    took = "" if seconds is None else (
        f" In that build it took {seconds / 60:.1f} min on {machine}, using the models the chapters before it had "
        "trained; opened alone, it trains what it needs first (minutes more).")
    header = nbformat.v4.new_markdown_cell(
        f"**Reader-ready copy**: executed by the book's build of {date} from commit `{commit[:12]}`; every number "
        f"in the text is filled in and every output is that build's.{took} Running the first cell installs geomlib "
        "at that commit.", metadata={"tags": [BADGE_TAG]})
    install = nbformat.v4.new_code_cell(install_source(book or BOOK, ref=commit), metadata={"tags": [INSTALL_TAG]})
    cells = []
    for i, cell in enumerate(nb.cells):
        if _is(cell, BADGE_TAG) or _is(cell, INSTALL_TAG) or _is(cell, "injected-parameters"):
            continue
        if cell.cell_type == "markdown":
            cell.source = fill_glue(cell.source, values, f"{executed.name}, cell {i}")
        elif cell.cell_type == "code":
            kept = []
            for out in cell.outputs:
                if out.get("metadata", {}).get("scrapbook"):
                    continue  # a glued value: it is in the text now
                if "text" in out:
                    out["text"] = _scrub(out["text"], folders)
                for mime, data in out.get("data", {}).items():
                    if isinstance(data, str) and not mime.startswith("image/"):
                        out["data"][mime] = _scrub(data, folders)
                if "traceback" in out:
                    out["traceback"] = [_scrub(t, folders) for t in out["traceback"]]
                kept.append(out)
            cell.outputs = kept
        cell.metadata.pop("papermill", None)
        cells.append(cell)
    nb.cells = [header, install] + cells
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nb.metadata.pop("papermill", None)
    return nb


def write_reader_copies(staged: Path, out: Path, *, commit: str, timings: dict, machine: str,
                        folders: list[str]) -> list[Path]:
    """A reader-ready copy of every executed notebook of ``staged`` (the build's book), into ``out``."""
    from notebooks import notebooks

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for executed in notebooks(staged):
        nb = reader_copy(executed, commit=commit, seconds=timings.get(executed.stem), machine=machine,
                         folders=folders, book=staged)
        dest = out / executed.name
        tmp = dest.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(dest)
        written.append(dest)
    return written
