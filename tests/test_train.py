import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from geomlib import cache, models, specs, tasks
from geomlib.train import History, TrainConfig, lr_at, train


def _run(seed=0, steps=30):
    t = tasks.pathstar_task(6, 4, seed=0)
    torch.manual_seed(seed)
    m = models.build_model(specs.GPT(n_layer=1, n_head=2, n_embd=16), vocab_size=t.vocab.size, block_size=8)
    h = train(m, {"edges": t.edges, "paths": t.train_paths},
              TrainConfig(steps=steps, lr=1e-2, eval_every=10, seed=seed, batch_size={"edges": 8, "paths": 2}),
              evaluate=lambda m: {"one": 1.0}, progress=False)
    return m, h


def test_determinism_same_seed_same_losses():
    (_, a), (_, b), (_, c) = _run(0), _run(0), _run(1)
    assert a["loss"][1:].tolist() == b["loss"][1:].tolist()
    assert a["loss"][1:].tolist() != c["loss"][1:].tolist()
    assert a.meta["configs"][0]["threads"] == torch.get_num_threads() and a.meta["configs"][0]["seed"] == 0


def test_history_rows_and_early_stop():
    t = tasks.pathstar_task(3, 3, seed=0)
    m = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=8), vocab_size=t.vocab.size, block_size=8)
    h = train(m, t.edges, TrainConfig(steps=100, lr=1e-2, eval_every=5), evaluate=lambda m: {"x": 1.0},
              stop=lambda row: row["step"] >= 15, progress=False)
    assert h["step"].tolist() == [0, 5, 10, 15] and h.first_step("x", 1.0) == 0
    h2 = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert h2.rows == h.rows


def test_schedule():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, final_lr_ratio=0.1)
    assert lr_at(cfg, 0) == pytest.approx(0.1) and lr_at(cfg, 9) == pytest.approx(1.0)
    assert lr_at(cfg, 99) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(TrainConfig(steps=5, lr=0.3, schedule="constant"), 4) == 0.3


@pytest.mark.parametrize("bad", [dict(steps=-1), dict(steps=1, lr=0), dict(steps=1, schedule="linear"),
                                 dict(steps=1, optimizer="adam")])
