"""The paper's training recipes for the in-weights path-star task, as one call.

A recipe is a list of stages run one after the other by the one trainer. Each stage names its
data: ``"edges"`` (edge memorisation only) or ``"mixed"`` (edges and training paths in the same
batches; ``path_fraction`` of each batch is paths, or their natural share when ``None``).
*Staged* = an edges stage then a paths-only stage (``"paths"``); *mixed* = an edges stage then
a mixed stage, which keeps replaying the edges (a small model forgets them otherwise).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .cache import cache_root, cached_run, config_hash
from .evaluate import edge_metrics, pathstar_metrics
from .fileio import write_torch_atomic
from .graphs import Graph
from .models import build_model
from .tasks import PathStarTask, Vocab, edge_examples, pathstar_task
from .train import History, TrainConfig, default_device, resolve_precision, set_seed, train

__all__ = ["stage_batches", "run_recipe", "pathstar_run", "edge_run", "incontext_run"]


def run_key(name: str, cfg: dict, seed: int, precision: str) -> dict:
    """What a cached run depends on: the experiment, its full config, the seed, the thread count,
    the precision it actually ran in ("auto" resolved on this machine), the torch version and a
    fingerprint of geomlib's source (a change to the trainer or a metric recomputes)."""
    from .provenance import library_fingerprint

    return {"experiment": name, "config": cfg, "seed": seed, "threads": torch.get_num_threads(),
            "precision": resolve_precision(precision), "torch": torch.__version__, "geomlib": library_fingerprint()}


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


def run_recipe(model: torch.nn.Module, task: PathStarTask, stages: list[dict], *, seed: int, precision: str,
               eval_every: int, evaluate=None, stop=None, progress=None, aux_loss=None,
               checkpoint: Path | None = None, on_checkpoint=None) -> History:
    """Run the stages in order on one model; one :class:`~geomlib.train.History` across all of them.

    ``checkpoint``: a file where the run's state (model, history, stage, trainer state) is saved
    after every evaluation; when it exists, the run resumes from it, exactly where it stopped.
    ``on_checkpoint(history)`` is called after each save (e.g. to publish the curve so far)."""
    history, start_stage, resume = History(), 0, None
    if checkpoint is not None and Path(checkpoint).exists():
        saved = torch.load(checkpoint, map_location=next(model.parameters()).device, weights_only=True)
        model.load_state_dict(saved["model"])
        history, start_stage, resume = History.from_dict(saved["history"]), saved["stage"], saved["train"]
        print(f"resuming from {Path(checkpoint).name}: stage {start_stage + 1}, step "
              f"{history.rows[-1]['step'] if history.rows else 0}")

    def save(stage: int, train_state: dict | None) -> None:
        write_torch_atomic(checkpoint, {"model": model.state_dict(), "history": history.to_dict(), "stage": stage,
                                        "train": train_state})
        if on_checkpoint is not None:
            on_checkpoint(history)

    for i, st in enumerate(stages):
        if i < start_stage:
            continue
        st = dict(st)
        data, batch, frac = st.pop("data"), st.pop("batch", None), st.pop("path_fraction", None)
        streams, sizes = stage_batches(task, data, batch, frac)
        st.setdefault("eval_every", eval_every)  # a stage may evaluate more often (e.g. while geometry forms)
        cfg = TrainConfig(**st, batch_size=sizes, precision=precision, seed=seed + i)
        resuming = resume is not None and i == start_stage
        if not resuming:
            history.meta.setdefault("stage_starts", []).append(int(history.rows[-1]["step"]) if history.rows else 0)
        train(model, streams, cfg, evaluate=evaluate, stop=stop, progress=progress, history=history,
              desc=f"stage {i + 1}/{len(stages)}: {data}", aux_loss=aux_loss,
              checkpoint=(lambda s, i=i: save(i, s)) if checkpoint is not None else None,
              resume=resume if resuming else None)
        if checkpoint is not None:
            save(i + 1, None)  # the stage is done: a resume starts the next one
        if history.meta.get("stopped_early"):
            break
    return history


