"""No lost work under faults, concurrency and bad input.

Each test reproduces one way the project used to lose work or answer with a raw traceback, and
asserts the right outcome: refused with a clear message before anything is deleted or trained;
no lost rows and no crash under concurrency; a failed save that warns and keeps the trained
model; nothing half-written or left behind; files that follow the umask. Fast: the subprocess
tests start small Python processes, nothing trains for more than a few steps.
"""
import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
import warnings
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import torch

from geomlib import cache as cache_mod
from geomlib.cache import CacheWarning, cache_root, cached_run
from geomlib.claims import CHECKS, check_claim
from geomlib.fileio import clean_stale, write_json_atomic
from geomlib.graphs import cycle, grid, path_star
from geomlib.ledger import drop_chapter_rows, ledger_path, read_ledger
from geomlib.models import LinearNet, Node2Vec
from geomlib.presets import get_preset
from geomlib.report import report_markdown
from geomlib.tasks import Vocab, edge_examples, path_examples, pathstar_task
from geomlib.train import TrainConfig, set_seed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import run_book  # noqa: E402

COMMON = dict(paper="p", description="d", chapter="ch", preset="cpu", seed=0)
# The fixture chapters' made-up claims, entered in CHECKS as a real chapter's are (check_claim refuses others).
REGISTER = ("from geomlib import check_claim\nfrom geomlib.claims import CHECKS\n"
            "CHECKS.update({'f.one': ('>=', 0.5), 'f.two': ('>=', 0.5)})")


# ----------------------------------------------------------------------------- fixtures
def _book(tmp_path: Path, cells: dict[str, list[str]] | None = None) -> Path:
    """A two-chapter book; ``cells`` replaces a chapter's code after its parameters cell."""
    book = tmp_path / "srcbook"
    book.mkdir()
    (book / "_config.yml").write_text((ROOT / "book" / "_config.yml").read_text())
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: one\n  - file: two\n")
    (book / "intro.md").write_text("# Fixture\n")
    cells = cells or {}
    for name in ("one", "two"):
        nb = nbformat.v4.new_notebook()
        body = cells.get(name, [f"{REGISTER}\ncheck_claim('f.{name}', 1.0, '>=', 0.5, paper='p', "
                                f"description='d', chapter='{name}', preset=preset, seed=seed)"])
        nb.cells = [nbformat.v4.new_code_cell('preset: str = "cpu"\nseed: int = 0', metadata={"tags": ["parameters"]})]
        nb.cells += [nbformat.v4.new_code_cell(src) for src in body]
        nbformat.write(nb, book / f"{name}.ipynb")
    (book / "my_uncommitted_notes.md").write_text("precious\n")
    return book


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _row(claim: str, chapter: str = "one") -> dict:
    return dict(claim=claim, description="d", measured=1.0, op=">=", threshold=0.5, paper="p", passed=True,
                status="pass", chapter=chapter, preset="cpu", seed=0, torch="x", threads=1, wall_seconds=0.0,
                details={})


def _old_build(tmp_path: Path, book: Path) -> Path:
    """A previous build: its ledger and executed copies."""
    build = tmp_path / "build"
    (build / book.name).mkdir(parents=True)
    (build / book.name / "one.ipynb").write_text("executed copy")
    write_json_atomic(build / "ledger.json", {"f.one": _row("f.one")})
    return build