def test_bad_train_config(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_bad_batch_stream_name():
    t = tasks.pathstar_task(3, 3, seed=0)
    m = models.build_model(specs.GPT(n_layer=1, n_head=1, n_embd=8), vocab_size=t.vocab.size, block_size=8)
    with pytest.raises(ValueError, match="not in the data"):
        train(m, {"edges": t.edges}, TrainConfig(steps=1, batch_size={"paths": 4}), progress=False)


def test_cache_roundtrip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    calls = []

    def fit(m):
        calls.append(1)
        with torch.no_grad():
            m.E.add_(1.0)
        return {"value": 42}

    key = {"model": "node2vec", "n": 5}
    torch.manual_seed(0)
    m1, r1 = cache.cached_run("t", key, models.Node2Vec(5, 3), fit, verbose=False)
    m2, r2 = cache.cached_run("t", key, models.Node2Vec(5, 3), fit, verbose=False)
    assert len(calls) == 1 and r2 == {"value": 42} and torch.equal(m1.E, m2.E)
    entry = next(tmp_path.glob("t-*"))
    (entry / "model.pt").write_bytes(b"garbage")
    with pytest.warns(cache.CacheWarning, match="unusable"):
        cache.cached_run("t", key, models.Node2Vec(5, 3), fit, verbose=False)
    assert len(calls) == 2
    cache.cached_run("t", {**key, "n": 6}, models.Node2Vec(5, 3), fit, verbose=False)  # other key: other entry
    assert len(calls) == 3 and len(list(tmp_path.glob("t-*"))) == 2
    assert not list(tmp_path.glob(".t-*.tmp-*"))  # no half-written entries left behind (only lock files)


def test_wsd_schedule():
    cfg = TrainConfig(steps=100, lr=1.0, schedule="wsd", decay_fraction=0.5, final_lr_ratio=0.1)
    assert lr_at(cfg, 10) == 1.0 and lr_at(cfg, 49) == 1.0
    assert 0.1 < lr_at(cfg, 75) < 1.0 and lr_at(cfg, 99) == pytest.approx(0.1, abs=1e-3)
    with pytest.raises(ValueError):
        TrainConfig(steps=1, decay_fraction=0.0)


def _tiny_run(**changes):
    """The book's path-star recipe shrunk to seconds: d = 8, l = 4, a 1 x 16 GPT, 4 + 2 steps."""
    from geomlib.presets import GPT, PATHSTAR_CPU
    edges, mixed = PATHSTAR_CPU.stages
    run = replace(PATHSTAR_CPU, d=8, l=4, model=GPT(n_layer=1, n_head=1, n_embd=16), stages=(
        replace(edges, train=replace(edges.train, steps=4, eval_every=2)),
        replace(mixed, train=replace(mixed.train, steps=2), batch=16)))
    return replace(run, **changes)


def test_recipe_stages_and_cache(tmp_path, monkeypatch):
    from geomlib.recipes import pathstar_run, stage_batches
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    base = _tiny_run(precision="fp32")
    edges, mixed = base.stages
    run = replace(base, stages=(replace(edges, train=replace(edges.train, steps=6, eval_every=3)),
                                replace(mixed, train=replace(mixed.train, steps=4))))
    task, model, hist = pathstar_run(run, progress=False)
    assert hist["step"].tolist() == [0, 3, 6, 10] and hist.meta["stage_starts"] == [0, 6]
    assert {"heldout_full_path", "heldout_n1", "heldout_n1_tf", "train_full_path", "edge_top1_neighbour",
            "edge_top1_neighbour_without_root", "probe", "probe_k1",
            "heldout_pos0", "heldout_pos3", "heldout_tf_pos1"} <= set(hist.last)
    _, _, again = pathstar_run(run, progress=False)  # from the cache: identical record
    assert again.rows == hist.rows
    streams, sizes = stage_batches(task, "mixed", 100, 0.25)
    assert sizes == {"edges": 75, "paths": 25}
    with pytest.raises(ValueError):
        stage_batches(task, "mixed", 100, 1.5)


def test_presets_are_typed_and_named_after_chapters():
    import sys

    from geomlib.presets import PRESETS, get_preset
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import notebooks
    assert set(PRESETS) == set(notebooks.chapters())  # one preset per claim chapter, named after its notebook
    cfg = get_preset("path_finding_from_memory")
    with pytest.raises(TypeError, match="PathStarRun.d must be int"):
        replace(cfg.run, d="500")
    with pytest.raises(TypeError, match="unexpected keyword"):
        replace(cfg.run, dd=3)
    with pytest.raises(ValueError, match="unknown preset 'gpu'"):
        get_preset("path_finding_from_memory", "gpu")
    with pytest.raises(KeyError, match="unknown chapter"):
        get_preset("pathstar")
    assert replace(cfg.run, d=200).d == 200 and cfg.run.d == 500  # a variant; the preset is untouched
    cfg2 = get_preset("path_finding_from_memory")
    assert cfg2 == cfg and cfg2 is not cfg


def test_geometric_interventions(tmp_path, monkeypatch):
    """Node2Vec-initialised embeddings and the auxiliary Node2Vec loss change the run; a bad
    option is an error, not a silent plain run."""
    from geomlib.models import node2vec_loss
    from geomlib.presets import get_preset
    from geomlib.recipes import pathstar_run
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    base = _tiny_run(d=6, precision="fp32")
    base = replace(base, stages=(replace(base.stages[0], train=replace(base.stages[0].train, eval_every=4)),
                                 base.stages[1]))
    node2vec = get_preset("spectral_bias").recipe
    task, plain, h0 = pathstar_run(base, progress=False)
    _, init, h1 = pathstar_run(replace(base, emb_init=node2vec), progress=False)
    _, aux, h2 = pathstar_run(replace(base, aux_node2vec=1.0), progress=False)
    assert h0.rows[0]["loss"] is None and h1.rows[-1]["loss"] != h0.rows[-1]["loss"] != h2.rows[-1]["loss"]
    # the init: the node rows of the token embedding start as the (centred, rescaled) Node2Vec embedding
    from geomlib.recipes import _init_from_node2vec, build_pathstar, edge_run
    _, fresh = build_pathstar(base, 0)
    before = fresh.wte.weight.detach().clone()
    _init_from_node2vec(fresh, task.graph, node2vec, 0)
    n = task.graph.num_nodes
    n2v, _ = edge_run(task.graph, replace(node2vec, model=replace(node2vec.model, dim=before.shape[1])), seed=0,
                      eval_every=0, progress=False)
    E = n2v.token_embeddings() - n2v.token_embeddings().mean(0)
    start = fresh.wte.weight.detach()[:n]
    assert torch.allclose(start / start.norm(), E / E.norm(), atol=1e-5)  # the same vectors, up to one scale
    assert torch.allclose(fresh.wte.weight.detach()[n:], before[n:])  # special tokens untouched
    # the auxiliary loss: the trained embeddings fit the Node2Vec objective better than the plain run's
    pairs = torch.as_tensor(task.graph.directed_edges)
    n2v_loss = {name: float(node2vec_loss(m.wte.weight.detach()[:n].float(), pairs)) for name, m in
                (("plain", plain), ("aux", aux))}
    assert n2v_loss["aux"] < n2v_loss["plain"], n2v_loss
    assert h0.at(4)["step"] == 4
    with pytest.raises(KeyError):
        h0.at(5)
    with pytest.raises(TypeError, match="emb_init"):
        replace(base, emb_init="laplacian")
    E = torch.randn(5, 3, requires_grad=True)
    pairs = torch.tensor([[0, 1], [1, 0], [1, 2]])
    loss = node2vec_loss(E, pairs)
    expected = -torch.log_softmax(E @ E.T, 1)[pairs[:, 0], pairs[:, 1]].mean()
    assert torch.allclose(loss, expected)


def test_a_recipe_resumed_from_its_checkpoint_ends_exactly_as_an_uninterrupted_run(tmp_path):
    from geomlib.evaluate import pathstar_metrics
    from geomlib.presets import Stage
    from geomlib.recipes import run_recipe
    from geomlib.tasks import pathstar_task
    from geomlib.train import set_seed

    task = pathstar_task(6, 3, seed=0)
    stages = (Stage("edges", TrainConfig(steps=6, lr=1e-2, eval_every=2), batch=8),
              Stage("mixed", TrainConfig(steps=6, lr=1e-2, eval_every=2), batch=8, path_fraction=0.25))

    def run(checkpoint=None, on_checkpoint=None):
        set_seed(0)
        model = models.build_model(specs.GPT(n_layer=1, n_head=2, n_embd=16, dropout=0.1), vocab_size=task.vocab.size,
                                   block_size=task.train_paths.inputs.shape[1])
        hist = run_recipe(model, task, stages, seed=0, precision="fp32", eval_every=2, progress=False,
                          evaluate=pathstar_metrics(task, probe=False), checkpoint=checkpoint,
                          on_checkpoint=on_checkpoint)
        return model, hist

    straight, h0 = run()

    class Killed(Exception):
        pass

    saves = []

    def kill_after_the_fourth_save(history):
        saves.append(history.rows[-1]["step"])
        if len(saves) == 4:  # mid-way through the mixed stage's first evaluation window
            raise Killed

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        run(ckpt, kill_after_the_fourth_save)
    assert ckpt.exists() and not list(tmp_path.glob(".*.tmp-*"))
    resumed, h1 = run(ckpt)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(h1.rows) == strip(h0.rows)
    assert h1.meta["stage_starts"] == h0.meta["stage_starts"] and h1.meta["steps_run"] == h0.meta["steps_run"]


def test_cache_key_follows_library_torch_and_precision(tmp_path, monkeypatch):
    """A change to geomlib's source, the torch version or the precision "auto" resolves to
    retrains instead of reusing the cached model."""
    from geomlib import provenance, recipes
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    monkeypatch.setenv("GEOMLIB_PRECISION", "fp32")
    cfg = _tiny_run()
    entries = lambda: sorted(p.name for p in tmp_path.iterdir() if p.is_dir())  # noqa: E731
    recipes.pathstar_run(cfg, progress=False)
    recipes.pathstar_run(cfg, progress=False)
    assert len(entries()) == 1  # the same code and settings: reused
    monkeypatch.setattr(provenance, "library_fingerprint", lambda: "edited-source")
    recipes.pathstar_run(cfg, progress=False)
    assert len(entries()) == 2  # a library change: recomputed
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    recipes.pathstar_run(cfg, progress=False)
    assert len(entries()) == 3
    monkeypatch.setenv("GEOMLIB_PRECISION", "bf16")
    recipes.pathstar_run(cfg, progress=False)
    assert len(entries()) == 4


def test_library_fingerprint_changes_with_a_source_file(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    from geomlib import provenance
    pkg = tmp_path / "geomlib"
    shutil.copytree(Path(provenance.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__", "data"))
    fake = pkg / "provenance.py"
    monkeypatch.setattr(provenance, "__file__", str(fake))
    provenance.library_fingerprint.cache_clear()
    try:
        before = provenance.library_fingerprint()
        provenance.library_fingerprint.cache_clear()
        (pkg / "train.py").write_text((pkg / "train.py").read_text() + "\n# an edit\n")
        assert provenance.library_fingerprint() != before
    finally:
        monkeypatch.undo()
        provenance.library_fingerprint.cache_clear()


def test_a_change_to_a_shared_preset_recomputes_the_runs_that_embed_it(tmp_path, monkeypatch):
    """The interventions' Node2Vec start *is* the spectral-bias chapter's recipe (the same value,
    embedded in the interventions preset): editing that recipe changes the dependent run's cache
    key, so its cached model is not reused."""
    from geomlib.presets import get_preset
    from geomlib.recipes import pathstar_run
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    spectral = get_preset("spectral_bias").recipe
    assert get_preset("interventions").variants["Node2Vec-initialised embeddings"].emb_init == spectral
    entries = lambda: sorted(p.name for p in tmp_path.iterdir() if p.is_dir())  # noqa: E731
    run = _tiny_run(emb_init=replace(spectral, train=replace(spectral.train, steps=20)), precision="fp32")
    pathstar_run(run, progress=False)
    pathstar_run(run, progress=False)
    assert len(entries()) == 1
    edited = replace(run.emb_init, train=replace(run.emb_init.train, lr=0.5))  # an edit to the spectral-bias recipe
    pathstar_run(replace(run, emb_init=edited), progress=False)
    assert len(entries()) == 2


def test_edge_runs_in_processes_match_one_after_the_other(tmp_path, monkeypatch):
    """Independent tiny-graph runs spread over worker processes give exactly what running them
    here, one after the other, gives; bad input fails before any process starts."""
    from geomlib.graphs import cycle
    from geomlib.presets import EdgeRecipe, Linear
    from geomlib.recipes import edge_runs

    recipe = EdgeRecipe(Linear(width=16), TrainConfig(steps=30, lr=1e-2))
    jobs = [(cycle(7, s), recipe, s, dict(k=2, eval_every=10, progress=False)) for s in (0, 1)]
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "here"))
    here = edge_runs(jobs, workers=1)
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "there"))  # not loaded from the first call's cache
    there = edge_runs(jobs, workers=2)
    for (m1, h1), (m2, h2) in zip(here, there):
        untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in h.rows] for h in (h1, h2)]
        assert torch.equal(m1.W, m2.W) and untimed[0] == untimed[1]
    with pytest.raises(TypeError, match="EdgeRecipe"):
        edge_runs([(cycle(7, 0), "linear", 0, {})])
    with pytest.raises(TypeError, match="eval_evry"):
        edge_runs([(cycle(7, 0), recipe, 0, dict(eval_evry=10))])


