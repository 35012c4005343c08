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
from geomlib.claims import check_claim, drop_chapter_rows, ledger_path, read_ledger, report_markdown
from geomlib.fileio import clean_stale, write_json_atomic
from geomlib.graphs import cycle, grid, path_star
from geomlib.models import LinearNet, Node2Vec
from geomlib.presets import get_preset
from geomlib.tasks import Vocab, edge_examples, path_examples, pathstar_task
from geomlib.train import TrainConfig, set_seed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import run_book  # noqa: E402

COMMON = dict(paper="p", description="d", chapter="ch", preset="cpu", seed=0)


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
        body = cells.get(name, [f"from geomlib import check_claim\ncheck_claim('f.{name}', 1.0, '>=', 0.5, paper='p', "
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


def test_only_needs_a_chapter_name(tmp_path):
    with pytest.raises(SystemExit) as e:
        run_book.main(["--book", str(_book(tmp_path)), "--only"])
    assert e.value.code == 2


def test_make_chapter_without_nb_is_a_usage_error():
    r = subprocess.run(["make", "-s", "chapter"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "usage: make chapter NB=" in r.stderr


# ----------------------------------------------------------------------------- 3. concurrent ledger writes
def test_concurrent_ledger_writes_lose_no_rows(tmp_path):
    ledger = tmp_path / "ledger.json"
    code = """
        import sys
        from geomlib.claims import check_claim
        for i in range(150):
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


def test_ctrl_c_stops_cleanly_and_marks_unrun_cells(tmp_path):
    marker = tmp_path / "started"
    book = _book(tmp_path, {"one": [f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(60)",
                                    "print('after')",
                                    "from geomlib import check_claim\ncheck_claim('f.one', 1.0, '>=', 0.5, paper='p', "
                                    "description='d', chapter='one', preset=preset, seed=seed)"]})
    build = tmp_path / "build"
    p = subprocess.Popen([sys.executable, str(ROOT / "tools" / "run_book.py"), "--book", str(book), "--build",
                          str(build), "--only", "one", "--no-html"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), p.stderr.read() if p.poll() is not None else "the chapter did not start"
    os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
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