def pathstar_run(cfg: dict, seed: int = 0, retrain: bool = False, progress=None, name: str = "pathstar",
                 on_eval=None, max_seconds: float | None = None, resumable: bool = False, on_checkpoint=None):
    """Build the task and model of a path-star preset, train it with its recipe (or load the
    cached result), and return ``(task, model, history)``.

    ``cfg`` keys: ``d``, ``l``, ``task`` (extra :func:`~geomlib.tasks.pathstar_task` options), ``model`` (kind
    and config), ``stages``, ``precision``, ``eval_every``, ``stop_at`` (stop once held-out full-path
    accuracy has been >= this for ``stop_patience`` consecutive evaluations; None: never).
    Optional geometric interventions (the "headroom" experiments): ``emb_init="node2vec"`` starts
    the node-token embeddings from a 1-hop Node2Vec embedding of the graph (rescaled to the
    model's init scale); ``aux_node2vec=w`` adds ``w`` times the Node2Vec loss of the node-token
    embeddings to every step.

    ``on_eval(row)`` sees every evaluation row (logging). ``max_seconds`` cuts training after a
    wall-clock budget (benchmarks only): such a run depends on the machine, so it is not cached.

    ``resumable=True`` (runs of hours): the run's state is saved in the cache after every
    evaluation (``<name>-<hash>.ckpt``, keyed like the finished entry) and a run started again
    with the same configuration continues from there; ``on_checkpoint(history)`` sees the
    history after each save."""
    task = pathstar_task(cfg["d"], cfg["l"], seed=seed, **cfg.get("task", {}))
    model_cfg = dict(cfg["model"])
    kind = model_cfg.pop("kind")
    if kind == "gpt":
        model_cfg.setdefault("block_size", task.train_paths.inputs.shape[1])
    set_seed(seed)
    model = build_model(kind, vocab_size=task.vocab.size, **model_cfg).to(default_device())
    init, aux_w = cfg.get("emb_init"), float(cfg.get("aux_node2vec", 0.0))
    if init not in (None, "node2vec"):
        raise ValueError(f"emb_init must be None or 'node2vec', got {init!r}")
    aux_loss = _node2vec_aux(task.graph, aux_w) if aux_w else None
    evaluate = pathstar_metrics(task, train=True, edges=True, probe=True, decode=cfg.get("decode", "nodes"))
    target, patience = cfg.get("stop_at"), cfg.get("stop_patience", 1)
    streak = {"n": 0}

    def stop(row):
        if on_eval is not None:
            on_eval(row)
        if max_seconds is not None and row["seconds"] > max_seconds:
            return True
        if target is None:
            return False
        streak["n"] = streak["n"] + 1 if row.get("test_full", 0.0) >= target else 0
        return streak["n"] >= patience

    key = run_key(name, cfg, seed, cfg.get("precision", "fp32"))
    ckpt = cache_root() / f"{name}-{config_hash(key)}.ckpt" if resumable else None

    def fit(m):
        if init == "node2vec" and not (ckpt and ckpt.exists()):  # a cached or resumed run has its weights
            _init_from_node2vec(m, task.graph, seed)
        h = run_recipe(m, task, cfg["stages"], seed=seed, precision=cfg.get("precision", "fp32"), eval_every=cfg["eval_every"],
                       evaluate=evaluate, stop=stop, progress=progress, aux_loss=aux_loss, checkpoint=ckpt,
                       on_checkpoint=on_checkpoint)
        return h.to_dict()

    if max_seconds is not None:
        return task, model.eval(), History.from_dict(fit(model))
    model, record = cached_run(name, key, model, fit, retrain=retrain)
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()  # finished and cached: the checkpoint has done its job
    model.eval()
    return task, model, History.from_dict(record)


def _init_from_node2vec(model: torch.nn.Module, graph: Graph, seed: int) -> None:
    """Overwrite the node-token rows of ``model``'s token embedding with a 1-hop Node2Vec
    embedding of ``graph`` of the same width (the spectral-bias chapter's recipe), rescaled to the
    rows' current mean norm."""
    from .presets import get_preset

    wte = model.wte.weight
    recipe = get_preset("spectral_bias")
    n2v, _ = edge_run(graph, dict(recipe["model"], dim=wte.shape[1]), recipe["train"], seed=seed, eval_every=0,
                      progress=False)
    E = n2v.token_embeddings().to(wte.device)
    E = E - E.mean(0)
    with torch.no_grad():
        n = graph.num_nodes
        wte[:n] = E * (wte[:n].norm(dim=1).mean() / E.norm(dim=1).mean())
    set_seed(seed)  # the rest of the run draws the same random numbers as without the init


