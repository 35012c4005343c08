"""Long path-star runs (minutes to hours on 2 cores), resumable, each shipped as JSON in ``data/``.

    python tools/long_run.py --list                          # the runs, and where each writes
    nohup python tools/long_run.py release > release.log 2>&1 &          # start, or continue
    python tools/long_run.py release "ablation: edge stage first" --seeds 0 1 2

Runs:

* ``headline_cpu``: the paper's headline cell (d = 10^4, l = 6) with the book's 2x128 GPT and the
  chapter's l = 6 recipe scaled to that graph (``data/headline_cpu.json``). Hours of CPU: run it from
  a git worktree of one commit, so that no later edit touches the code it runs, e.g.
  ``git worktree add ../headline HEAD && cd ../headline && PYTHONPATH=src nohup python
  tools/long_run.py headline_cpu > headline.log 2>&1 &``, and copy its JSON back at the end of a session.
* ``length``: the paper's path length l = 6 (and longer) at d = 500: the book's recipe, the
  book's recipe with one change, and the release recipe with its fastest lever at l = 5
  (``data/pathstar_length/``).
* ``cascade``: the reverse-cascade question every 20 steps for the book's recipe, the release's and
  the release's with a quarter of every batch paths (``data/pathstar_cascade/``; ``--cap-steps``).
* ``release``: the authors' release recipe at the book's scale (``RELEASE_RECIPE["cpu"]``) and an
  ablation from it towards the book's recipe, one change at a time (``data/pathstar_release/``).
  Every ablation runs at most the release's own length (10,000 epochs) and stops once held-out
  full-path accuracy has been >= 0.9 at two evaluations in a row; a run that never gets there is
  "not within the cap", and its curve is shipped all the same. ``--cap-steps N`` stops a run
  after N steps (its checkpoint kept: a larger cap continues it); its JSON then says "capped".

A run saves its state in the model cache after every evaluation; started again with the same
command it continues from there. After every evaluation its JSON is rewritten with the curve so
far and its provenance (command, commit, CPU, torch, threads, wall time per session).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from geomlib.checkpoints import CheckpointError, checkpoint_path
from geomlib.fileio import write_json_atomic
from geomlib.presets import PATHSTAR_CPU, PATHSTAR_L5_CPU, PATHSTAR_L6_CPU, RELEASE_RECIPE, PathStarRun, plain
from geomlib.provenance import git_commit
from geomlib.recipes import pathstar_run
from geomlib.studies import provenance

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SWITCH = 0.9  # held-out full-path accuracy that counts as "path-finding from memory has appeared"


class Capped(Exception):
    """A run stopped at ``--cap-steps`` (its checkpoint is saved: a larger cap continues it)."""


def headline_config() -> PathStarRun:
    """The chapter's l = 6 recipe (``PATHSTAR_L6_CPU``: small token init, the release's weight decay
    and path share) at the paper's graph, d = 10^4, l = 6 (50,001 nodes), on the book's 2x128 GPT.
    The edge stage cannot be full-batch at 10^5 edge examples (about 46 s a step here), so it runs
    minibatches of 4,096 (25 steps an epoch: 2,000 steps = 80 epochs, where d = 500 has 300
    full-batch steps); the mixed stage keeps the recipe's batch of 2,048 with paths at their natural
    share, 3,000 steps (5x the d = 500 recipe's 600, for 20x the arms). Evaluation and a checkpoint
    every 200 steps (about 6 minutes here), on all 2,500 held-out leaves; it stops once held-out full
    path has been >= 0.9 twice. Sized to about 2-3 hours of a 2-core CPU in all."""
    edges, mixed = PATHSTAR_L6_CPU.stages
    return replace(PATHSTAR_L6_CPU, d=10_000, l=6, eval_every=200, stop_at=SWITCH, stop_patience=2, stages=(
        replace(edges, batch=4096, train=replace(edges.train, steps=2000, warmup=100, eval_every=200)),
        replace(mixed, train=replace(mixed.train, steps=3000, eval_every=200))))


def paper_graph_config() -> PathStarRun:
    """The book's path-star run (``PATHSTAR_CPU``: "Path-finding from memory") at the paper's graph,
    d = 10^4, l = 6 (50,001 nodes), on the book's 2x128 GPT. Its edge stage is full batch, as at
    d = 500: every one of the 100,000 edge examples in every step, computed exactly by the chunked
    head (``head_chunk``: 512 rows of the 50,006-token head at a time, each of the 50,001 distinct
    inputs once with all its targets; about 11 s a step on 2 cores with native bf16). The mixed
    stage keeps the recipe's batch of 2,048 with paths at their natural share (7%), so each
    training path is met about 20x less often than at d = 500: 2,000 mixed steps (held, then
    decayed over the second half, as the recipe's 300), not stopped at the switch (does it stay?).
    Evaluated every 10 edge steps and every 100 mixed steps, on all 2,500 held-out leaves."""
    edges, mixed = PATHSTAR_CPU.stages
    return replace(PATHSTAR_CPU, d=10_000, l=6, eval_every=100, stages=(
        replace(edges, train=replace(edges.train, eval_every=10, head_chunk=512)),
        replace(mixed, train=replace(mixed.train, steps=2000, eval_every=100, head_chunk=512))))


#: The batch-regime study's graph: d = 1,000 arms, l = 6 (10,000 edge examples; a run takes minutes).
REGIME_D = 1000
#: Its edge-stage batches, as fractions of all edge examples (1: the full batch; 24: the former
#: d = 10^4 run's regime, 24 steps an epoch).
REGIME_PARTS = (1, 2, 4, 8, 24)


def regime_runs() -> dict[str, tuple[str, PathStarRun]]:
    """The edge stage's batch regime (beyond the paper): the book's edge stage (``PATHSTAR_CPU``'s:
    warmup over its first half, then a cosine to 0.1 lr) on d = 1,000, l = 6, for 100 epochs in
    batches of all edge examples, 1/2, 1/4, 1/8 and 1/24 of them (so 100, 200, ..., 2,400 steps; the
    warmup and the evaluations, every 10 epochs, scale with them), at the book's lr 1e-2 and at
    2e-3. Edge stage only: what is read is the ancestor probes on held-out leaves."""
    edges = PATHSTAR_CPU.stages[0]
    examples = 2 * REGIME_D * (PATHSTAR_CPU.l - 1)
    out = {}
    for lr in (1e-2, 2e-3):
        for parts in REGIME_PARTS:
            stage = replace(edges, batch=None if parts == 1 else examples // parts, train=replace(
                edges.train, lr=lr, steps=edges.train.steps * parts, warmup=edges.train.warmup * parts,
                eval_every=10 * parts, head_chunk=512))
            what = (f"d = {REGIME_D:,}, l = 6, the book's edge stage for 100 epochs at lr {lr:g}, in "
                    + ("the full batch" if parts == 1 else f"batches of 1/{parts} of the edge examples"))
            out[f"lr {lr:g}, batch 1/{parts}"] = (what, replace(PATHSTAR_CPU, d=REGIME_D, eval_every=10 * parts,
                                                                stages=(stage,)))
    return out


def d_axis_runs() -> dict[str, tuple[str, PathStarRun]]:
    """The paper-graph run's recipe (:func:`paper_graph_config`) at d = 1,000, 2,000 and 5,000 arms
    (l = 6), evaluated every 10 edge steps and every 50 mixed steps, stopped once held-out full
    path has been >= 0.9 twice: what path-finding from memory costs as the graph grows (the
    d = 10^4 point is the paper-graph run itself)."""
    big = paper_graph_config()
    edges, mixed = big.stages
    out = {}
    for d in (1000, 2000, 5000):
        run = replace(big, d=d, eval_every=50, stop_at=SWITCH, stop_patience=2,
                      stages=(edges, replace(mixed, train=replace(mixed.train, eval_every=50))))
        out[f"d {d}"] = (f"the paper-graph run's recipe at d = {d:,}, l = 6, stopped at held-out full path >= 0.9 "
                         "twice", run)
    return out


def length_lever_runs() -> dict[str, tuple[str, PathStarRun]]:
    """The edge stage that keeps the deep geometry at l = 8 (d = 500): the book's run
    (``PATHSTAR_CPU``) at l = 8 with one lever of its edge stage changed at a time: its learning rate
    (the book's 1e-2; 2e-3 and 1e-3, where the deepest ancestor probe peaks higher and later), its
    length (the mixed stage starts about when that probe peaks), the token init (the release's
    N(0, 0.02)) and the width (2 x 256); and one lever of the mixed stage, its learning rate.
    Evaluated every 10 edge steps and every 50 mixed steps; each runs its whole schedule (not
    stopped at the switch)."""
    base = replace(PATHSTAR_CPU, l=8, eval_every=50)
    edges, mixed = base.stages

    def lever(lr: float, steps: int, mixed_lr: float | None = None, freeze: bool = False,
              mixed_wd: float | None = None, **model) -> PathStarRun:
        stage = replace(edges, train=replace(edges.train, lr=lr, steps=steps, eval_every=10))
        then = replace(mixed.train, eval_every=50, **({"lr": mixed_lr} if mixed_lr else {}),
                       **({"freeze_token_embeddings": True} if freeze else {}),
                       **({"weight_decay": mixed_wd} if mixed_wd is not None else {}))
        return replace(base, model=replace(base.model, **model) if model else base.model,
                       stages=(stage, replace(mixed, train=then)))

    return {
        "edge lr 1e-2, 100 steps": ("l = 8: the book's run (its edge stage: lr 1e-2, 100 steps)", lever(1e-2, 100)),
        "edge lr 2e-3, 100 steps": ("l = 8: the book's run, edge stage at lr 2e-3 (100 steps)", lever(2e-3, 100)),
        "edge lr 2e-3, 200 steps": ("l = 8: the book's run, edge stage at lr 2e-3 for 200 steps (its warmup, the "
                                    "cosine stretched)", lever(2e-3, 200)),
        "edge lr 1e-3, 200 steps": ("l = 8: the book's run, edge stage at lr 1e-3 for 200 steps", lever(1e-3, 200)),
        "edge lr 2e-3, 100 steps, token init 0.02": (
            "l = 8: the book's run, edge stage at lr 2e-3, token embeddings N(0, 0.02) (the release's)",
            lever(2e-3, 100, emb_init_std=0.02)),
        "edge lr 2e-3, 100 steps, 2x256": ("l = 8: the book's run, edge stage at lr 2e-3, a 2 x 256 GPT (8 heads)",
                                           lever(2e-3, 100, n_embd=256, n_head=8)),
        "edge lr 5e-4, 300 steps": ("l = 8: the book's run, edge stage at lr 5e-4 for 300 steps", lever(5e-4, 300)),
        # the mixed stage: its lr 2e-3 follows an edge stage that ended at a tenth of its own lr
        "edge lr 1e-3, 200 steps, mixed lr 5e-4": (
            "l = 8: the book's run, edge stage at lr 1e-3 for 200 steps, its mixed stage at lr 5e-4 (the book's: 2e-3)",
            lever(1e-3, 200, mixed_lr=5e-4)),
        # the lowest edge lr builds n1's geometry (probe 0.95 at the switch, seed 0) and the mixed stage at 2e-3 wears it
        # down (0.48 at its end) while held-out n1 peaks at 0.22: the same edge stage with a gentler mixed stage
        "edge lr 5e-4, 300 steps, mixed lr 5e-4": (
            "l = 8: the book's run, edge stage at lr 5e-4 for 300 steps, its mixed stage at lr 5e-4",
            lever(5e-4, 300, mixed_lr=5e-4)),
        "edge lr 5e-4, 300 steps, mixed lr 2e-4": (
            "l = 8: the book's run, edge stage at lr 5e-4 for 300 steps, its mixed stage at lr 2e-4",
            lever(5e-4, 300, mixed_lr=2e-4)),
        # the geometry the edge stage built, kept: the mixed stage trains everything but the token embeddings
        "edge lr 5e-4, 300 steps, mixed with embeddings frozen": (
            "l = 8: the book's run, edge stage at lr 5e-4 for 300 steps, its mixed stage (lr 2e-3) training everything "
            "but the token embeddings (and so the tied head)", lever(5e-4, 300, freeze=True)),
        "edge lr 1e-2, 100 steps, mixed with embeddings frozen": (
            "l = 8: the book's run (edge stage lr 1e-2, 100 steps), its mixed stage training everything but the token "
            "embeddings", lever(1e-2, 100, freeze=True)),
        # with the embeddings kept, held-out n1 is read at the switch (0.79, seed 0) and then falls as the body
        # memorises the training paths: a slower mixed stage, and one whose weight decay penalises a per-leaf lookup
        "edge lr 5e-4, 300 steps, mixed with embeddings frozen, mixed lr 5e-4": (
            "l = 8: as 'edge lr 5e-4, 300 steps, mixed with embeddings frozen', its mixed stage at lr 5e-4",
            lever(5e-4, 300, mixed_lr=5e-4, freeze=True)),
        "edge lr 5e-4, 300 steps, mixed with embeddings frozen, mixed weight decay 1.0": (
            "l = 8: as 'edge lr 5e-4, 300 steps, mixed with embeddings frozen', its mixed stage with weight decay 1.0 "
            "(the book's former l = 5 recipe's)", lever(5e-4, 300, freeze=True, mixed_wd=1.0)),
    }


def recipe_check_runs() -> dict[str, tuple[str, PathStarRun]]:
    """The book's path-star run (``PATHSTAR_CPU``) with the one value a reader asks about changed:
    the token init at the release's N(0, 0.02) (the book's: N(0, 0.0005)), and the mixed stage run
    on to 1,500 steps (the book's: 300; the same held-then-decayed schedule, stretched), to see
    where the read-out goes after the chapter's check. Evaluated every 50 mixed steps."""
    edges, mixed = PATHSTAR_CPU.stages
    every50 = replace(mixed, train=replace(mixed.train, eval_every=50))
    base = replace(PATHSTAR_CPU, stages=(edges, every50))
    return {
        "token init 0.02": ("the book's path-star run with the release's token init N(0, 0.02)",
                            replace(base, model=replace(base.model, emb_init_std=0.02))),
        "mixed stage 1500 steps": ("the book's path-star run with its mixed stage run on to 1,500 steps",
                                   replace(base, stages=(edges, replace(every50, train=replace(every50.train,
                                                                                             steps=1500))))),
    }


#: What became of the former headline run (its JSON is replaced by the run above at its first save).
HEADLINE_SUPERSEDES = ("the former headline_cpu run (the book's l = 5 recipe at d = 10^4, l = 6; tools/headline_cpu.py "
                       "at commit b497fa3) stopped at step 1,100 of its edge stage and was retired: the book has since "
                       "shown that recipe does not read held-out paths out at l = 6 even at d = 500, and its checkpoint "
                       "was keyed to the library's source; its JSON is in the git history of data/headline_cpu.json")


def release_ablation() -> dict[str, tuple[str, PathStarRun]]:
    """The release recipe (cpu scale), and the release recipe with one of the book's choices
    swapped in: name -> (what changed, run). Every run stops at the release's length at the latest."""
    rel = RELEASE_RECIPE["cpu"]
    stage = rel.stages[0]
    our_edges, our_mixed = PATHSTAR_L5_CPU.stages
    stopping = replace(rel, stop_at=SWITCH, stop_patience=2)

    def one(what: str, stage_changes: dict | None = None, **train_changes) -> tuple[str, PathStarRun]:
        changed = replace(stage, train=replace(stage.train, **train_changes), **(stage_changes or {}))
        return what, replace(stopping, stages=(changed,))

    m = our_mixed.train
    return {
        "release": ("the release recipe, every value as the release (runs to its end)", rel),
        "ablation: path share 0.25": one("a quarter of every batch is paths (the release: their natural share, 8.6%)",
                                         dict(path_fraction=our_mixed.path_fraction)),
        "ablation: weight decay 1.0": one("weight decay 1.0 on the matrices (the release: 0.01 on every parameter)",
                                          weight_decay=m.weight_decay, decay_all=False),
        "ablation: lr 2e-3, warmup-stable-decay": one(
            "lr 2e-3 held, then a cosine over the second half to 0.05 lr, no warmup (the release: 5e-4, warmup "
            "1,000 then cosine to lr/10)", lr=m.lr, schedule="wsd", decay_fraction=m.decay_fraction,
            final_lr_ratio=m.final_lr_ratio, warmup=0),
        "ablation: betas (0.9, 0.95), clip 1.0": one("AdamW betas (0.9, 0.95) and gradient clipping at 1.0 (the release: "
                                                     "(0.9, 0.999), no clipping)", betas=(0.9, 0.95), grad_clip=1.0),
        "ablation: small positional init": (
            "positional embeddings N(0, 0.02) and GPT-2's residual scaling (the release: N(0, 1), no scaling)",
            replace(stopping, model=replace(rel.model, pos_init_std=None, scaled_residual_init=True))),
        "ablation: edge stage first": (
            "300 edge-only steps first (lr 1e-2, warmup 50, full batch), then the release's stage",
            replace(stopping, stages=(replace(our_edges, train=replace(our_edges.train, eval_every=rel.eval_every)),
                                      stage))),
        "ours": ("the book's path-star recipe (every change at once, and its shorter schedule)",
                 replace(PATHSTAR_L5_CPU, stop_at=SWITCH, stop_patience=2)),
    }


def release_steps(d: int, l: int, batch: int, epochs: int = 10_000) -> int:
    """The release's length in steps: ``epochs`` passes over every edge both ways and the
    training paths of 75% of the leaves, in batches of ``batch``, rounded to hundreds."""
    examples = 2 * d * (l - 1) + round(0.75 * d)
    return int(round(epochs * examples / batch, -2))


def length_runs() -> dict[str, tuple[str, PathStarRun]]:
    """The paper's path length (the release's default l = 6, and longer) at the book's d = 500 and
    2 x 128 GPT: the release recipe with the one change that switched fastest at l = 5 (AdamW
    betas (0.9, 0.95), gradient clipping at 1.0), the release recipe itself, the book's own
    recipe, and the book's recipe with one change (model size, arms, token-embedding init). Each
    stops once held-out full path has been >= 0.9 at two evaluations in a row, or at its end (the
    release's 10,000 epochs; the book's own schedule)."""
    rel = RELEASE_RECIPE["cpu"]
    stage = rel.stages[0]

    def epochs(l: int) -> int:  # the release's 10,000 epochs at path length l
        return release_steps(rel.d, l, stage.batch)

    def near_release(l: int) -> PathStarRun:
        st = replace(stage, train=replace(stage.train, steps=epochs(l), betas=(0.9, 0.95), grad_clip=1.0))
        return replace(rel, l=l, stages=(st,), stop_at=SWITCH, stop_patience=2)

    out = {"l6: release + betas (0.9, 0.95), clip 1.0": (
        "l = 6: the release recipe with AdamW betas (0.9, 0.95) and gradient clipping at 1.0", near_release(6))}
    out["l6: release"] = ("l = 6: the release recipe, every value as the release",
                          replace(rel, l=6, stages=(replace(stage, train=replace(stage.train, steps=epochs(6))),),
                                  stop_at=SWITCH, stop_patience=2))
    ours = replace(PATHSTAR_L5_CPU, l=6, stop_at=SWITCH, stop_patience=2)
    out["l6: ours"] = ("l = 6: the book's path-star recipe", ours)
    out["l6: ours, 2x256"] = ("l = 6: the book's recipe, a 2-layer width-256 GPT (8 heads)",
                              replace(ours, model=replace(ours.model, n_embd=256, n_head=8)))
    out["l6: ours, d=1000"] = ("l = 6: the book's recipe on 1,000 arms", replace(ours, d=1000))
    for std in (0.002, 0.0005, 0.0002):
        out[f"l6: ours, token init {std:g}"] = (f"l = 6: the book's recipe, token embeddings N(0, {std:g})",
                                                replace(ours, model=replace(ours.model, emb_init_std=std)))
    small = replace(ours, model=replace(ours.model, emb_init_std=0.0005), stop_at=None)
    out["l6: ours, token init 0.0005, to the end"] = (
        "l = 6: the book's recipe, token embeddings N(0, 0.0005), not stopped at the switch (does it stay?)", small)
    out["l6: ours, token init 0.0002, to the end"] = (
        "l = 6: the book's recipe, token embeddings N(0, 0.0002), not stopped at the switch",
        replace(small, model=replace(ours.model, emb_init_std=0.0002)))

    def mixed(run: PathStarRun, **train) -> PathStarRun:
        edges, mix = run.stages
        return replace(run, stages=(edges, replace(mix, train=replace(mix.train, **train))))

    l6 = PATHSTAR_L6_CPU
    out["l6: the chapter's l = 6 recipe"] = (
        "l = 6: the run of 'Path-finding from memory' at l = 6 (PATHSTAR_L6_CPU: the book's recipe with token "
        "embeddings N(0, 0.0005), weight decay 0.01 and paths at their natural share in a 600-step mixed stage), "
        "not stopped at the switch", l6)
    for l in (8, 10):
        out[f"l{l}: the chapter's l = 6 recipe"] = (f"l = {l}: the chapter's l = 6 recipe at l = {l}", replace(l6, l=l))
    # the lever the l = 8 runs point to: their probe reads ancestors to depth 3 by the end of the 300-step edge stage
    # (depth 4 on about a third of the leaves) and n1 sits at depth 6, so the geometry is given three times as long
    edges = l6.stages[0]
    out["l8: the chapter's l = 6 recipe, edge stage 3x"] = (
        "l = 8: the chapter's l = 6 recipe with an edge stage three times as long (900 steps: the same warmup, its cosine "
        "stretched): does the probe reach n1's depth?",
        replace(l6, l=8, stages=(replace(edges, train=replace(edges.train, steps=3 * edges.train.steps)), l6.stages[1])))
    quarter = replace(l6, stages=(l6.stages[0], replace(l6.stages[1], path_fraction=0.25)))
    out["l6: small init, weight decay 0.01, a quarter paths"] = (
        "l = 6: the chapter's l = 6 recipe with a quarter of each mixed batch paths (the book's l = 5 share), not "
        "stopped at the switch", quarter)
    out["l6: small init, weight decay 0.01, a quarter paths, token init 0.0002"] = (
        "l = 6: the same with token embeddings N(0, 0.0002)",
        replace(quarter, model=replace(quarter.model, emb_init_std=0.0002)))
    out["l6: ours, token init 0.0005, weight decay 0.1, to the end"] = (
        "l = 6: the book's recipe, token embeddings N(0, 0.0005), weight decay 0.1 in the mixed stage (the book: "
        "1.0), not stopped at the switch", mixed(small, weight_decay=0.1))
    out["l6: ours, token init 0.0005, weight decay 0.01, to the end"] = (
        "l = 6: the book's recipe, token embeddings N(0, 0.0005), weight decay 0.01 in the mixed stage (the book: "
        "1.0; the release: 0.01), not stopped at the switch", mixed(small, weight_decay=0.01))
    return out


def every(run: PathStarRun, steps: int) -> PathStarRun:
    """``run`` evaluated every ``steps`` steps in every stage (evaluation draws no random numbers:
    the weights are those of the run at its own schedule)."""
    return replace(run, eval_every=steps, stages=tuple(replace(st, train=replace(st.train, eval_every=steps))
                                                        for st in run.stages))


#: The cascade study's resolution: every position's held-out accuracy through the switch.
CASCADE_EVERY = 20


def cascade_runs() -> dict[str, tuple[str, PathStarRun]]:
    """The reverse-cascade question at fine resolution (every :data:`CASCADE_EVERY` steps, greedy and
    teacher-forced, each position also counted on the held-out leaves whose ``n1`` is wrong) for three
    recipes: the book's (the run of "Path-finding from memory", l = 6), the release's (l = 5, the book's
    scale) and the release's with a quarter of every batch paths (the ablation in which the leaf's
    parent ran ahead of ``n1`` on the AMD CPU it was first run on). Shipped to step 8,000 (release) and 11,000 (the ablation) with ``--cap-steps``: the
    release recipe's held-out ``n1`` has switched on by then (its 21,400 steps would take the evaluations
    past an hour); a larger cap continues a run."""
    ablation = release_ablation()
    rel, share = ablation["release"][1], ablation["ablation: path share 0.25"][1]
    return {
        "the book's recipe": ("the book's path-star run (PATHSTAR_CPU: 'Path-finding from memory', l = 6), "
                              f"evaluated every {CASCADE_EVERY} steps", every(PATHSTAR_CPU, CASCADE_EVERY)),
        "the release recipe": (f"the release recipe at the book's scale (l = 5), evaluated every {CASCADE_EVERY} steps",
                               every(rel, CASCADE_EVERY)),
        "path share 0.25": ("the release recipe with a quarter of every batch paths (the release: their natural share, "
                            f"8.6%), evaluated every {CASCADE_EVERY} steps; stops at held-out full path >= 0.9 twice",
                            every(share, CASCADE_EVERY)),
    }


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def run_one(run: str, name: str, what: str, cfg: PathStarRun, seed: int, out: Path, command: str,
            cap_steps: int | None = None, redo: bool = False) -> dict | None:
    """Run (or continue) one long run, publishing its JSON after every evaluation.

    The shipped curve is never replaced by a shorter one: a run whose JSON holds a longer curve
    than the run has reached is published only once it passes it, and a run whose JSON is
    unfinished but whose checkpoint is gone (another machine, a cleared cache) is refused with a
    message instead of silently starting again from step 0. ``redo``: start over, a fresh record."""
    commit, started = git_commit(), time.time()
    previous = json.loads(out.read_text()) if out.exists() else {}
    same_run = previous.get("config") == plain(cfg) and not redo
    sessions = previous.get("sessions", []) if same_run else []
    shipped_steps = previous.get("steps", 0) if same_run else 0
    ckpt = checkpoint_path(cfg, seed)
    if redo and ckpt.exists():
        ckpt.unlink()
        print(f"{name} (seed {seed}): --redo: its checkpoint is deleted, the run starts over with a fresh record")
    if shipped_steps and not ckpt.exists():
        print(f"{name} (seed {seed}): {out.relative_to(ROOT)} holds {shipped_steps} steps of this run, but its checkpoint "
              f"{ckpt} is gone (another machine or a cleared cache), so it cannot continue. Run it again with --redo to "
              "start over (the shipped curve is replaced once the new run is published).", file=sys.stderr)
        return None
    held_back = {"said": False}

    def publish(history, finished: bool = False) -> None:
        rows = history.rows
        reached = rows[-1]["step"] if rows else 0
        capped = not finished and cap_steps is not None and rows and reached >= cap_steps
        if reached < shipped_steps and not finished:
            if not held_back["said"]:
                print(f"{name} (seed {seed}): at step {reached}, behind the shipped curve ({shipped_steps} steps): "
                      "it is kept until this run passes it")
                held_back["said"] = True
        else:
            first = next((r for r in rows if r.get("heldout_full_path", 0.0) >= SWITCH), None)
            status = ("finished" if finished else
                      f"capped at {cap_steps} steps (not within the cap; resumable: a larger --cap-steps continues it)"
                      if capped else "unfinished (resumable: run the command again to continue)")
            write_json_atomic(out, {
                **provenance(what, command, commit=commit), "run": run, "name": name, "seed": seed,
                "status": status, "cap_steps": cap_steps, "config": plain(cfg),
                "sessions": sessions + [{"started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
                                         "wall_seconds": round(time.time() - started),
                                         **history.meta.get("sessions", [{}])[-1]}],  # step, commit, versions: the trainer's
                **({"supersedes": HEADLINE_SUPERSEDES} if run == "headline_cpu" else {}),
                "train_seconds": rows[-1]["seconds"] if rows else 0.0, "steps": reached,
                f"heldout_full_path_ge_{SWITCH}_at": None if first is None else first["step"],
                f"seconds_to_{SWITCH}": None if first is None else first["seconds"],
                "rows": rows})
        if capped:
            raise Capped(reached)

    try:
        _, _, history = pathstar_run(cfg, seed, resumable=True, on_checkpoint=publish, progress=True)
    except Capped as stop:
        print(f"{name} (seed {seed}): capped at step {stop.args[0]} ({out.relative_to(ROOT)})")
        return None
    except CheckpointError as e:
        print(f"{name} (seed {seed}): {e}", file=sys.stderr)
        return None
    publish(history, finished=True)
    last = history.last
    print(f"{name} (seed {seed}): finished at step {last['step']}: held-out full path {last['heldout_full_path']:.3f}")
    return last


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it is inside it (as messages name shipped files)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stop_here(out: Path, done: dict, reason: str, command: str) -> None:
    """End an unfinished shipped run where its curve stands: its status says so and why (it is then
    never resumed; ``--redo`` starts it afresh)."""
    if not done:
        print(f"{_shown(out)}: nothing shipped to stop")
        return
    if not done.get("status", "").startswith(("unfinished", "capped")):
        print(f"{_shown(out)}: {done.get('status')!r}, left as it is")
        return
    done["status"] = f"stopped at step {done['steps']:,}: {reason}"
    done["stopped"] = {**provenance(f"stopped at step {done['steps']:,}", command), "reason": reason,
                       "when": time.strftime("%Y-%m-%d %H:%M")}
    write_json_atomic(out, done)
    print(f"{_shown(out)}: {done['status']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", choices=["paper_graph", "regime", "d_axis", "length_levers", "recipe_checks", "headline_cpu", "release", "length",
                                               "cascade"])
    ap.add_argument("only", nargs="*", help="release: the runs to do (default: all, in order)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--redo", action="store_true", help="run finished runs again")
    ap.add_argument("--stop-here", metavar="REASON", default=None,
                    help="end an unfinished run where its shipped curve stands (it is not resumed again), saying why")
    ap.add_argument("--cap-steps", type=int, default=None,
                    help="stop a run (resumably) once it has trained this many steps without finishing")
    args = ap.parse_args(argv)
    runs = {"headline_cpu": {"headline_cpu": ("the paper's headline cell on a CPU: path-star d=10^4, l=6, 2x128 "
                                              "GPT, the chapter's l = 6 recipe scaled to that graph", headline_config())},
            "paper_graph": {"the book's run": ("the paper's graph (path-star d = 10^4, l = 6, 50,001 nodes) with the "
                                               "book's path-star run (PATHSTAR_CPU) and its full-batch edge stage, "
                                               "computed exactly by the chunked head", paper_graph_config())},
            "regime": regime_runs(), "d_axis": d_axis_runs(), "length_levers": length_lever_runs(), "recipe_checks": recipe_check_runs(), "release": release_ablation(), "length": length_runs(), "cascade": cascade_runs()}
    if args.list or args.run is None:
        for run, table in runs.items():
            for name, (what, _) in table.items():
                print(f"{run:13s} {name!r}: {what}")
        return 0
    table = runs[args.run]
    unknown = [n for n in args.only if n not in table]
    if unknown:
        ap.error(f"unknown run(s) {unknown}; choose from {list(table)}")
    command = "python tools/long_run.py " + " ".join(repr(a) if " " in a else a
                                                    for a in (sys.argv[1:] if argv is None else argv))
    if any(s < 0 for s in args.seeds):
        ap.error(f"--seeds must be integers >= 0, got {args.seeds}")
    if args.cap_steps is not None and args.cap_steps < 1:
        ap.error(f"--cap-steps must be a number of steps >= 1, got {args.cap_steps}")
    if args.stop_here is not None and not args.stop_here.strip():
        ap.error("--stop-here needs a reason (it is written into the run's JSON)")
    for name in args.only or list(table):
        what, cfg = table[name]
        for seed in args.seeds:
            out = (DATA / "headline_cpu.json" if args.run == "headline_cpu"
                   else DATA / f"pathstar_{args.run}" / f"{_slug(name)}-seed{seed}.json")
            done = json.loads(out.read_text()) if out.exists() else {}
            if args.stop_here is not None:
                stop_here(out, done, args.stop_here.strip(), command)
                continue
            if done.get("status", "").startswith(("finished", "stopped")) and not args.redo:
                print(f"{name} (seed {seed}): already {done['status'].split(':')[0]} ({out.relative_to(ROOT)}; --redo "
                      "runs it again)")
                continue
            if (done.get("status", "").startswith("capped") and args.cap_steps is not None
                    and done.get("steps", 0) >= args.cap_steps and not args.redo):
                print(f"{name} (seed {seed}): already ran to the cap ({done['steps']} steps)")
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            run_one(args.run, name, what, cfg, seed, out, command, args.cap_steps, redo=args.redo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
