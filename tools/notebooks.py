"""Colab badges and install cells, generated from the one repository URL in book/_config.yml.

    python tools/notebooks.py sync    # rewrite every chapter's badge and install cell
    python tools/notebooks.py check   # exit 1 if any chapter is out of date or has outputs
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

BOOK = Path(__file__).resolve().parents[1] / "book"
BADGE_TAG = "colab-badge"
INSTALL_TAG = "colab-install"
# The branch that holds the reader-ready notebooks (tools/reader_copies.py; the publishing workflow
# writes it): every Colab badge opens the copy there, with the build's outputs and numbers.
COLAB_BRANCH = "colab"


def config(book: Path = BOOK) -> dict:
    return yaml.safe_load((book / "_config.yml").read_text())


def toc_files(book: Path = BOOK) -> list[str]:
    """Files of the table of contents, in reading order, as paths relative to ``book``."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def resolve(book: Path, name: str) -> Path:
    for ext in ("", ".ipynb", ".md"):
        p = book / f"{name}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"_toc.yml names {name!r} but no such file exists in {book}")


def notebooks(book: Path = BOOK) -> list[Path]:
    return [p for p in (resolve(book, f) for f in toc_files(book)) if p.suffix == ".ipynb"]


def _repo(book: Path) -> tuple[str, str, str]:
    repo = config(book)["repository"]
    url = repo["url"].rstrip("/")
    if not url.startswith("https://github.com/"):
        raise ValueError(f"repository.url must be a https://github.com/ URL, got {url!r}")
    return url, repo.get("branch", "main"), repo.get("path_to_book", "book")


def colab_url(nb: Path, book: Path = BOOK) -> str:
    """Where the badge of ``nb`` points: its reader-ready copy on the :data:`COLAB_BRANCH` branch."""
    url = _repo(book)[0]
    return f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{COLAB_BRANCH}/{nb.name}"


def badge_source(nb: Path, book: Path = BOOK) -> str:
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(nb, book)})"


def package_version() -> str:
    """The book's version: ``project.version`` in pyproject.toml."""
    import tomllib

    return tomllib.loads((BOOK.parent / "pyproject.toml").read_text())["project"]["version"]


def install_ref(book: Path = BOOK, version: str | None = None) -> str:
    """What Colab installs: the release tag ``v<version>`` of the book, or the configured branch
    while the version is a development one (``...devN``, between releases)."""
    version = version or package_version()
    return _repo(book)[1] if "dev" in version else f"v{version}"


def install_source(book: Path = BOOK, ref: str | None = None) -> str:
    """The install cell: geomlib at ``ref`` (default :func:`install_ref`; a reader-ready copy: its
    build's commit), saying so before pip starts."""
    url, ref = _repo(book)[0], ref or install_ref(book)
    return (
        "# Only inside Colab: install geomlib (this book's library; distribution geometric-memory-book) at this book's version.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    print(\"installing geomlib ({ref}) with pip: about a minute...\", flush=True)\n"
        f"    r = subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"geometric-memory-book @ git+{url}@{ref}\"],\n"
        "                       capture_output=True, text=True)\n"
        "    if r.returncode:  # show pip's own words, not just a failed exit code\n"
        "        print(r.stdout[-5000:], r.stderr[-5000:], sep=\"\\n\")\n"
        "        raise RuntimeError(\"installing geomlib failed: pip's output is above\")"
    )