def _node2vec_aux(graph: Graph, weight: float):
    """``weight`` x the 1-hop Node2Vec loss of the node-token embeddings (every edge, both ways)."""
    from .models import node2vec_loss

    pairs = torch.as_tensor(graph.directed_edges)

    def aux(model):
        E = model.wte.weight[: graph.num_nodes]
        return weight * node2vec_loss(E, pairs.to(E.device))
    return aux


def edge_run(graph: Graph, model: dict, train_cfg: dict, seed: int = 0, directions: str = "both",
             self_edges: bool = False, k: int | str = 5, eval_every: int = 10, progress=None):
    """Edge memorisation on a (tiny) graph: ``[EDGE] u -> v``, full batch, for any model kind
    (``"gpt"``, ``"mamba"``, ``"linear"``, ``"node2vec"``; the shallow ones are queried with ``u``).

    ``model``: ``{"kind": ..., **config}``; ``train_cfg``: :class:`~geomlib.train.TrainConfig` fields.
    Returns ``(model, history)``; the history tracks top-``k`` recall of the trained edges and
    the geometric level."""
    vocab = Vocab(graph.num_nodes)
    data = edge_examples(graph, vocab, directions, self_edges)
    model = dict(model)
    kind = model.pop("kind")
    set_seed(seed)
    if kind in ("linear", "node2vec"):
        net = build_model(kind, num_nodes=graph.num_nodes, **model)
    else:
        net = build_model(kind, vocab_size=vocab.size, **({"block_size": 2} if kind == "gpt" else {}), **model)
    net = net.to(default_device())
    cfg = TrainConfig(**train_cfg, eval_every=eval_every, seed=seed)
    hist = train(net, data, cfg, evaluate=edge_metrics(graph, vocab, k, directions=directions), progress=progress,
                 desc=f"{kind} on {graph.name}")
    return net.eval(), hist


def incontext_run(cfg: dict, seed: int = 0, progress=None, retrain: bool = False):
    """The in-context path-star task (Bachmann & Nagarajan): a fixed set of ``num_train`` random
    star graphs given in the prompt, teacher-forced next-token training, evaluation on fresh
    graphs. Returns ``(task, model, history)``; the history has the teacher-forced accuracy of
    ``n1`` (``ic_n1``), of the tokens after it (``ic_later``) and of the whole path exactly
    (``ic_full``, all positions right with the true prefix given)."""
    from .evaluate import teacher_forced_accuracy, teacher_forced_predictions
    from .tasks import IGNORE, InContextPathStar

    task = InContextPathStar(cfg["d"], cfg["l"], cfg["num_labels"])
    gen = torch.Generator().manual_seed(seed)
    data = task.sample(cfg["num_train"], gen)
    test = task.sample(cfg["num_test"], torch.Generator().manual_seed(seed + 10_000))
    n1 = task.n1_position

    def evaluate(model) -> dict:
        preds = teacher_forced_predictions(model, test)  # one forward pass over the test set
        acc = teacher_forced_accuracy(model, test, predictions=preds)
        full = ((preds == test.targets) | (test.targets == IGNORE)).all(1).float().mean().item()
        return {"ic_n1": float(acc[n1]), "ic_later": float(np.nanmean(acc[n1 + 1:])), "ic_full": full}

    model_cfg = dict(cfg["model"])
    kind = model_cfg.pop("kind")
    set_seed(seed)
    model = build_model(kind, vocab_size=task.vocab.size, block_size=task.seq_len, **model_cfg).to(default_device())

    def fit(m):
        tc = TrainConfig(**cfg["train"], eval_every=cfg["eval_every"], seed=seed)
        return train(m, data, tc, evaluate=evaluate, progress=progress, desc="in-context path-star").to_dict()

    key = run_key("incontext", cfg, seed, cfg["train"].get("precision", "fp32"))
    model, record = cached_run("incontext", key, model, fit, retrain=retrain)
    return task, model.eval(), History.from_dict(record)