def test_an_edge_run_another_chapter_trained_is_loaded(tmp_path, monkeypatch):
    """The "Knobs" chapter's default-init knob is the "A wide linear net" chapter's net on the same
    cycle: asked again (through edge_runs, or edge_run with cache=True) it is loaded, bit for bit,
    not retrained; a different option (what its history measures) or seed is another run."""
    from geomlib import recipes
    from geomlib.graphs import cycle
    from geomlib.presets import EdgeRecipe, Linear, get_preset

    assert get_preset("knobs").variants["default small init, lr 1e-2"] == get_preset("linear_net").recipe
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    recipe = EdgeRecipe(Linear(width=16), TrainConfig(steps=30, lr=1e-2))
    g = cycle(7, 0)
    [(m1, h1), _] = recipes.edge_runs([(g, recipe, 0, dict(k=2)), (g, recipe, 0, dict(k=2))])  # trains once
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1
    monkeypatch.setattr(recipes, "train", lambda *a, **kw: pytest.fail("a cached edge run was trained again"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # edge_runs' runs are single-threaded, and a run's key names its thread count
    try:
        m2, h2 = recipes.edge_run(g, recipe, 0, k=2, cache=True)
    finally:
        torch.set_num_threads(threads)
    [(m3, _)] = recipes.edge_runs([(g, recipe, 0, dict(k=2, progress=False))])
    assert torch.equal(m1.W, m2.W) and torch.equal(m1.W, m3.W) and h2.rows[-1]["loss"] == h1.rows[-1]["loss"]
    for other in (dict(k=3), dict(k=2, eval_every=5)):
        with pytest.raises(pytest.fail.Exception, match="trained again"):
            recipes.edge_runs([(g, recipe, 0, other)])
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        recipes.edge_runs([(cycle(7, 1), recipe, 0, dict(k=2))])  # another graph (its nodes permuted)


def test_evaluating_more_often_does_not_change_training():
    """The "Headroom" chapter asks for its Transformer runs evaluated every 5 steps to load those of
    "Geometry from local supervision": that is right only if evaluation leaves training alone."""
    from geomlib.graphs import cycle
    from geomlib.presets import get_preset
    from geomlib.recipes import edge_run

    recipe = get_preset("headroom").transformer["cycle"]
    recipe = replace(recipe, train=replace(recipe.train, steps=40))
    (m0, h0), (m5, h5) = (edge_run(cycle(7, 0), recipe, 0, k=5, eval_every=e, progress=False) for e in (0, 5))
    assert all(torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m5.state_dict().values()))
    assert len(h5.rows) > len(h0.rows) and {k: v for k, v in h0.last.items() if k != "seconds"} == \
        {k: v for k, v in h5.last.items() if k != "seconds"}


def test_path_star_runs_in_processes_match_one_after_the_other(tmp_path, monkeypatch):
    """A sweep's path-star runs spread over worker processes give exactly what running them here,
    one after the other, single-threaded, gives; a run asked twice trains once; the caller's
    thread count is restored; bad input fails before any process starts."""
    from geomlib.recipes import pathstar_run, pathstar_runs
    run = _tiny_run(precision="fp32")
    jobs = [(run, 0), (replace(run, d=9), 1), (run, 0)]
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "there"))
    threads = torch.get_num_threads()
    there = pathstar_runs(jobs, workers=2, progress=False)
    assert torch.get_num_threads() == threads
    assert len([p for p in (tmp_path / "there").iterdir() if p.is_dir()]) == 2  # the repeated job trained once
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path / "here"))
    torch.set_num_threads(1)
    try:
        here = [pathstar_run(r, s, progress=False) for r, s in jobs]
    finally:
        torch.set_num_threads(threads)
    def untimed(h):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h.rows]
    for (_, m1, h1), (_, m2, h2) in zip(here, there):
        assert untimed(h1) == untimed(h2) and all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(),
                                                                                   m2.state_dict().values()))
        assert h2.meta["configs"][0]["threads"] == 1
    assert untimed(pathstar_runs(jobs[:1], progress=False)[0][2]) == untimed(there[0][2])  # from the cache
    with pytest.raises(TypeError, match="PathStarRun"):
        pathstar_runs([("plain", 0)])


