"""The paper's training recipes for the in-weights path-star task, as one call.

A recipe is a list of :class:`~geomlib.specs.Stage` run one after the other by the one
trainer. Each stage names its data: ``"edges"`` (edge memorisation only), ``"paths"`` or
``"mixed"`` (edges and training paths in the same batches; ``path_fraction`` of each batch is
paths, or their natural share when ``None``). *Staged* = an edges stage then a paths-only
stage; *mixed* = an edges stage (or none) then a mixed stage, which keeps replaying the edges.

Three runners, one signature style ``runner(what, seed, *, options)``: :func:`pathstar_run`
(a :class:`~geomlib.specs.PathStarRun`), :func:`edge_run` (a graph and an
:class:`~geomlib.specs.EdgeRecipe`), :func:`incontext_run` (an
:class:`~geomlib.specs.InContextRun`). A path-star run is three steps, each its own function:
:func:`build_pathstar` (task and model), :func:`train_pathstar` (the recipe, with the run's
geometric interventions) and the cache around them.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .cache import cached_run
from .checkpoints import checkpoint_for, load_checkpoint, session
from .evaluate import edge_metrics, pathstar_metrics
from .fileio import write_torch_atomic
from .graphs import Graph
from .models import build_model
from .processes import single_threaded_runs
from .runkeys import run_key
from .specs import EdgeRecipe, InContextRun, PathStarRun, Stage
from .tasks import PathStarTask, Vocab, edge_examples, pathstar_task
from .train import History, default_device, note_precisions, set_seed, train

__all__ = ["stage_batches", "run_recipe", "build_pathstar", "train_pathstar", "pathstar_run", "pathstar_runs", "edge_run", "edge_runs",
           "incontext_run", "LONG_RUN_STEPS"]


def stage_batches(task: PathStarTask, data: str, batch: int | None, path_fraction: float | None):
    """The streams and per-stream batch sizes of one stage."""
    if data == "edges":
        return {"edges": task.edges}, {"edges": batch}
    if data == "paths":
        return {"paths": task.train_paths}, {"paths": batch}
    if data != "mixed":
        raise ValueError(f"stage data must be 'edges', 'paths' or 'mixed', got {data!r}")
    n_e, n_p = len(task.edges), len(task.train_paths)
    if batch is None:
        return {"edges": task.edges, "paths": task.train_paths}, {"edges": None, "paths": None}
    p = n_p / (n_e + n_p) if path_fraction is None else float(path_fraction)
    if not 0.0 < p < 1.0:
        raise ValueError(f"path_fraction must be in (0, 1), got {path_fraction}")
    b_p = max(1, round(batch * p))
    return {"edges": task.edges, "paths": task.train_paths}, {"edges": batch - b_p, "paths": b_p}


def run_recipe(model: torch.nn.Module, task: PathStarTask, stages: tuple[Stage, ...], *, seed: int, precision: str,
               eval_every: int, evaluate=None, stop=None, progress=None, aux_loss=None,
               checkpoint: Path | None = None, on_checkpoint=None, checkpoint_key: dict | None = None,
               meta: dict | None = None) -> History:
    """Run the stages in order on one model; one :class:`~geomlib.train.History` across all of them
    (a new one starts with ``meta``, e.g. what trained the model's initial embeddings).
    Stage ``i`` trains with seed ``seed + i``, the run's precision, and the run's ``eval_every``
    unless the stage sets its own.

    ``checkpoint``: a file where the run's state (model, history, stage, trainer state and
    ``checkpoint_key``, the run's key) is saved after every evaluation; when it exists, the run
    resumes from it, exactly where it stopped. A checkpoint of another run (its key's identity
    differs) or an unreadable one raises :class:`~geomlib.checkpoints.CheckpointError` naming the file; one written by
    other code is continued, and every session (from which step, commit, library, torch, threads)
    is listed in ``history.meta["sessions"]``. ``on_checkpoint(history)`` is called after each save
    (e.g. to publish the curve so far)."""
    history, start_stage, resume = History(meta=dict(meta or {})), 0, None
    if checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(Path(checkpoint), checkpoint_key)
        model.load_state_dict(saved["model"])
        history, start_stage, resume = History.from_dict(saved["history"]), saved["stage"], saved["train"]
        print(f"resuming from {Path(checkpoint).name}: stage {start_stage + 1}, step "
              f"{history.rows[-1]['step'] if history.rows else 0}")
    elif checkpoint is not None:
        print(f"no checkpoint of this run yet: starting at step 0 (saving to {Path(checkpoint).name})")
    if checkpoint is not None:
        history.meta.setdefault("sessions", []).append(
            session(checkpoint_key, int(history.rows[-1]["step"]) if history.rows else 0))

    def save(stage: int, train_state: dict | None) -> None:
        write_torch_atomic(checkpoint, {"model": model.state_dict(), "history": history.to_dict(), "stage": stage,
                                        "train": train_state,
                                        "key": json.loads(json.dumps(checkpoint_key, sort_keys=True, default=str))})
        if on_checkpoint is not None:
            on_checkpoint(history)

    for i, st in enumerate(stages):
        if i < start_stage:
            continue
        streams, sizes = stage_batches(task, st.data, st.batch, st.path_fraction)
        cfg = replace(st.train, batch_size=sizes, precision=precision, seed=seed + i,
                      eval_every=st.train.eval_every or eval_every)
        resuming = resume is not None and i == start_stage
        if not resuming:
            history.meta.setdefault("stage_starts", []).append(int(history.rows[-1]["step"]) if history.rows else 0)
        train(model, streams, cfg, evaluate=evaluate, stop=stop, progress=progress, history=history,
              desc=f"stage {i + 1}/{len(stages)}: {st.data}", aux_loss=aux_loss,
              checkpoint=(lambda s, i=i: save(i, s)) if checkpoint is not None else None,
              resume=resume if resuming else None)
        if checkpoint is not None:
            save(i + 1, None)  # the stage is done: a resume starts the next one
        if history.meta.get("stopped_early"):
            break
    return history


def build_pathstar(run: PathStarRun, seed: int = 0) -> tuple[PathStarTask, torch.nn.Module]:
    """The task (graph, vocabulary, edge and path examples) and the untrained model of ``run``."""
    task = pathstar_task(run.d, run.l, seed=seed, hardest_token=run.hardest_token, self_edges=run.self_edges)
    sizes = {"block_size": task.train_paths.inputs.shape[1]} if run.model.kind == "gpt" else {}
    set_seed(seed)
    return task, build_model(run.model, vocab_size=task.vocab.size, **sizes).to(default_device())


def train_pathstar(model: torch.nn.Module, task: PathStarTask, run: PathStarRun, seed: int = 0, *, stop=None,
                   progress=None, checkpoint: Path | None = None, on_checkpoint=None,
                   checkpoint_key: dict | None = None) -> History:
    """Train ``model`` on ``task`` with ``run``'s recipe and its geometric interventions: the node
    embeddings start from ``run.emb_init`` (a Node2Vec recipe) unless the run resumes from a
    checkpoint; ``run.aux_node2vec`` adds that weight of the Node2Vec loss to every step."""
    meta = {}
    if run.emb_init is not None and not (checkpoint and Path(checkpoint).exists()):
        # its training is part of the run: its precision is recorded with the run's (and kept in the cache)
        meta["emb_init_configs"] = _init_from_node2vec(model, task.graph, run.emb_init, seed).meta["configs"]
    aux_loss = _node2vec_aux(task.graph, run.aux_node2vec) if run.aux_node2vec else None
    evaluate = pathstar_metrics(task, train=True, edges=True, probe=True, decode=run.decode)
    return run_recipe(model, task, run.stages, seed=seed, precision=run.precision, eval_every=run.eval_every,
                      evaluate=evaluate, stop=stop, progress=progress, aux_loss=aux_loss, checkpoint=checkpoint,
                      on_checkpoint=on_checkpoint, checkpoint_key=checkpoint_key, meta=meta)


def _stop_rule(run: PathStarRun, on_eval=None, max_seconds: float | None = None):
    """Stop once held-out full path has been >= ``run.stop_at`` for ``run.stop_patience``
    evaluations in a row (never when None); ``on_eval(row)`` sees every row; ``max_seconds``
    cuts the run after that much training time."""
    streak = {"n": 0}

    def stop(row) -> bool:
        if on_eval is not None:
            on_eval(row)
        if max_seconds is not None and row["seconds"] > max_seconds:
            return True
        if run.stop_at is None:
            return False
        streak["n"] = streak["n"] + 1 if row.get("heldout_full_path", 0.0) >= run.stop_at else 0
        return streak["n"] >= run.stop_patience
    return stop


#: A path-star run of at least this many steps is resumable unless told otherwise: the ``paper``
#: presets' runs (525,000 steps, days on one GPU) must survive a disconnect; the CPU presets' (a few
#: hundred to a few thousand steps, minutes) need no checkpoints.
LONG_RUN_STEPS = 10_000


def pathstar_run(run: PathStarRun, seed: int = 0, *, retrain: bool = False, progress=None, on_eval=None,
                 resumable: bool | None = None, on_checkpoint=None):
    """Build, train (or load from the cache) and return ``(task, model, history)`` of ``run``.

    The cache key is the whole run (every value) with the seed, threads, precision, torch and
    geomlib's source: two chapters asking for the same run share one entry; any change recomputes.
    ``on_eval(row)`` sees every evaluation row (logging). ``resumable`` (default: when the run has
    at least :data:`LONG_RUN_STEPS` steps, as the ``paper`` presets' runs do; ``True`` for any run): the
    run's state is saved in the cache after every evaluation (:func:`~geomlib.checkpoints.checkpoint_path`) and a run
    started again with the same configuration continues from there, after an edit to the library
    or a torch upgrade too (announced, each session recorded in ``meta["sessions"]``); a checkpoint
    of another run or an unreadable one is refused (:class:`~geomlib.checkpoints.CheckpointError`) before any training.
    ``on_checkpoint(history)`` sees the history after each save."""
    if not isinstance(run, PathStarRun):
        raise TypeError(f"pathstar_run takes a geomlib.specs.PathStarRun, got {type(run).__name__}")
    task, model = build_pathstar(run, seed)
    key = run_key("pathstar", run, seed, run.precision)  # built once: the cache entry's and the checkpoint's
    if resumable is None:
        resumable = sum(st.train.steps for st in run.stages) >= LONG_RUN_STEPS
    ckpt = checkpoint_for(key) if resumable else None

    def fit(m):
        return train_pathstar(m, task, run, seed, stop=_stop_rule(run, on_eval), progress=progress, checkpoint=ckpt,
                              on_checkpoint=on_checkpoint, checkpoint_key=key).to_dict()

    model, record = cached_run("pathstar", key, model, fit, retrain=retrain)
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()  # finished and cached: the checkpoint has done its job
    model.eval()
    return task, model, note_precisions(History.from_dict(record))


def _pathstar_job(job: tuple) -> tuple:
    torch.set_num_threads(1)
    run, seed = job
    return pathstar_run(run, seed, progress=False)


def _cost(run: PathStarRun) -> float:
    """A rough relative cost of a run, to start the longest first: steps x batch x depth x width^2."""
    width = getattr(run.model, "n_embd", None) or getattr(run.model, "d_model", 1)
    return sum(st.train.steps * (st.batch or 1) for st in run.stages) * run.model.n_layer * width ** 2


def pathstar_runs(jobs, *, workers: int | None = None, progress=None) -> list[tuple]:
    """Many independent :func:`pathstar_run` calls, ``jobs = [(run, seed), ...]`` (the cells of a
    sweep), each **single-threaded** and spread over ``workers`` processes (default: one per CPU
    core; on a GPU this one process). A small path-star model's steps do not keep a second core
    busy, a second process does (``benchmarks/sweep_cells.py`` times it). One thread per run also
    makes a run's numbers independent of how many cores the machine has (the thread count changes
    the last bits of a CPU matmul, and a run's cache key names it). Runs already in the cache are
    loaded, not retrained; a run asked twice trains once. Returns ``[(task, model, history), ...]``
    in the order of ``jobs``."""
    from .validate import check_seed

    jobs = [(run, check_seed(seed)) for run, seed in jobs]
    for run, _ in jobs:  # bad input fails here, before any process starts
        if not isinstance(run, PathStarRun):
            raise TypeError(f"pathstar_runs takes geomlib.specs.PathStarRun runs, got {type(run).__name__}")
    return single_threaded_runs(jobs, "pathstar", key=lambda job: run_key("pathstar", *job, job[0].precision),
                                 work=_pathstar_job, here=lambda job: pathstar_run(*job, progress=progress),
                                 cost=lambda job: _cost(job[0]), workers=workers, progress=progress)


def timed_pathstar_run(run: PathStarRun, seed: int, max_seconds: float, on_eval=None, progress=None):
    """A benchmark's run: ``run`` cut after ``max_seconds`` of training. It depends on the
    machine's speed, so it is never cached. Returns ``(task, model, history)``."""
    task, model = build_pathstar(run, seed)
    hist = train_pathstar(model, task, run, seed, stop=_stop_rule(run, on_eval, max_seconds), progress=progress)
    return task, model.eval(), hist


def _init_from_node2vec(model: torch.nn.Module, graph: Graph, recipe: EdgeRecipe, seed: int) -> History:
    """Overwrite the node-token rows of ``model``'s token embedding with a 1-hop Node2Vec
    embedding of ``graph`` trained by ``recipe`` at the model's width, rescaled to the rows'
    current mean norm. Returns the Node2Vec run's history."""
    wte = model.wte.weight
    n2v, hist = edge_run(graph, replace(recipe, model=replace(recipe.model, dim=wte.shape[1])), seed=seed, eval_every=0,
                      progress=False)
    E = n2v.token_embeddings().to(wte.device)
    E = E - E.mean(0)
    with torch.no_grad():
        n = graph.num_nodes
        wte[:n] = E * (wte[:n].norm(dim=1).mean() / E.norm(dim=1).mean())
    set_seed(seed)  # the rest of the run draws the same random numbers as without the init
    return hist


def _node2vec_aux(graph: Graph, weight: float):
    """``weight`` x the 1-hop Node2Vec loss of the node-token embeddings (every edge, both ways)."""
    from .models import node2vec_loss

    pairs = torch.as_tensor(graph.directed_edges)

    def aux(model):
        E = model.wte.weight[: graph.num_nodes]
        return weight * node2vec_loss(E, pairs.to(E.device))
    return aux


def edge_run(graph: Graph, recipe: EdgeRecipe, seed: int = 0, *, directions: str = "both",
             self_edges: bool = False, k: int | str = 5, eval_every: int = 10, progress=None, cache: bool = False):
    """Edge memorisation on a (tiny) graph: ``[EDGE] u -> v``, full batch, for any model kind
    (GPT, Mamba, linear net, Node2Vec; the shallow ones are queried with ``u``), trained by
    ``recipe`` with ``seed``. Returns ``(model, history)``; the history tracks top-``k`` recall of
    the trained edges and the geometric level every ``eval_every`` steps. ``cache=True`` keeps
    the result in the model cache (as :func:`edge_runs` does): a chapter that asks for a run another
    chapter trained loads it (at the same thread count: a run's key names it, and :func:`edge_runs`'
    runs are single-threaded)."""
    if not isinstance(recipe, EdgeRecipe):
        raise TypeError(f"edge_run takes a geomlib.specs.EdgeRecipe, got {type(recipe).__name__}")
    vocab = Vocab(graph.num_nodes)
    data = edge_examples(graph, vocab, directions, self_edges)
    kind = recipe.model.kind
    sizes = ({"num_nodes": graph.num_nodes} if kind in ("linear", "node2vec")
             else {"vocab_size": vocab.size, **({"block_size": 2} if kind == "gpt" else {})})
    set_seed(seed)
    net = build_model(recipe.model, **sizes)
    net = net.to(default_device())
    cfg = replace(recipe.train, eval_every=eval_every, seed=seed)

    def fit(m):
        return train(m, data, cfg, evaluate=edge_metrics(graph, vocab, k, directions=directions), progress=progress,
                     desc=f"{kind} on {graph.name}")
    if not cache:
        hist = fit(net)
        return net.eval(), hist
    key = _edge_key(graph, recipe, seed, directions, self_edges, k, eval_every)
    net, record = cached_run("edge", key, net, lambda m: fit(m).to_dict())
    return net.eval(), note_precisions(History.from_dict(record))


_EDGE_RUN_SIGNATURE = inspect.signature(edge_run)


def _edge_key(graph: Graph, recipe: EdgeRecipe, seed: int, directions: str, self_edges: bool, k, eval_every: int) -> dict:
    """An edge run's cache key: the graph (its name and a hash of its nodes and edges, in order),
    the recipe, what the history measures, the seed and what :func:`run_key` adds."""
    import hashlib

    edges = hashlib.sha256(np.ascontiguousarray(graph.edges, dtype=np.int64).tobytes()).hexdigest()[:16]
    config = {"graph": {"name": graph.name, "num_nodes": graph.num_nodes, "edges": edges}, "recipe": recipe,
              "directions": directions, "self_edges": self_edges, "k": k, "eval_every": eval_every}
    return run_key("edge", config, seed, recipe.train.precision)


def _edge_job(job: tuple) -> tuple:
    torch.set_num_threads(1)
    graph, recipe, seed, kwargs = job
    return edge_run(graph, recipe, seed, **kwargs, cache=True)


def edge_runs(jobs, *, workers: int | None = None) -> list[tuple]:
    """Many independent :func:`edge_run` calls, ``jobs = [(graph, recipe, seed, kwargs), ...]``,
    each single-threaded and spread over ``workers`` processes (default: one per CPU core; on a
    GPU always this one process): a tiny model's matmuls do not use a second core, a second process
    does. Each run is kept in the model cache, so a run another chapter already trained is loaded
    (the "Knobs" chapter's default-init knob is the "A wide linear net" chapter's net); a run asked
    twice trains once. Every run seeds itself, so the result of a run does not depend on which
    process ran it or on what ran before it. ``workers=1`` runs them here, one after the other.
    Returns ``[(model, history), ...]`` in the order of ``jobs``."""
    jobs = [(g, r, s, dict(kw)) for g, r, s, kw in jobs]
    for job in jobs:  # bad input fails here, before any process starts
        if not isinstance(job[1], EdgeRecipe):
            raise TypeError(f"edge_runs takes geomlib.specs.EdgeRecipe recipes, got {type(job[1]).__name__}")
        if not isinstance(job[0], Graph):
            raise TypeError(f"edge_runs takes geomlib.graphs.Graph graphs, got {type(job[0]).__name__}")
        _edge_options(job)  # an option edge_run does not take is a TypeError here
    return single_threaded_runs(
        jobs, "edge", key=lambda job: _edge_key(*job[:3], **_edge_options(job)), work=_edge_job,
        here=lambda job: edge_run(*job[:3], **job[3], cache=True), cost=lambda job: job[1].train.steps,
        workers=workers, progress=None)


def _edge_options(job: tuple) -> dict:
    """The options of an :func:`edge_run` job that its history depends on, defaults filled in."""
    graph, recipe, seed, kwargs = job
    args = _EDGE_RUN_SIGNATURE.bind(graph, recipe, seed, **kwargs)
    args.apply_defaults()
    return {name: args.arguments[name] for name in ("directions", "self_edges", "k", "eval_every")}


def incontext_run(run: InContextRun, seed: int = 0, *, progress=None, retrain: bool = False):
    """The in-context path-star task (Bachmann & Nagarajan): a fixed set of ``num_train`` random
    star graphs given in the prompt, teacher-forced next-token training, evaluation on fresh
    graphs. Returns ``(task, model, history)``; the history has the teacher-forced accuracy of
    ``n1`` (``ic_n1``), of the tokens after it (``ic_later``) and of the whole path exactly
    (``ic_full``, all positions right with the true prefix given)."""
    from .evaluate import teacher_forced_accuracy, teacher_forced_predictions
    from .tasks import IGNORE, InContextPathStar

    task = InContextPathStar(run.d, run.l, run.num_labels)
    gen = torch.Generator().manual_seed(seed)
    data = task.sample(run.num_train, gen)
    test = task.sample(run.num_test, torch.Generator().manual_seed(seed + 10_000))
    n1 = task.n1_position

    def evaluate(model) -> dict:
        preds = teacher_forced_predictions(model, test)  # one forward pass over the test set
        acc = teacher_forced_accuracy(model, test, predictions=preds)
        full = ((preds == test.targets) | (test.targets == IGNORE)).all(1).float().mean().item()
        return {"ic_n1": float(acc[n1]), "ic_later": float(np.nanmean(acc[n1 + 1:])), "ic_full": full}

    set_seed(seed)
    model = build_model(run.model, vocab_size=task.vocab.size, block_size=task.seq_len).to(default_device())

    def fit(m):
        tc = replace(run.train, eval_every=run.eval_every, seed=seed)
        return train(m, data, tc, evaluate=evaluate, progress=progress, desc="in-context path-star").to_dict()

    key = run_key("incontext", run, seed, run.train.precision)
    model, record = cached_run("incontext", key, model, fit, retrain=retrain)
    return task, model.eval(), note_precisions(History.from_dict(record))
