"""Execute every chapter of the book with papermill, then render static HTML.

    python tools/run_book.py                      # the whole book, default preset, then HTML
    python tools/run_book.py --only associative_vs_geometric --preset cpu --no-html

Sources in ``book/`` stay output-free. They are copied to ``build/book/``, executed there in
``_toc.yml`` order (but for :data:`EXECUTE_AFTER`; each chapter gets ``preset`` and ``seed``; the report gets
the ledger path), and the book is built from those executed copies with execution off, warnings as errors. A
failing chapter stops the run with a non-zero exit that names the chapter and the claim; its
partially executed copy is kept for inspection.

Every argument is checked before anything is staged, deleted or executed: an unknown preset or
chapter, a bad seed, a build folder that overlaps the sources, a damaged ledger are refused
with a message and exit code 2, and the previous build stays as it was. Ctrl-C stops cleanly
(exit 130) and marks the cells that never ran in the kept copy as not run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import papermill
import yaml

from geomlib.fileio import locked, write_json_atomic
from geomlib.ledger import drop_chapter_rows, read_ledger
from geomlib.precision import check_environment
from geomlib.presets import preset_names
from geomlib.provenance import git_commit
from geomlib.report import chapter_status
from geomlib.validate import check_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebooks import chapters, is_chapter, notebooks, package_version  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5"  # `npm ci` (the Makefile) puts it there
# What the CommonHTML build of MathJax 3 loads at run time; the rest of the package (speech
# rule engine, SVG output, other combined builds) is not needed by the book.
MATHJAX_PARTS = ["tex-mml-chtml.js", "input", "output/chtml", "a11y", "ui", "adaptors"]


def bundle_mathjax(staged: Path, config: dict) -> bool:
    """Copy MathJax into the staged book (served from ``_static/mathjax``) and point Sphinx at it, so math renders
    without a network. Returns False (and leaves Sphinx's CDN default) when it is not installed."""
    if not (MATHJAX / MATHJAX_PARTS[0]).exists():
        print(f"warning: {MATHJAX} not found (run `npm ci`); the book will load MathJax from its CDN",
              file=sys.stderr)
        return False
    # Not in the staged `_static`: Jupyter Book adds every .js file there to every page. A static
    # path of its own lands in the output's _static/ all the same, untouched.
    dest = staged / "_mathjax" / "mathjax"
    for part in MATHJAX_PARTS:
        src = MATHJAX / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_static_path"] = [*sphinx.get("html_static_path", []), "_mathjax"]
    sphinx["mathjax_path"] = "mathjax/tex-mml-chtml.js"
    return True


def fill_statuses(config: dict, ledger: dict, chapters: list[str]) -> None:
    """Each chapter's status in this build, for the introduction's claim table, and each claim's
    measured value (``{{ measured_<chapter>__<claim> }}``), for prose outside the chapters."""
    from geomlib.claims import CHECKS

    subs = config.setdefault("parse", {}).setdefault("myst_substitutions", {})
    for ch in chapters:
        subs[f"status_{ch}"] = chapter_status([r for r in ledger.values() if r.get("chapter") == ch])
    for cid in CHECKS:
        row = ledger.get(cid)
        subs["measured_" + cid.replace(".", "__")] = (f"{row['measured']:.2f}" if row else "(not measured in this build)")


def fill_version(config: dict, version: str, commit: str = "unknown", date: str | None = None) -> None:
    """The book's version (``geomlib``'s, from pyproject.toml) in the footer and the introduction;
    the footer also names the build's date and the commit it was built from."""
    html = config.setdefault("html", {})
    date = date or time.strftime("%Y-%m-%d", time.gmtime())
    built = f"built {date} from commit {commit[:12]}" if commit != "unknown" else f"built {date}"
    html["extra_footer"] = f"Version {version} · {built} · " + html.get("extra_footer", "")
    config.setdefault("parse", {}).setdefault("myst_substitutions", {})["book_version"] = version


def prepare_html(staged: Path, ledger_file: Path, book: Path | None = None) -> None:
    """Edit the staged copy's ``_config.yml`` for the HTML build: local MathJax, claim statuses,
    the book's version. Which notebooks are chapters is read from the sources (``book``)."""
    cfg_file = staged / "_config.yml"
    config = yaml.safe_load(cfg_file.read_text())
    bundle_mathjax(staged, config)
    fill_version(config, package_version(), git_commit())
    ledger = read_ledger(ledger_file) if ledger_file.exists() else {}
    fill_statuses(config, ledger, chapters(book or staged))
    cfg_file.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def stage(book: Path, staged: Path, only: list[str] | None = None) -> None:
    """Copy the sources to the build folder. A full run starts clean; ``only`` refreshes the
    non-notebook files, the chosen chapters and every notebook that is not a chapter (the report
    and the appendix, executed on every run), and keeps the other chapters' executed copies."""
    ignore = shutil.ignore_patterns("_build", ".ipynb_checkpoints", "__pycache__")
    if only is None or not staged.exists():
        if staged.exists():
            shutil.rmtree(staged)
        shutil.copytree(book, staged, ignore=ignore)
        return
    for src in book.iterdir():
        if src.name in ("_build", ".ipynb_checkpoints", "__pycache__"):
            continue
        if (src.suffix == ".ipynb" and src.stem not in only and _readable(staged / src.name)
                and is_chapter(nbformat.read(src, as_version=4))):
            continue  # another chapter's executed copy is kept (a damaged one is staged afresh)
        if src.is_dir():
            shutil.copytree(src, staged / src.name, dirs_exist_ok=True, ignore=ignore)
        else:
            shutil.copy2(src, staged / src.name)


def _readable(nb: Path) -> bool:
    """Whether a staged notebook exists and reads as a notebook (a full disk can leave one truncated)."""
    try:
        nbformat.read(nb, as_version=4)
    except Exception:  # noqa: BLE001 - missing, truncated, not JSON: all mean "stage it afresh"
        return False
    return True


def execute(nb: Path, parameters: dict, cell_timeout: int | None = None) -> float:
    """Execute ``nb`` in place in its folder; return wall seconds. Raises on failure, and when a
    single cell runs longer than ``cell_timeout`` seconds (a hung cell must not hang the build)."""
    start = time.perf_counter()
    papermill.execute_notebook(str(nb), str(nb), parameters=parameters, cwd=str(nb.parent), kernel_name="python3",
                               language="python", execution_timeout=cell_timeout,
                               progress_bar=False, log_output=False, request_save_on_cell_execute=True)
    return time.perf_counter() - start


def hide_injected_parameters(nb: Path) -> None:
    """Papermill adds a cell with the injected parameters (for the report, the build machine's
    ledger path): keep it in the executed notebook, but out of the rendered page."""
    doc = nbformat.read(nb, as_version=4)
    changed = False
    for cell in doc.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
            changed = True
    if changed:
        nbformat.write(doc, nb)


class UsageError(Exception):
    """A bad argument, found before anything was touched."""


# Chapters executed later than they are read: the chapter named trains some of their runs in its
# pool (one single-threaded process per CPU core), where a run costs about half the wall time it
# costs a chapter that trains it alone, and they then load it from the cache. The book's reading
# order (_toc.yml) is unchanged; a chapter run alone (--only) trains what it needs itself.
EXECUTE_AFTER = {"mamba_too": "scaling"}  # its Transformer twin is the phase diagram's d = 200 cell


def execution_order(chosen: list[Path]) -> list[Path]:
    """``chosen`` (in reading order) with each chapter of :data:`EXECUTE_AFTER` moved to just after
    the chapter that trains its runs, when both are executed."""
    order = list(chosen)
    for late, first in EXECUTE_AFTER.items():
        stems = [p.stem for p in order]
        if late in stems and first in stems and stems.index(late) < stems.index(first):
            order.insert(stems.index(first) + 1, order[stems.index(late)])
            order.pop(stems.index(late))  # it was copied to a later place, so its index still holds
    return order


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_arguments(args) -> None:
    """Refuse bad arguments before anything is staged, deleted or executed."""
    book, build = args.book.resolve(), args.build.resolve()
    if not (book / "_toc.yml").is_file():
        raise UsageError(f"--book {args.book}: no _toc.yml there; point --book at the book's source folder")
    for flag, folder in (("--build", args.build), ("--html-out", args.html_out)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise UsageError(f"{flag} {folder} is a file; it must be a folder")
    staged = build / book.name
    if _overlap(staged, book) or _overlap(build, book):
        raise UsageError(f"--build {args.build} would stage the book at {staged}, which overlaps its sources {book}; "
                         "executing there would overwrite (and a full run would delete) them. Choose a build folder "
                         "outside the book, e.g. the default `build/`")
    if args.html_out is not None and _overlap(args.html_out.resolve() / "_build", staged):
        raise UsageError(f"--html-out {args.html_out} would write the HTML into the staged book {staged}")
    if args.preset not in preset_names():
        raise UsageError(f"--preset {args.preset!r} is not a preset; choose from {preset_names()}")
    try:
        check_environment()  # $GEOMLIB_PRECISION / $GEOMLIB_NATIVE_BF16, before any chapter starts
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        check_seed(args.seed, "--seed")
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    if args.chapters_only and args.only is None:
        raise UsageError("--chapters-only needs --only: a full run always builds the report")
    if args.only is not None:
        known = {p.stem for p in notebooks(book)}
        unknown = set(args.only) - known
        if unknown:
            raise UsageError(f"--only names chapters not in _toc.yml: {sorted(unknown)}; known: {sorted(known)}")
        ledger = build / "ledger.json"
        try:
            read_ledger(ledger)  # this run adds to it: a damaged ledger is refused now, not after a chapter
        except ValueError as e:
            raise UsageError(str(e)) from None


def record_timings(build: Path, timings: dict, fresh: bool) -> None:
    """Merge this run's chapter times into ``timings.json`` (a full run starts it afresh)."""
    path = build / "timings.json"
    with locked(path):
        old = {}
        if not fresh and path.is_file():
            try:
                old = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                old = {}
        write_json_atomic(path, {**(old if isinstance(old, dict) else {}), **timings})


def mark_not_run(nb: Path) -> None:
    """After an interrupt papermill marks the cells it never reached "completed": mark them as not
    run, so the kept copy does not claim work that was not done."""
    try:
        doc = nbformat.read(nb, as_version=4)
    except Exception:  # noqa: BLE001 - nothing readable to fix
        return
    for cell in doc.cells:
        pm = cell.metadata.get("papermill", {})
        if cell.cell_type == "code" and cell.get("execution_count") is None and pm.get("status") == "completed":
            pm["status"] = "not run (interrupted)"
    doc.metadata.setdefault("papermill", {})["interrupted"] = True
    nbformat.write(doc, nb)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_message(nb: Path, err: Exception) -> str:
    """What failed, where: the chapter, the cell (its index in the notebook) and the line of that cell
    the error came from (papermill's error carries the cell and the kernel's traceback)."""
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    what = "claim failed" if ename == "ClaimFailed" else "error"
    where = f"chapter {nb.stem!r}"
    if getattr(err, "cell_index", None) is not None:
        where += f", cell {err.cell_index}"
        frames = [_ANSI.sub("", t) for t in (getattr(err, "traceback", None) or [])]
        cell = [t for t in frames if t.lstrip().startswith("Cell In[")][:1]  # IPython's frame of the cell itself
        lines = [ln.strip() for t in cell for ln in t.splitlines() if ln.lstrip().startswith("---->")]
        source = lines[-1].removeprefix("---->").strip() if lines else ""
        if source:
            where += f", line {source}"
    return f"{where}: {what}: {ename}: {evalue}\n  partial executed notebook kept at {nb}"


_RUNNING: dict = {}  # the chapter being executed, for an interrupt that has to cut things short
INTERRUPT_GRACE = 20.0  # seconds papermill gets to stop after Ctrl-C before the executor exits anyway


def _exit_now(why: str) -> None:
    nb = _RUNNING.get("nb")
    if nb is not None:
        mark_not_run(nb)
    print(f"\ninterrupted ({why}) during chapter {nb.stem if nb else '?'!r}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: a KeyboardInterrupt for papermill to unwind; if it has not stopped within
    INTERRUPT_GRACE seconds (or on a second Ctrl-C), exit at once. Never a hang."""
    if _RUNNING.get("interrupted"):
        _exit_now("Ctrl-C twice")
    _RUNNING["interrupted"] = True
    timer = threading.Timer(INTERRUPT_GRACE, _exit_now, args=(f"papermill did not stop within {INTERRUPT_GRACE:.0f} s",))
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--book", type=Path, default=ROOT / "book", help="book source folder (with _toc.yml)")
    ap.add_argument("--build", type=Path, default=ROOT / "build", help="where executed copies, ledger, cache go")
    ap.add_argument("--html-out", type=Path, default=None, help="folder that receives _build/html (default: --book)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", default=None, metavar="CHAPTER",
                    help="execute only these chapters (file stems); the report is refreshed too "
                         "(unless --chapters-only)")
    ap.add_argument("--chapters-only", action="store_true",
                    help="with --only: skip the notebooks that are not chapters (the report, methods); for tools that "
                         "read the ledger, not the pages")
    ap.add_argument("--no-html", action="store_true", help="execute only; do not render HTML")
    ap.add_argument("--cell-timeout", type=int, default=1800,
                    help="fail a chapter whose single cell runs longer than this many seconds (default 1800)")
    args = ap.parse_args(argv)

    try:
        check_arguments(args)
    except UsageError as e:
        print(f"error: {e}\nnothing was changed.", file=sys.stderr)
        return 2
    book, build = args.book.resolve(), args.build.resolve()
    staged = build / book.name
    with locked(staged):  # two runs sharing a build folder stage one after the other
        stage(book, staged, args.only)
    ledger = build / "ledger.json"
    if args.only is None and ledger.exists():
        ledger.unlink()  # a full run starts a fresh ledger: no stale rows
    os.environ["GEOMLIB_LEDGER"] = str(ledger)
    if not os.environ.get("GEOMLIB_CACHE"):
        os.environ["GEOMLIB_CACHE"] = str(build / "cache")
    os.environ.setdefault("GEOMLIB_PROGRESS", "0")  # no progress bars in the rendered pages

    # which notebooks there are, and which are chapters, from the sources (a staged copy may be damaged)
    sources = {p.stem: p for p in notebooks(book)}
    chosen = [staged / p.name for p in sources.values()]
    if args.only is not None:
        # the report is rebuilt from the ledger on every run, so it never shows stale rows
        chosen = [p for p in chosen if p.stem in args.only
                  or not (args.chapters_only or is_chapter(nbformat.read(sources[p.stem], as_version=4)))]
    chosen = execution_order(chosen)
    timings = {}
    print(f"executing {len(chosen)} notebook(s) with preset={args.preset!r}, seed={args.seed}; ledger: {ledger}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigint)  # a terminated build stops as an interrupted one: said, cells marked
    for nb in chosen:
        _RUNNING["nb"] = nb
        chapter = is_chapter(nbformat.read(sources[nb.stem], as_version=4))
        params = {"preset": args.preset, "seed": args.seed} if chapter else {"ledger": str(ledger)}
        print(f"-> {nb.stem} ...", flush=True)
        try:
            drop_chapter_rows(nb.stem, ledger)  # a re-run chapter must not leave stale claims behind
            seconds = execute(nb, params, args.cell_timeout)
        except KeyboardInterrupt:
            mark_not_run(nb)
            record_timings(build, timings, fresh=args.only is None)
            print(f"\ninterrupted during chapter {nb.stem!r}: its partial copy is kept at {nb} (cells that did not "
                  "run are marked so); the chapters before it keep their results", file=sys.stderr, flush=True)
            return 130
        except Exception as err:  # noqa: BLE001 - papermill wraps the kernel's exception
            print(f"FAILED {failure_message(nb, err)}", file=sys.stderr, flush=True)
            record_timings(build, timings, fresh=args.only is None)
            return 1
        hide_injected_parameters(nb)
        timings[nb.stem] = round(seconds, 1)
        print(f"   {nb.stem}: {seconds:.1f} s", flush=True)
    record_timings(build, timings, fresh=args.only is None)
    print(f"executed in {sum(timings.values()):.1f} s in all")

    if args.no_html:
        return 0
    out = (args.html_out or book).resolve()
    start = time.perf_counter()
    jb = Path(sys.executable).parent / "jupyter-book"
    if not jb.exists():
        jb = Path(shutil.which("jupyter-book") or "jupyter-book")
    prepare_html(staged, ledger, book)
    index = out / "_build" / "html" / "index.html"
    if index.exists():
        index.unlink()
    rc = subprocess.call([str(jb), "build", str(staged), "--path-output", str(out), "-W", "-n", "--keep-going"])
    print(f"HTML build: {time.perf_counter() - start:.1f} s -> {index}")
    if rc or not index.exists():
        print("FAILED: the HTML build reported warnings or errors (see above)", file=sys.stderr)
        return rc or 1
    return write_reader_notebooks(staged, build, out)


def write_reader_notebooks(staged: Path, build: Path, out: Path) -> int:
    """The reader-ready notebooks (tools/reader_copies.py) beside the HTML, in ``_build/html/colab/``."""
    import torch
    from reader_copies import GlueError, write_reader_copies

    from geomlib.provenance import hardware

    timings = json.loads((build / "timings.json").read_text()) if (build / "timings.json").exists() else {}
    dest = out / "_build" / "html" / "colab"
    try:
        written = write_reader_copies(staged, dest, commit=git_commit(), timings=timings,
                                      machine=f"{hardware()} ({torch.get_num_threads()} threads)",
                                      folders=[str(build), str(out), str(ROOT), str(Path.home())])
    except GlueError as e:
        print(f"FAILED: reader-ready notebooks: {e}", file=sys.stderr)
        return 1
    print(f"reader-ready notebooks: {len(written)} -> {dest}")
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        rc = 130
    if rc == 130:  # skip the interpreter's shutdown: a kernel client's sockets can hold it up
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)