def _is(cell, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def sync(nb_path: Path, book: Path = BOOK) -> bool:
    """Make the first two cells the badge and the install cell; strip outputs. True if changed."""
    nb = nbformat.read(nb_path, as_version=4)
    before = nbformat.writes(nb)
    cells = [c for c in nb.cells if not (_is(c, BADGE_TAG) or _is(c, INSTALL_TAG))]
    badge = nbformat.v4.new_markdown_cell(badge_source(nb_path, book), metadata={"tags": [BADGE_TAG]})
    install = nbformat.v4.new_code_cell(install_source(book), metadata={"tags": [INSTALL_TAG, "remove-cell"]})
    nb.cells = [badge, install] + cells
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"  # stable ids keep diffs small
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata.pop("jupytext", None)
    after = nbformat.writes(nb)
    if after != before:
        nb_path.write_text(after)
    return after != before


# A code cell that calls one of these draws a figure; the book numbers and captions it from the
# cell's ``mystnb.figure`` metadata (``caption``, ``name`` for cross-references).
FIGURE_CALLS = ("plt.subplots(", "plt.figure(")


def problems(nb_path: Path, book: Path = BOOK) -> list[str]:
    """What is wrong with a committed chapter (empty list: nothing)."""
    nb = nbformat.read(nb_path, as_version=4)
    out = []
    if len(nb.cells) < 2 or not _is(nb.cells[0], BADGE_TAG) or nb.cells[0].source != badge_source(nb_path, book):
        out.append("first cell is not the Colab badge for this notebook's path")
    if len(nb.cells) < 2 or not _is(nb.cells[1], INSTALL_TAG) or nb.cells[1].source != install_source(book):
        out.append("second cell is not the Colab install cell for the configured repository")
    if any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells):
        out.append("has outputs (commit notebooks without outputs: python tools/notebooks.py sync)")
    params = [c for c in nb.cells if _is(c, "parameters")]
    if len(params) != 1:
        out.append(f"needs exactly one cell tagged 'parameters', found {len(params)}")
    elif is_chapter(nb):
        for name in ('preset: str = "cpu"', "seed: int = 0"):
            if name not in params[0].source:
                out.append(f"its parameters cell lacks `{name}`")
        if not _checks(nb.cells[-1].source) or "verdict(" not in nb.cells[-1].source:
            out.append("its last cell does not check its claim (ch.check) and show the verdict box (ch.verdict)")
        if len(nb.cells) < 3 or "**Claim" not in nb.cells[2].source:
            out.append("its first text cell (after the Colab cells) does not state its claim (**Claim.**)")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and not set(c.metadata.get("tags", [])) & _NOT_FOLDED:
            out.append(f"cell {i} shows its code on the page: tag it hide-input (a reader opens it with one click)")
        if c.cell_type == "code" and any(f in c.source for f in FIGURE_CALLS):
            fig = c.metadata.get("mystnb", {}).get("figure", {})
            if not (fig.get("caption") and fig.get("name")):
                out.append(f"cell {i} draws a figure without a numbered caption (metadata mystnb.figure.caption/name)")
    return out


# Code cells are folded on the page (``hide-input``: the output shows, the code one click away) unless
# the page never shows them or they are the parameters a reader may change.
_NOT_FOLDED = {"hide-input", "remove-input", "remove-cell", "parameters", INSTALL_TAG}


def _checks(source: str) -> bool:
    return "ch.check(" in source or "check_claim(" in source


def is_chapter(nb) -> bool:
    """A claim chapter is a notebook that checks a claim (``Chapter.check`` or ``check_claim``)."""
    return any(c.cell_type == "code" and _checks(c.source) for c in nb.cells)


def chapters(book: Path = BOOK) -> list[str]:
    """The file stems of the claim chapters, in reading order."""
    return [nb.stem for nb in notebooks(book) if is_chapter(nbformat.read(nb, as_version=4))]


def main(argv: list[str]) -> int:
    if argv[1:] == ["sync"]:
        for nb in notebooks():
            if sync(nb):
                print(f"updated {nb.relative_to(BOOK.parent)}")
        return 0
    if argv[1:] == ["check"]:
        bad = {nb: problems(nb) for nb in notebooks()}
        for nb, ps in bad.items():
            for p in ps:
                print(f"{nb.relative_to(BOOK.parent)}: {p}")
        return 1 if any(bad.values()) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