# ----------------------------------------------------------------------------- the GPU path, checked on the CPU
def test_a_training_step_reads_its_target_counts_without_the_device(monkeypatch):
    """Each stream's supervised-target count came from the device every step (a host sync per
    stream on a GPU); it is now read from counts kept on the CPU, with the same losses."""
    _, before = _run(0)
    monkeypatch.setattr(tasks.Examples, "num_targets", property(lambda self: pytest.fail("a device read per step")))
    _, after = _run(0)
    assert before["loss"][1:].tolist() == after["loss"][1:].tolist()


def test_a_checkpoint_is_loaded_onto_the_cpu_and_keeps_the_cuda_generator(tmp_path, monkeypatch):
    """Resuming on CUDA loaded the checkpoint with map_location=<cuda>, which moved the saved CPU
    generator states to the GPU, where ``set_state`` refuses them; the CUDA generator was not saved."""
    from geomlib.checkpoints import checkpoint_path
    from geomlib.recipes import pathstar_run
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    run = _tiny_run(precision="fp32")

    class Stop(Exception):
        pass

    def stop(history):
        raise Stop
    with pytest.raises(Stop):
        pathstar_run(run, resumable=True, progress=False, on_checkpoint=stop)
    saved = torch.load(checkpoint_path(run), weights_only=True)
    assert "cuda_rng" in saved["train"] and saved["train"]["cuda_rng"] is None  # a CPU run: none to keep
    where = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: (where.append(kw.get("map_location")), real(*a, **kw))[1])
    pathstar_run(run, resumable=True, progress=False)
    assert where == ["cpu"]