def _py(code: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _fit_counter(calls: list):
    def fit(model):
        calls.append(1)
        with torch.no_grad():
            model.E.add_(1.0)
        return {"trained": True}
    return fit


# ----------------------------------------------------------------------------- 1. build folder == sources
@pytest.mark.parametrize("where", ["parent", "inside"])
def test_build_folder_overlapping_the_sources_is_refused_and_nothing_deleted(tmp_path, capsys, where):
    book = _book(tmp_path)
    before = _snapshot(book)
    build = book.parent if where == "parent" else book / "build"  # staged copy == the sources / inside them
    assert run_book.main(["--book", str(book), "--build", str(build), "--no-html"]) == 2
    err = capsys.readouterr().err
    assert "overlaps its sources" in err and "nothing was changed" in err
    assert _snapshot(book) == before


# ----------------------------------------------------------------------------- 2. a typo'd preset
@pytest.mark.parametrize("bad", [["--preset", "gpu"], ["--seed", "-1"], ["--seed", str(2**32)],
                                 ["--only", "nope"]])
def test_bad_arguments_leave_the_previous_build_as_it_was(tmp_path, capsys, bad):
    book = _book(tmp_path)
    build = _old_build(tmp_path, book)
    before = _snapshot(build)
    assert run_book.main(["--book", str(book), "--build", str(build), "--no-html", *bad]) == 2
    err = capsys.readouterr().err
    assert bad[1] in err and "nothing was changed" in err
    assert _snapshot(build) == before


@pytest.mark.parametrize("flag", ["--build", "--html-out"])
def test_a_build_or_html_folder_that_is_a_file_is_refused(tmp_path, capsys, flag):
    book = _book(tmp_path)
    (tmp_path / "afile").write_text("x")
    args = ["--book", str(book), "--build", str(tmp_path / "build"), flag, str(tmp_path / "afile")]
    assert run_book.main(args) == 2
    assert "is a file; it must be a folder" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "x"
    assert not (tmp_path / "build").exists()


def test_only_needs_a_chapter_name(tmp_path):
    with pytest.raises(SystemExit) as e:
        run_book.main(["--book", str(_book(tmp_path)), "--only"])
    assert e.value.code == 2


def test_chapters_only_needs_only(tmp_path, capsys):
    assert run_book.main(["--book", str(_book(tmp_path)), "--build", str(tmp_path / "build"), "--chapters-only"]) == 2
    assert "--chapters-only needs --only" in capsys.readouterr().err and not (tmp_path / "build").exists()


def test_make_chapter_without_nb_is_a_usage_error():
    r = subprocess.run(["make", "-s", "chapter"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "usage: make chapter NB=" in r.stderr


# ----------------------------------------------------------------------------- 3. concurrent ledger writes
def test_concurrent_ledger_writes_lose_no_rows(tmp_path):
    ledger = tmp_path / "ledger.json"
    code = """
        import sys
        from geomlib.claims import CHECKS, check_claim
        for i in range(150):
            CHECKS[f"{sys.argv[1]}.{i}"] = (">=", 0.5)
            check_claim(f"{sys.argv[1]}.{i}", 1.0, ">=", 0.5, paper="p", description="d", chapter=sys.argv[1],
                        preset="cpu", seed=0)
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), who], env={**os.environ, "GEOMLIB_LEDGER": str(ledger)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    rows = read_ledger(ledger)
    assert len(rows) == 300
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_timings_of_separate_runs_are_merged(tmp_path):
    run_book.record_timings(tmp_path, {"a": 1.0}, fresh=True)
    run_book.record_timings(tmp_path, {"b": 2.0}, fresh=False)  # an --only run keeps the others
    assert json.loads((tmp_path / "timings.json").read_text()) == {"a": 1.0, "b": 2.0}
    run_book.record_timings(tmp_path, {"c": 3.0}, fresh=True)  # a full run starts afresh
    assert json.loads((tmp_path / "timings.json").read_text()) == {"c": 3.0}


# ----------------------------------------------------------------------------- 4. concurrent cache saves
def test_concurrent_cache_saves_do_not_crash_and_agree(tmp_path):
    code = """
        import json, sys, time, torch
        from geomlib.cache import cached_run
        from geomlib.models import LinearNet
        def fit(m):
            time.sleep(1.0)
            with torch.no_grad():
                m.E.add_(float(sys.argv[1]))
            return {"writer": sys.argv[1]}
        torch.manual_seed(0)
        m, rec = cached_run("race", {"k": 1}, LinearNet(5, 4), fit, verbose=False)
        print(json.dumps({"rec": rec, "e": m.E.sum().item()}))
    """
    env = {"GEOMLIB_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(i)], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    stored = json.loads(next(tmp_path.glob("race-*/record.json")).read_text())
    # whoever stored first wins; the others use its entry (record and weights), not their own
    assert all(o["rec"] == stored for o in outs)
    assert len({round(o["e"], 4) for o in outs}) == 1
    assert len(list(tmp_path.glob("race-*"))) == 1 and not list(tmp_path.glob(".*.tmp-*"))


def test_a_reader_never_sees_a_swap(tmp_path, monkeypatch):
    """Readers take a shared lock: an entry replaced while being read is never half-read."""
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    calls = []
    cached_run("entry", {"k": 1}, LinearNet(5, 4), _fit_counter(calls), verbose=False)
    code = """
        import torch
        from geomlib.cache import cached_run
        from geomlib.models import LinearNet
        for _ in range(30):
            cached_run("entry", {"k": 1}, LinearNet(5, 4), lambda m: {"trained": True}, retrain=True, verbose=False)
    """
    writer = _py(code, env={"GEOMLIB_CACHE": str(tmp_path)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # an unusable (half-swapped) entry would warn
        while writer.poll() is None:
            cached_run("entry", {"k": 1}, LinearNet(5, 4), _fit_counter(calls), verbose=False)
    assert writer.returncode == 0, writer.stderr.read()
    assert len(calls) == 1  # every read found the entry intact


# ----------------------------------------------------------------------------- 5. a cache that cannot be written
def _no_training_lost(tmp_path, monkeypatch, root: Path, expect: str):
    monkeypatch.setenv("GEOMLIB_CACHE", str(root))
    calls, seen_before_fit = [], []
    fit = _fit_counter(calls)

    def fit_after_warning(model):
        seen_before_fit.append(len(w))
        return fit(model)

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model, record = cached_run("x", {"k": 1}, LinearNet(5, 4), fit_after_warning, verbose=False)
    assert calls == [1] and record == {"trained": True}
    assert torch.all(model.E > 0.5)  # the trained weights are returned
    msgs = [str(x.message) for x in w if issubclass(x.category, CacheWarning)]
    assert msgs and expect in msgs[0], msgs
    return seen_before_fit


def test_cache_path_that_is_a_file_warns_before_training_and_keeps_the_model(tmp_path, monkeypatch):
    f = tmp_path / "cachefile"
    f.write_text("not a folder")
    seen = _no_training_lost(tmp_path, monkeypatch, f, "not a folder")
    assert seen == [1]  # the warning came before training started
    assert f.read_text() == "not a folder"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_folder_warns_before_training(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert _no_training_lost(tmp_path, monkeypatch, ro, "not writable") == [1]
    finally:
        ro.chmod(0o755)


def test_unwritable_cache_folder_warns_before_training(tmp_path, monkeypatch):
    """The same as a read-only folder, for a test run as root (who may write anywhere)."""
    def refuse(target):
        raise PermissionError(errno.EACCES, "Permission denied", str(target))
    monkeypatch.setattr(cache_mod, "temp_dir", refuse)
    assert _no_training_lost(tmp_path, monkeypatch, tmp_path / "c", "not writable") == [1]


def test_full_disk_before_training_warns_and_keeps_the_model(tmp_path, monkeypatch):
    class Usage:
        free = 0
    monkeypatch.setattr(cache_mod.shutil, "disk_usage", lambda p: Usage)
    assert _no_training_lost(tmp_path, monkeypatch, tmp_path / "c", "no space left") == [1]


def test_disk_filling_up_during_the_save_warns_keeps_the_model_and_leaves_nothing(tmp_path, monkeypatch):
    def full(obj, path):  # what torch reports when the disk fills mid-write
        Path(path).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")
    real_usage = cache_mod.shutil.disk_usage
    state = {"saving": False}

    class Full:
        free = 0

    def usage(p):
        return Full if state["saving"] else real_usage(p)

    def full_save(obj, path):
        state["saving"] = True
        full(obj, path)
    monkeypatch.setattr(cache_mod.torch, "save", full_save)
    monkeypatch.setattr(cache_mod.shutil, "disk_usage", usage)
    seen = _no_training_lost(tmp_path, monkeypatch, tmp_path / "c", "no space left")
    assert seen == [0]  # the disk was fine before training; the warning came with the failed save
    assert list((tmp_path / "c").iterdir()) == []  # no half entry, no temp folder


# ----------------------------------------------------------------------------- 6. bad input
def test_a_vocabulary_too_small_for_the_graph_is_refused():
    g = cycle(15)
    with pytest.raises(ValueError, match="collide"):
        edge_examples(g, Vocab(3))
    with pytest.raises(ValueError, match="collide"):
        path_examples(path_star(3, 4), Vocab(3), [0])


@pytest.mark.parametrize("model", [LinearNet(5, 4), Node2Vec(5, 4)])
def test_shallow_models_refuse_tokens_that_are_not_nodes(model):
    with pytest.raises(ValueError, match="not a node id"):
        model(torch.tensor([[7]]))
    with pytest.raises(ValueError, match="not a node id"):
        model(torch.tensor([[0, 9]]), torch.tensor([[-100, 1]]))
    logits, loss = model(torch.tensor([[9, 2]]), torch.tensor([[-100, 1]]))  # [EDGE]-like prefix: never read
    assert logits.shape == (1, 5) and torch.isfinite(loss)


@pytest.mark.parametrize("make", [lambda: cycle(10**9), lambda: grid(10**5, 10**5), lambda: path_star(10**8, 3)])
def test_huge_graphs_are_refused_before_allocating(make):
    start = time.perf_counter()
    with pytest.raises(ValueError, match="the limit is 10,000,000"):
        make()
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("seed, error", [("abc", TypeError), (-1, ValueError), (2**32, ValueError), (1.5, TypeError),
                                         (True, TypeError)])
def test_seeds_are_integers_in_0_to_2_32(seed, error):
    for call in (lambda: set_seed(seed), lambda: cycle(15, seed), lambda: pathstar_task(4, 3, seed=seed),
                 lambda: TrainConfig(steps=1, seed=seed)):
        with pytest.raises(error, match=r"seed.*\[0, 2\^32\)"):
            call()
    set_seed(2**32 - 1)


def test_a_split_with_too_few_arms_names_the_smallest_that_works():
    with pytest.raises(ValueError, match="use d >= 3"):
        pathstar_task(2, 5)
    pathstar_task(3, 5)


def test_override_types_are_checked_where_they_enter():
    run = get_preset("path_finding_from_memory", "cpu").run
    with pytest.raises(TypeError, match="PathStarRun.d must be int"):
        replace(run, d="500")
    with pytest.raises(TypeError, match="lr must be a number"):
        replace(run.stages[1], train=replace(run.stages[1].train, lr="fast"))
    with pytest.raises(TypeError, match="Stage.batch must be"):
        replace(run.stages[1], batch=2048.0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        TrainConfig(steps="100")
    with pytest.raises(TypeError, match="lr must be a number"):
        TrainConfig(steps=1, lr="1e-3")
    assert replace(run.stages[1].train, lr=1).lr == 1  # an int for a float: fine


def test_an_only_run_refreshes_the_notebooks_it_executes_and_keeps_other_chapters(tmp_path):
    """An --only run executes the report (and any page without claims) every time: a copy staged by
    an older build must not be executed instead of today's source (it imported a module that had
    moved, and every robustness run of the chapters after it failed at the report)."""
    book = _book(tmp_path)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 'today'")]), book / "report.ipynb")
    staged = tmp_path / "build" / book.name
    staged.mkdir(parents=True)
    old = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("an old executed copy")]))
    for name in ("one", "two", "report"):
        (staged / f"{name}.ipynb").write_text(old)
    run_book.stage(book, staged, ["two"])
    assert (staged / "one.ipynb").read_text() == old  # another chapter's result stays
    assert (staged / "two.ipynb").read_text() == (book / "two.ipynb").read_text()
    assert (staged / "report.ipynb").read_text() == (book / "report.ipynb").read_text()


# ----------------------------------------------------------------------------- 7. messages, not tracebacks
@pytest.mark.parametrize("content, problem", [("{not json", "corrupt"), ("[1, 2]", "does not hold claim rows"),
                                              ('{"f.one": {"chapter": "one"}}', "lacks the field")])
def test_a_damaged_ledger_is_refused_before_any_chapter_runs(tmp_path, capsys, content, problem):
    book = _book(tmp_path)
    build = _old_build(tmp_path, book)
    (build / "ledger.json").write_text(content)
    assert run_book.main(["--book", str(book), "--build", str(build), "--only", "two", "--no-html"]) == 2
    err = capsys.readouterr().err
    assert problem in err and "ledger.json" in err and "delete it" in err
    assert not (build / book.name / "two.ipynb").exists()  # nothing ran
    with pytest.raises(ValueError, match=problem):
        drop_chapter_rows("one", build / "ledger.json")
    with pytest.raises(ValueError, match=problem):
        read_ledger(build / "ledger.json")


def test_report_never_sees_a_row_missing_fields(tmp_path):
    p = tmp_path / "ledger.json"
    write_json_atomic(p, {"a": _row("a"), "b": {"chapter": "one", "status": "pass"}})
    with pytest.raises(ValueError, match="claim 'b' lacks the field"):
        read_ledger(p)
    write_json_atomic(p, {"a": _row("a")})
    assert "1 of 1 claims pass" in report_markdown(read_ledger(p))


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_stops_cleanly_and_marks_unrun_cells(tmp_path, how):
    """Ctrl-C (SIGINT to the process group) and a plain `kill` (SIGTERM to the runner) stop alike."""
    marker = tmp_path / "started"
    book = _book(tmp_path, {"one": [f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(60)",
                                    "print('after')",
                                    f"{REGISTER}\ncheck_claim('f.one', 1.0, '>=', 0.5, paper='p', "
                                    "description='d', chapter='one', preset=preset, seed=seed)"]})
    build = tmp_path / "build"
    p = subprocess.Popen([sys.executable, str(ROOT / "tools" / "run_book.py"), "--book", str(book), "--build",
                          str(build), "--only", "one", "--no-html"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), p.stderr.read() if p.poll() is not None else "the chapter did not start"
    if how == "ctrl-c":
        os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    else:
        os.kill(p.pid, signal.SIGTERM)  # what `kill <pid>` does
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted during chapter 'one'" in err
    # no traceback of the executor (the kernel, a process of its own, may log its shutdown)
    assert "KeyboardInterrupt" not in err and "run_book.py" not in err and "papermill" not in err, err
    kept = nbformat.read(build / book.name / "one.ipynb", as_version=4)
    statuses = [c.metadata.get("papermill", {}).get("status") for c in kept.cells if c.cell_type == "code"]
    assert statuses[-2:] == ["not run (interrupted)"] * 2, statuses
    assert kept.metadata.papermill["interrupted"] is True


def test_empty_environment_variables_mean_the_defaults(monkeypatch):
    monkeypatch.setenv("GEOMLIB_CACHE", "")
    monkeypatch.setenv("GEOMLIB_LEDGER", "")
    assert cache_root() == Path.home() / ".cache" / "geomlib"
    assert ledger_path() == Path("geomlib-ledger.json")


# ----------------------------------------------------------------------------- 8. hygiene
def test_a_save_killed_mid_way_leaves_nothing_behind_for_long(tmp_path):
    code = """
        import time, torch
        from geomlib import cache
        from geomlib.models import LinearNet
        real = torch.save
        def slow(obj, path):
            real(obj, path)
            print("saving", flush=True)
            time.sleep(60)
        cache.torch.save = slow
        cache.cached_run("killed", {"k": 1}, LinearNet(5, 4), lambda m: {}, verbose=False)
    """
    p = _py(code, env={"GEOMLIB_CACHE": str(tmp_path)})
    assert p.stdout.readline().strip() == "saving", p.stderr.read()
    p.kill()  # kill -9 in the middle of the save
    p.wait(timeout=30)
    assert len(list(tmp_path.glob(".killed-*.tmp-*"))) == 1 and not list(tmp_path.glob("killed-*"))
    assert clean_stale(tmp_path) and not list(tmp_path.glob(".*.tmp-*"))
    # a live writer's temp folder is left alone
    from geomlib import fileio
    mine = tmp_path / f".x.tmp-{fileio._HOST}-{os.getpid()}-abc"
    mine.mkdir()
    clean_stale(tmp_path)
    assert mine.exists()


def test_the_next_cache_use_removes_a_dead_writers_temp_folder(tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from geomlib import fileio
    stale = tmp_path / f".x-0123.tmp-{fileio._HOST}-{int(dead.stdout)}-deadbeef"
    stale.mkdir()
    (stale / "model.pt").write_bytes(b"half")
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    cached_run("x", {"k": 1}, LinearNet(5, 4), _fit_counter([]), verbose=False)
    assert not stale.exists()


def test_files_follow_the_umask(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
        monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setitem(CHECKS, "u.a", (">=", 0.5))
        check_claim("u.a", 1.0, ">=", 0.5, **COMMON)
        cached_run("u", {"k": 1}, LinearNet(5, 4), _fit_counter([]), verbose=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ledger.json").stat().st_mode) == 0o644
    entry = next((tmp_path / "cache").glob("u-*"))
    assert stat.S_IMODE(entry.stat().st_mode) == 0o755
    for f in entry.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name


def test_an_unknown_papermill_parameter_is_an_error_that_names_it(tmp_path):
    """`papermill chapter.ipynb out.ipynb -p sead 1` must not run seed 0 and exit 0."""
    import nbformat
    import papermill

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset: str = "cpu"\nseed: int = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell('from geomlib import Chapter\nch = Chapter("fixture", preset, seed)\n'
                                                  'print("ran with seed", ch.seed)')]
    src = tmp_path / "chapter.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(papermill.PapermillExecutionError, match="sead"):
        papermill.execute_notebook(str(src), str(tmp_path / "out.ipynb"), parameters={"sead": 1}, progress_bar=False,
                                   kernel_name="python3", language="python")
    # the declared parameters pass, and a bad preset is named too
    done = papermill.execute_notebook(str(src), str(tmp_path / "ok.ipynb"), parameters={"seed": 3}, progress_bar=False,
                                      kernel_name="python3", language="python")
    assert "ran with seed 3" in "".join(o.get("text", "") for o in done.cells[-1].outputs)
    with pytest.raises(papermill.PapermillExecutionError, match="gpu"):
        papermill.execute_notebook(str(src), str(tmp_path / "bad.ipynb"), parameters={"preset": "gpu"},
                                   progress_bar=False, kernel_name="python3", language="python")


# ----------------------------------------------------------------------------- 8. runs that never lose their place
def _long_tiny_run(**changes):
    """A resumable path-star run of seconds that saves a checkpoint every 2 steps (8 edge + 6 mixed)."""
    from geomlib.presets import GPT, PATHSTAR_CPU
    edges, mixed = PATHSTAR_CPU.stages
    run = replace(PATHSTAR_CPU, d=8, l=4, precision="fp32", eval_every=2, model=GPT(n_layer=1, n_head=1, n_embd=16),
                  stages=(replace(edges, train=replace(edges.train, steps=8, eval_every=2)),
                          replace(mixed, batch=16, train=replace(mixed.train, steps=6, eval_every=2))))
    return replace(run, **changes)


class _Killed(Exception):
    pass


def _kill_at_save(n: int):
    saves = []

    def on_checkpoint(history):
        saves.append(history.rows[-1]["step"])
        if len(saves) == n:
            raise _Killed
    return on_checkpoint


def _untimed(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_a_killed_run_resumes_after_the_library_changes_and_records_both_sessions(tmp_path, monkeypatch, capsys):
    """An edit to the code that changes numbers (or a torch upgrade) used to rename the checkpoint,
    so the same command started again from step 0 without a word."""
    from geomlib import provenance
    from geomlib.checkpoints import checkpoint_path
    from geomlib.recipes import pathstar_run
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    run = _long_tiny_run()
    with pytest.raises(_Killed):
        pathstar_run(run, resumable=True, progress=False, on_checkpoint=_kill_at_save(3))
    assert checkpoint_path(run).exists()
    before = provenance.library_fingerprint()
    monkeypatch.setattr(provenance, "library_fingerprint", lambda: "edited-source")
    capsys.readouterr()
    _, _, hist = pathstar_run(run, resumable=True, progress=False)
    out = capsys.readouterr().out
    assert "resuming from" in out and f"geomlib {before}" in out and "geomlib edited-source" in out
    assert [s["from_step"] for s in hist.meta["sessions"]] == [0, 6]
    assert [s["geomlib"] for s in hist.meta["sessions"]] == [before, "edited-source"]
    assert all(s["commit"] for s in hist.meta["sessions"]) and hist.last["step"] == 14
    assert not checkpoint_path(run).exists()  # finished and cached


def test_the_kill_edit_a_comment_rerun_sequence_resumes(tmp_path):
    """The issue's repro, as a user runs it: kill -9 mid-run, append a comment to a module of the
    library (a copy of it), run the same command again."""
    import shutil
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "src" / "geomlib", pkg / "geomlib", ignore=shutil.ignore_patterns("__pycache__", "data"))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        sys.path.insert(0, sys.argv[1])
        import geomlib
        assert geomlib.__file__.startswith(sys.argv[1]), geomlib.__file__
        sys.path.insert(0, sys.argv[2])
        from test_faults import _long_tiny_run
        from geomlib.recipes import pathstar_run
        saves = []
        def kill(history):
            saves.append(1)
            if sys.argv[3] == "kill" and len(saves) == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        _, _, hist = pathstar_run(_long_tiny_run(), resumable=True, progress=False, on_checkpoint=kill)
        print("LAST", hist.last["step"], "SESSIONS", [s["from_step"] for s in hist.meta["sessions"]])
    """))
    env = {**os.environ, "GEOMLIB_CACHE": str(tmp_path / "cache"), "GEOMLIB_PROGRESS": "0"}
    args = [sys.executable, str(script), str(pkg), str(ROOT / "tests")]
    first = subprocess.run(args + ["kill"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == -signal.SIGKILL, first.stderr
    for module in ("plots.py", "train.py"):  # a module that cannot change numbers, and one that can
        with open(pkg / "geomlib" / module, "a") as f:
            f.write("\n# x\n")
    again = subprocess.run(args + ["run"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout and "written by other code" in again.stdout
    assert "LAST 14 SESSIONS [0, 8]" in again.stdout


def test_editing_a_module_that_cannot_change_numbers_keeps_every_cache_key(tmp_path, monkeypatch):
    import shutil

    from geomlib import provenance
    pkg = tmp_path / "geomlib"
    shutil.copytree(Path(provenance.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__", "data"))
    monkeypatch.setattr(provenance, "__file__", str(pkg / "provenance.py"))
    provenance.library_fingerprint.cache_clear()
    try:
        before = provenance.library_fingerprint()
        for module in ("plots.py", "presets/pathstar.py", "presets/departures.py", "claims.py"):
            (pkg / module).write_text((pkg / module).read_text() + "\n# a reworded reason\n")
            provenance.library_fingerprint.cache_clear()
            assert provenance.library_fingerprint() == before, module
    finally:
        monkeypatch.undo()
        provenance.library_fingerprint.cache_clear()
    root = Path(provenance.__file__).parent
    modules = {p.stem for p in root.glob("*.py")} | {p.parent.name for p in root.glob("*/__init__.py")}
    listed = set(provenance.NUMERIC_MODULES) | set(provenance.OTHER_MODULES)
    assert modules == listed and not set(provenance.NUMERIC_MODULES) & set(provenance.OTHER_MODULES), \
        "every module of geomlib is listed once: in NUMERIC_MODULES (changes numbers) or OTHER_MODULES"


def test_a_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch):
    from geomlib.checkpoints import CheckpointError, checkpoint_path
    from geomlib.recipes import pathstar_run
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    a, b = _long_tiny_run(), _long_tiny_run(d=9)
    with pytest.raises(_Killed):
        pathstar_run(a, resumable=True, progress=False, on_checkpoint=_kill_at_save(2))
    checkpoint_path(a).rename(checkpoint_path(b))
    with pytest.raises(CheckpointError, match=r"written for another run \(it differs in config\).*rm '"):
        pathstar_run(b, resumable=True, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("pathstar-")]  # nothing cached as b


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", None])
def test_a_damaged_checkpoint_is_named_with_what_to_do(tmp_path, monkeypatch, content):
    from geomlib.checkpoints import CheckpointError, checkpoint_path
    from geomlib.recipes import pathstar_run
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    run = _long_tiny_run()
    path = checkpoint_path(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        torch.save({"model": {}}, path)  # readable, but not a run's state
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(path))} cannot be read.*rm '"):
        pathstar_run(run, resumable=True, progress=False)


def _long_run_module():
    import long_run
    return long_run


def test_a_long_run_never_replaces_a_longer_shipped_curve(tmp_path, monkeypatch, capsys):
    """A shipped unfinished curve whose checkpoint is gone: refused, not restarted from step 0 and
    overwritten with a shorter curve."""
    long_run = _long_run_module()
    from geomlib.presets import plain
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(long_run, "ROOT", tmp_path)
    run, out = _long_tiny_run(), tmp_path / "run.json"
    shipped = {"config": plain(run), "steps": 1000, "status": "unfinished", "sessions": [{"started": "then"}],
               "rows": [{"step": 1000}]}
    out.write_text(json.dumps(shipped))
    assert long_run.run_one("length", "x", "a test", run, 0, out, "cmd") is None
    assert "checkpoint" in capsys.readouterr().err and json.loads(out.read_text()) == shipped
    # --redo starts over with a fresh record
    last = long_run.run_one("length", "x", "a test", run, 0, out, "cmd", redo=True)
    doc = json.loads(out.read_text())
    assert last["step"] == 14 and doc["steps"] == 14 and doc["status"] == "finished"
    assert len(doc["sessions"]) == 1 and doc["sessions"][0]["commit"] and doc["sessions"][0]["from_step"] == 0


def test_a_resumed_long_run_keeps_the_shipped_curve_until_it_passes_it(tmp_path, monkeypatch):
    long_run = _long_run_module()
    from geomlib.presets import plain
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(long_run, "ROOT", tmp_path)
    run, out = _long_tiny_run(), tmp_path / "run.json"
    from geomlib.recipes import pathstar_run
    with pytest.raises(_Killed):
        pathstar_run(run, resumable=True, progress=False, on_checkpoint=_kill_at_save(3))
    shipped = {"config": plain(run), "steps": 12, "status": "unfinished", "sessions": [{"started": "then"}],
               "rows": [{"step": s} for s in range(0, 13, 2)]}
    out.write_text(json.dumps(shipped))
    written = []
    real = long_run.write_json_atomic
    monkeypatch.setattr(long_run, "write_json_atomic", lambda path, doc: (written.append(doc["steps"]), real(path, doc)))
    long_run.run_one("length", "x", "a test", run, 0, out, "cmd")
    assert written and min(written) >= 12  # never a shorter curve over the shipped one
    doc = json.loads(out.read_text())
    assert doc["steps"] == 14 and [s.get("started") for s in doc["sessions"]][0] == "then" and len(doc["sessions"]) == 2


def test_sweep_rows_of_other_code_are_left_out_and_reported(tmp_path, monkeypatch, capsys):
    from geomlib import sweep
    cells = {("arms d", 8): _long_tiny_run()}
    path = sweep._cell_file(tmp_path, "scaling", "arms d", 8, cells["arms d", 8], 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"axis": "arms d", "value": 8, "heldout_full_path": 1.0}))
    assert sweep.collect(tmp_path, "scaling", cells, [0])["finished"] == 1
    monkeypatch.setattr(sweep, "library_fingerprint", lambda: "edited-source")
    doc = sweep.collect(tmp_path, "scaling", cells, [0])
    assert doc["finished"] == 0 and doc["left_out"] == 1 and "other code" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [(["--parallel", "0"], "parallel must be an integer >= 1"),
                                           (["--timeout-min", "0"], "timeout_min must be an integer >= 1"),
                                           (["--out", "FILE"], "is a file; it must be a folder")])
def test_bad_sweep_arguments_are_clean_errors(tmp_path, capsys, args, message):
    from geomlib import sweep
    (tmp_path / "FILE").write_text("x")
    args = [str(tmp_path / a) if a == "FILE" else a for a in args]
    argv = args + (["--out", str(tmp_path / "sweep")] if "--out" not in args else [])
    assert sweep.main(argv) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("args, message", [(["--out", "DIR"], "is a folder; it must be the JSON file"),
                                           (["--build", "FILE"], "is a file; it must be a folder")])
def test_bad_robustness_paths_are_clean_errors(tmp_path, capsys, monkeypatch, args, message):
    import robustness
    monkeypatch.delenv("GEOMLIB_PRECISION", raising=False)
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    argv = [str(tmp_path / a) if a in ("FILE", "DIR") else a for a in args]
    assert robustness.main(argv + ["--only", "associative_vs_geometric"]) == 2
    assert message in capsys.readouterr().err and (tmp_path / "FILE").read_text() == "x"


# ----------------------------------------------------------------------------- 9. refused at the door
@pytest.mark.parametrize("claim, measured, threshold, changes, error, message", [
    ("not.a.claim", 1.0, 0.5, {}, ValueError, "not in geomlib.claims.CHECKS"),
    ("geometry_explains.probe", "0.95", 0.9, {}, TypeError, "must be a real number, got '0.95'"),
    ("geometry_explains.probe", True, 0.9, {}, TypeError, "must be a real number, got True"),
    ("path_finding_from_memory.incontext_n1_at_chance", 0.0, float("nan"), {}, ValueError, "finite threshold"),
    ("geometry_explains.probe", 0.95, 0.9, {"preset": "nope"}, ValueError, "preset 'nope' is not a preset"),
    ("geometry_explains.probe", 0.95, 0.9, {"seed": -1}, ValueError, r"seed.*\[0, 2\^32\)"),
])
def test_check_claim_records_only_registered_claims_and_real_numbers(tmp_path, monkeypatch, claim, measured,
                                                                      threshold, changes, error, message):
    monkeypatch.setenv("GEOMLIB_LEDGER", str(tmp_path / "ledger.json"))
    op = CHECKS[claim][0] if claim in CHECKS else ">="
    with pytest.raises(error, match=message):
        check_claim(claim, measured, op, threshold, **{**COMMON, **changes})
    assert not (tmp_path / "ledger.json").exists()  # nothing recorded
    check_claim("geometry_explains.probe", torch.tensor(0.95), ">=", 0.9, **COMMON)  # a one-element tensor is a number


@pytest.mark.parametrize("change, message", [
    (lambda r: replace(r, eval_every=-5), "eval_every must be >= 0"),
    (lambda r: replace(r, stages=()), "stages is empty"),
    (lambda r: replace(r, stop_at=float("nan")), "stop_at must be a finite number"),
    (lambda r: replace(r, stop_at=2.0), r"stop_at must be in \[0.0, 1.0\]"),
    (lambda r: replace(r, l=1), "l must be >= 2"),
    (lambda r: replace(r, model=replace(r.model, n_embd=130)), "multiple of n_head"),
    (lambda r: replace(r.stages[1], batch=0), "batch must be >= 1"),
    (lambda r: replace(r.stages[1].train, weight_decay=-1.0), "weight_decay must be >= 0"),
    (lambda r: replace(r.stages[1].train, lr=float("inf")), "lr must be a finite number"),
    (lambda r: replace(r.stages[1].train, betas=(0.9, 1.5)), r"betas must be two numbers in \[0, 1\)"),
    (lambda r: replace(r.stages[1].train, grad_clip=-1.0), "grad_clip must be None"),
])
def test_preset_values_are_checked_not_only_their_types(change, message):
    run = get_preset("path_finding_from_memory", "cpu").run
    with pytest.raises(ValueError, match=message):
        change(run)


def test_a_bad_precision_variable_stops_the_book_before_anything_runs(tmp_path):
    book = _book(tmp_path)
    build = tmp_path / "build"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_book.py"), "--book", str(book), "--build", str(build),
                        "--no-html"], env={**os.environ, "GEOMLIB_PRECISION": "fp16"}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "GEOMLIB_PRECISION must be 'fp32' or 'bf16'" in r.stderr and not build.exists()