def test_tiny_graph_jobs_on_a_gpu_run_in_this_process(tmp_path, monkeypatch):
    """On a GPU, one worker process per core would each pay for a CUDA context and hand a CUDA
    model back from a process that then exits."""
    from geomlib import processes, recipes
    from geomlib.graphs import cycle
    from geomlib.presets import EdgeRecipe, Linear

    def no_pool(*a, **kw):
        raise AssertionError("a worker pool was started on a GPU")
    monkeypatch.setattr(processes, "default_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(processes, "ProcessPoolExecutor", no_pool)
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(recipes, "edge_run", lambda g, r, s, **kw: ("here", s))
    recipe = EdgeRecipe(Linear(width=16), TrainConfig(steps=3, lr=1e-2))
    assert recipes.edge_runs([(cycle(7, s), recipe, s, {}) for s in (0, 1, 2)]) == [("here", 0), ("here", 1), ("here", 2)]


def test_a_runs_node2vec_init_is_recorded_with_its_precision_wherever_it_trained(tmp_path, monkeypatch):
    """A run whose embeddings start from Node2Vec (fp32) trains that Node2Vec too: the chapter's
    rows name its precision beside the run's, whether the run trained here, in a worker process or
    came from the cache (a worker's init was missed: an interventions row said bf16, not bf16 + fp32)."""
    from geomlib.precision import reset_used, used
    from geomlib.presets import get_preset
    from geomlib.recipes import pathstar_run, pathstar_runs
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    spectral = get_preset("spectral_bias").recipe
    run = _tiny_run(emb_init=replace(spectral, train=replace(spectral.train, steps=20)), precision="bf16")
    assert spectral.train.precision == "fp32"
    for trained_where in ("workers", "cache"):
        reset_used()
        pathstar_runs([(run, 0), (run, 1)], workers=2, progress=False)
        precisions = used()[0].split(" + ")
        assert "fp32" in precisions and any(p.startswith("bf16") for p in precisions), (trained_where, precisions)
    reset_used()
    pathstar_run(run, 0, progress=False)  # a run of the process's own thread count: trained here
    assert "fp32" in used()[0].split(" + ")


def test_path_star_jobs_on_a_gpu_run_in_this_process(tmp_path, monkeypatch):
    """As for tiny-graph jobs: on a GPU a sweep's cells run here, one after the other."""
    from geomlib import processes, recipes

    def no_pool(*a, **kw):
        raise AssertionError("a worker pool was started on a GPU")
    monkeypatch.setenv("GEOMLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(processes, "default_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(processes, "ProcessPoolExecutor", no_pool)
    monkeypatch.setattr(recipes, "pathstar_run", lambda run, seed, **kw: ("here", run.d, seed))
    jobs = [(_tiny_run(d=d), s) for d, s in ((8, 0), (9, 1), (10, 2))]
    assert recipes.pathstar_runs(jobs) == [("here", 8, 0), ("here", 9, 1), ("here", 10, 2)]


def test_long_path_star_runs_are_resumable_by_default(tmp_path, monkeypatch):
    """The ``paper`` chapters call ``pathstar_run(cfg.run, seed)``: a 525,000-step run must survive a
    disconnect without the chapter asking; a CPU preset's run writes no checkpoints."""
    from geomlib import recipes
    from geomlib.presets import get_preset

    class Enough(Exception):
        pass

    def no_training(*args, **kwargs):
        raise Enough
    asked = []
    monkeypatch.setattr(recipes, "build_pathstar", lambda run, seed=0: (None, None))
    monkeypatch.setattr(recipes, "cached_run", no_training)
    monkeypatch.setattr(recipes, "checkpoint_for", lambda key: asked.append(key) or tmp_path / "c")
    for preset, resumable in (("cpu", False), ("paper", True)):
        asked.clear()
        with pytest.raises(Enough):
            recipes.pathstar_run(get_preset("path_finding_from_memory", preset).run)
        assert bool(asked) == resumable, preset


def test_head_chunk_trains_the_same_run():
    """A full-batch edge stream (each distinct input once) and a minibatch path stream through the
    chunked head train the same run as the plain head, in fp32, to rounding."""
    t = tasks.pathstar_task(8, 4, seed=0)

    def run(chunk):
        torch.manual_seed(0)
        m = models.build_model(specs.GPT(n_layer=1, n_head=2, n_embd=16), vocab_size=t.vocab.size, block_size=8)
        return train(m, {"edges": t.edges, "paths": t.train_paths},
                     TrainConfig(steps=20, lr=1e-2, eval_every=5, batch_size={"edges": None, "paths": 3},
                                 head_chunk=chunk), progress=False)
    plain, chunked = run(None), run(4)
    assert chunked["loss"][1:] == pytest.approx(plain["loss"][1:], rel=1e-5)
    assert chunked.meta["configs"][0]["head_chunk"] == 4


def test_a_stage_can_keep_the_token_embeddings_an_earlier_stage_built():
    """freeze_token_embeddings: the stage trains everything but the token embeddings (and so the tied
    head); they are trainable again after it; a model without them is refused before any step."""
    from geomlib.models import LinearNet
    from geomlib.recipes import build_pathstar
    run = _tiny_run(precision="fp32")
    task, model = build_pathstar(run, 0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, task.edges, TrainConfig(steps=3, lr=1e-2, freeze_token_embeddings=True), progress=False)
    after = dict(model.named_parameters())
    assert torch.equal(after["wte.weight"], before["wte.weight"])
    assert not torch.equal(after["wpe.weight"], before["wpe.weight"])
    assert model.wte.weight.requires_grad
    train(model, task.edges, TrainConfig(steps=1, lr=1e-2), progress=False)
    assert not torch.equal(model.wte.weight, before["wte.weight"])  # trained again without the flag
    with pytest.raises(ValueError, match="not a LinearNet"):
        train(LinearNet(task.graph.num_nodes, 4), task.edges, TrainConfig(steps=1, freeze_token_embeddings=True),
              progress=False)
    with pytest.raises(TypeError, match="freeze_token_embeddings"):
        TrainConfig(steps=1, freeze_token_embeddings="yes")