def test_vocabulary_sizes_and_token_ranges_are_named():
    from geomlib.models import build_model
    from geomlib.specs import GPT, Mamba
    for bad in (-5, 0, 2.5, True):
        with pytest.raises(ValueError, match="Vocab.num_nodes must be an integer >= 1"):
            Vocab(bad)
    for spec, kw in ((GPT(n_layer=1, n_head=1, n_embd=8), dict(block_size=4)), (Mamba(n_layer=1, d_model=8), {})):
        model = build_model(spec, vocab_size=10, **kw)
        with pytest.raises(ValueError, match=r"token 12 is outside the model's vocabulary of size 10 \(tokens 0..9\)"):
            model(torch.tensor([[1, 12]]))
        with pytest.raises(ValueError, match="token -3 is outside"):
            model(torch.tensor([[-3, 1]]))
        assert model(torch.tensor([[0, 9]]))[0].shape[-1] == 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_pool_workers_end_when_the_build_is_killed(tmp_path):
    """kill -9 of a process training in a pool (as a chapter's sweep does) leaves no worker behind:
    each worker starts with geomlib.processes.die_with_parent, the initializer the library's pool uses."""
    import inspect

    from geomlib import processes
    assert "initializer=die_with_parent" in inspect.getsource(processes.single_threaded_runs)
    pids = tmp_path / "pids"
    code = f"""
        import multiprocessing, os, pathlib, time
        from concurrent.futures import ProcessPoolExecutor
        from geomlib.processes import die_with_parent

        def work(i):
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(120)

        if __name__ == "__main__":
            with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent) as p:
                list(p.map(work, range(2)))
    """
    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(code))
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    deadline = time.time() + 60
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.time() < deadline:
        time.sleep(0.2)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2
    parent.kill()
    parent.wait(timeout=10)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"

    deadline = time.time() + 10
    while any(alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(w) for w in workers), f"workers {workers} outlived their killed parent"


def test_two_runs_can_share_a_fresh_build_folder_and_a_damaged_copy_is_restaged(tmp_path):
    """Two `--only` runs started together on one fresh build folder both finish (staging is locked);
    a staged chapter left truncated (a full disk) is staged afresh, not a raw NotJSONError."""
    book = _book(tmp_path)
    for attempt in range(3):
        build = tmp_path / f"build{attempt}"
        procs = [subprocess.Popen([sys.executable, str(ROOT / "tools" / "run_book.py"), "--book", str(book), "--build",
                                   str(build), "--only", name, "--no-html", "--chapters-only"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("one", "two")]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-2000:]
            assert "FileExistsError" not in err
    staged = build / book.name / "two.ipynb"
    staged.write_text(staged.read_text()[:100])  # truncated
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "run_book.py"), "--book", str(book), "--build", str(build),
                        "--only", "one", "--no-html", "--chapters-only"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "NotJSONError" not in r.stderr, r.stderr[-2000:]
    nbformat.read(staged, as_version=4)  # staged afresh from the source
