"""Typed presets, one per chapter, named after the chapter's notebook.

Every chapter has two presets: ``cpu`` (the default: what CI runs and the book shows) and
``paper`` (the authors' scale, for a GPU). A preset is a small frozen dataclass of literal
values; a variant is made with ``dataclasses.replace``, which checks every value's type::

    from dataclasses import replace
    from geomlib import get_preset

    cfg = get_preset("path_finding_from_memory")               # a PathFindingFromMemory
    run = replace(cfg.run, d=200)                               # a PathStarRun with 200 arms
    replace(run, d="200")                                       # TypeError: d must be int

**Provenance.** Each chapter also has the setup the authors' release runs for it
(``RELEASE``, read from ``Shahriarnz14/Geometric_Memory``; see ``shared/paper-brief.md``) and,
for every setting where a preset departs from it, one line saying why (``WHY``).
:func:`setup_table` renders the departures, value by value, from these objects (never typed by
hand); :func:`is_release` says whether a preset is the release's recipe. A test requires a reason
for every departure of every preset.

Shared values are named once, here, and say which chapters use them: ``PATHSTAR_CPU`` (the
book's path-star run, at the release's path length l = 6) is the run of three chapters,
``PATHSTAR_L5_CPU`` (the book's former l = 5 recipe) the base of the hardest-token run and of the
shipped ablations, ``TINY_TRANSFORMER`` the model of three.
"""
from __future__ import annotations

import copy
import html
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, ClassVar, Union

from .evaluate import DECODES
from .precision import PRECISIONS
from .train import TrainConfig

__all__ = ["PRESETS", "RELEASE", "WHY", "get_preset", "preset_names", "setup_table", "departures", "is_release",
           "plain", "GPT", "Mamba", "Linear", "Node2Vec", "EdgeRecipe", "Stage", "PathStarRun", "InContextRun",
           "RELEASE_RECIPE", "PATHSTAR_CPU", "PATHSTAR_L5_CPU", "PATHSTAR_L6_CPU", "TINY_TRANSFORMER", "ASSOCIATIVE_CONTROL", "FORMATS"]


# ----------------------------------------------------------------------------- typed values
def _conforms(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin in (Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(args) == len(value) and all(_conforms(v, a) for v, a in zip(value, args))
    if origin is dict:
        k, v = typing.get_args(hint)
        return isinstance(value, dict) and all(_conforms(a, k) and _conforms(b, v) for a, b in value.items())
    return isinstance(value, origin or hint)


class _Typed:
    """A frozen dataclass whose fields are checked against their annotations on construction
    (and so on every ``dataclasses.replace``): a wrong type is a TypeError naming the field."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # a list where a tuple is meant: accept, store the tuple
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if not _conforms(value, hints[f.name]):
                raise TypeError(f"{type(self).__name__}.{f.name} must be {_show_hint(hints[f.name])}, "
                                f"got {value!r} ({type(value).__name__})")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{type(self).__name__}.{f.name} must be a finite number, got {value}")
        for name, (low, high) in self._bounds.items():  # values, not only types
            value = getattr(self, name)
            if value is not None and not (low <= value and (high is None or value <= high)):
                where = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise ValueError(f"{type(self).__name__}.{name} must be {where}, got {value!r}")

    #: ``{field: (lowest, highest or None)}``: the values a field may take (None values pass).
    _bounds: ClassVar[dict[str, tuple[float, float | None]]] = {}


def _show_hint(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def plain(obj):
    """A preset (or any part of one) as JSON-able data: what cache keys and shipped results hold.
    A dataclass becomes its fields, with the model kind for a model."""
    if is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
        kind = getattr(type(obj), "kind", None)
        return {"kind": kind, **out} if isinstance(kind, str) else out
    if isinstance(obj, (tuple, list)):
        return [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------- building blocks
@dataclass(frozen=True)
class GPT(_Typed):
    """The nanoGPT-style decoder (:class:`geomlib.models.GPT`); init std 0.02 unless stated."""
    n_layer: int
    n_head: int
    n_embd: int
    emb_init_std: float | None = None  # token embeddings (None: 0.02)
    pos_init_std: float | None = None  # positional embeddings (None: 0.02; the release: 1.0)
    scaled_residual_init: bool = True  # GPT-2's scaled residual init (the release's never fires)
    freeze_embeddings: bool = False  # the associative control: token embeddings stay random
    kind: ClassVar[str] = "gpt"
    _bounds = {"n_layer": (1, None), "n_head": (1, None), "n_embd": (1, None), "emb_init_std": (0.0, None),
               "pos_init_std": (0.0, None)}

    def __post_init__(self):
        super().__post_init__()
        if self.n_embd % self.n_head:
            raise ValueError(f"GPT.n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


@dataclass(frozen=True)
class Mamba(_Typed):
    """Selective state-space blocks (:class:`geomlib.models.Mamba`): state 16, conv 4, expand 2."""
    n_layer: int
    d_model: int
    residual: bool = True  # the release: no residual connection
    final_norm: bool = True  # the release: no final LayerNorm
    release_init: bool = False  # the release: every Linear in a block N(0, 0.02), zero biases
    kind: ClassVar[str] = "mamba"
    _bounds = {"n_layer": (1, None), "d_model": (1, None)}


@dataclass(frozen=True)
class Linear(_Typed):
    """The linear net ``logits = E W E^T`` (:class:`geomlib.models.LinearNet`)."""
    width: int
    init_std: float = 0.02  # E
    w_init_std: float | None = None  # W (None: init_std)
    freeze_embeddings: bool = False  # the associative control
    dropout: float = 0.0
    dropout_after_w: bool = False  # the release's dropout position
    kind: ClassVar[str] = "linear"
    _bounds = {"width": (1, None), "init_std": (0.0, None), "w_init_std": (0.0, None), "dropout": (0.0, 0.99)}


@dataclass(frozen=True)
class Node2Vec(_Typed):
    """1-hop Node2Vec, full softmax, tied (:class:`geomlib.models.Node2Vec`)."""
    dim: int = 100
    init_std: float = 0.02
    loss: str = "mean"  # "node_sum": the release's sum over source nodes of the mean over neighbours
    kind: ClassVar[str] = "node2vec"
    _bounds = {"dim": (1, None), "init_std": (0.0, None)}


Model = Union[GPT, Mamba, Linear, Node2Vec]


def model_kwargs(model: Model) -> tuple[str, dict]:
    """``(kind, constructor arguments)`` for :func:`geomlib.models.build_model`."""
    return model.kind, {f.name: getattr(model, f.name) for f in fields(model)}


@dataclass(frozen=True)
class EdgeRecipe(_Typed):
    """Edge memorisation on a small graph, full batch: a model and how to train it."""
    model: Model
    train: TrainConfig


@dataclass(frozen=True)
class Stage(_Typed):
    """One stage of a path-star recipe: its data (``"edges"``, ``"paths"`` or ``"mixed"``), the
    optimiser settings (``train``; its ``eval_every`` 0 means the run's, its precision is the
    run's), the batch (None: full batch) and, for a mixed stage, the share of paths in a batch
    (None: their natural share)."""
    data: str
    train: TrainConfig
    batch: int | None = None
    path_fraction: float | None = None
    _bounds = {"batch": (1, None), "path_fraction": (0.0, 1.0)}

    def __post_init__(self):
        super().__post_init__()
        if self.data not in ("edges", "paths", "mixed"):
            raise ValueError(f"Stage.data must be 'edges', 'paths' or 'mixed', got {self.data!r}")


@dataclass(frozen=True)
class PathStarRun(_Typed):
    """One in-weights path-star run: the graph (``d`` arms of ``l`` nodes), the training format,
    the model, its recipe (stages), and the geometric interventions of "Interventions"."""
    d: int
    l: int
    model: GPT | Mamba
    stages: tuple[Stage, ...]
    precision: str = "auto"  # "fp32", "bf16" (autocast) or "auto" (bf16 where native)
    eval_every: int = 100
    decode: str = "nodes"  # greedy argmax over node tokens ("nodes") or the whole vocabulary ("vocab")
    hardest_token: bool = False  # supervise only n1
    self_edges: bool = False  # also train u -> u
    emb_init: EdgeRecipe | None = None  # start the node embeddings from this Node2Vec recipe
    aux_node2vec: float = 0.0  # weight of an auxiliary Node2Vec loss on the node embeddings
    stop_at: float | None = None  # stop once held-out full path >= this (stop_patience evaluations in a row)
    stop_patience: int = 1
    _bounds = {"d": (1, None), "l": (2, None), "eval_every": (0, None), "aux_node2vec": (0.0, None),
               "stop_at": (0.0, 1.0), "stop_patience": (1, None)}

    def __post_init__(self):
        super().__post_init__()
        if not self.stages:
            raise ValueError("PathStarRun.stages is empty; a run needs at least one stage")
        if self.decode not in DECODES:
            raise ValueError(f"PathStarRun.decode must be one of {DECODES}, got {self.decode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"PathStarRun.precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class InContextRun(_Typed):
    """The in-context path-star task (Bachmann & Nagarajan): fresh graphs in the prompt."""
    d: int
    l: int
    num_labels: int
    num_train: int
    num_test: int
    model: GPT
    train: TrainConfig
    eval_every: int
    _bounds = {"d": (1, None), "l": (2, None), "num_labels": (1, None), "num_train": (1, None), "num_test": (1, None),
               "eval_every": (0, None)}


# ----------------------------------------------------------------------------- shared values
def _adamw(steps: int, lr: float, **kw) -> TrainConfig:
    return TrainConfig(steps=steps, lr=lr, **kw)


# The mechanism studies' 1-layer, 1-head, width-32 Transformer (local supervision, headroom), as
# the release builds it: positional embeddings N(0, 1) (created after the generic init), no
# residual scaling. AdamW lr 1e-2 cosine to 1e-3, no weight decay, no dropout, full batch; the
# release's betas (0.9, 0.999) and no clipping. Measured (benchmarks/tiny_transformer.py, 5 seeds):
# these settings give the paper's early peak (geometric level 0.85-0.92 per graph); the book's former
# nanoGPT-style settings gave 0.65-0.85. bf16 autocast and fp32 give the same geometry here.
TINY_TRANSFORMER = GPT(n_layer=1, n_head=1, n_embd=32, pos_init_std=1.0, scaled_residual_init=False)
_TINY_TRAIN = dict(lr=1e-2, final_lr_ratio=0.1, weight_decay=0.0)
_TINY_TRANSFORMER_TRAIN = dict(betas=(0.9, 0.999), grad_clip=None, **_TINY_TRAIN)

# 1-hop Node2Vec: full softmax, tied, plain full-batch gradient descent, width 100 > N, no decay.
_NODE2VEC = Node2Vec(dim=100, init_std=0.02)
_GD = dict(optimizer="sgd", schedule="constant", grad_clip=None, weight_decay=0.0)

# The associative control of the tiny-graph chapters ("Associative vs geometric", "A wide linear net"):
# the wide linear net with E frozen at 1/sqrt(width) (unit-norm random rows) and W from 0, so every
# edge must be stored in W as a lookup.
ASSOCIATIVE_CONTROL = Linear(width=512, init_std=512 ** -0.5, w_init_std=0.0, freeze_embeddings=True)

# What the release runs on the tiny graphs (see shared/paper-brief.md): the 1-layer Transformer with
# positional embeddings N(0, 1) and no residual scaling, AdamW betas (0.9, 0.999), no clipping,
# bf16 autocast; the linear net at lr 1e-2 constant for 10,000 epochs; Node2Vec from N(0, 1), plain
# GD at lr 0.01 on a summed loss, 10,000 epochs.
_GPT_RELEASE = dict(pos_init_std=1.0, scaled_residual_init=False)
_RELEASE_TINY_TRAIN = TrainConfig(steps=2500, precision="bf16", **_TINY_TRANSFORMER_TRAIN)
_RELEASE_TINY = EdgeRecipe(TINY_TRANSFORMER, _RELEASE_TINY_TRAIN)
_RELEASE_LINEAR_TRAIN = TrainConfig(steps=10000, lr=1e-2, schedule="constant", betas=(0.9, 0.999), grad_clip=None,
                                    precision="bf16")
_RELEASE_LINEAR = EdgeRecipe(Linear(width=512, init_std=0.02), _RELEASE_LINEAR_TRAIN)
_RELEASE_ASSOCIATIVE = EdgeRecipe(Linear(width=512, init_std=0.02, freeze_embeddings=True), _RELEASE_LINEAR_TRAIN)
_RELEASE_NODE2VEC = EdgeRecipe(Node2Vec(dim=100, init_std=1.0, loss="node_sum"),
                               TrainConfig(steps=10000, lr=0.01, **_GD))

# The book's former path-star recipe at l = 5 (cpu), measured on the 2-core machine
# (benchmarks/pathstar_switch.py): a short edge stage, then mixed batches with a quarter of each batch
# training paths, constant lr 2e-3 with weight decay 1.0, then a decay over the second half ("wsd").
# Held-out full-path accuracy passes 0.9 within ~250 mixed steps; the decay stops the oscillation a
# constant lr causes. Now the base of the hardest-token run and of the shipped ablations
# (tools/long_run.py: "ours"); the book's live run is PATHSTAR_CPU below.
_EDGE_STAGE_CPU = Stage("edges", _adamw(300, 1e-2, warmup=50, weight_decay=0.01, final_lr_ratio=0.1, eval_every=20))
_MIXED_STAGE_CPU = Stage("mixed", _adamw(1200, 2e-3, schedule="wsd", decay_fraction=0.5, final_lr_ratio=0.05,
                                         weight_decay=1.0), batch=2048, path_fraction=0.25)
_GPT_CPU = GPT(n_layer=2, n_head=4, n_embd=128)
PATHSTAR_L5_CPU = PathStarRun(d=500, l=5, model=_GPT_CPU, stages=(_EDGE_STAGE_CPU, _MIXED_STAGE_CPU))
# Runs whose edge stage needs no fine timeline (only the cascade chapter reads it every 20 steps).
_EDGE_STAGE_CPU_COARSE = replace(_EDGE_STAGE_CPU, train=replace(_EDGE_STAGE_CPU.train, eval_every=100))

# The book's recipe at the release's path length l = 6 (measured: tools/long_run.py length, data/pathstar_length/):
# at l = 6 the book's l = 5 recipe reads held-out n1 out of the geometry only transiently (0.08 at the first
# evaluation after paths enter, then ~0) and the release's recipe not at all within 4,000 steps. Three changes, each
# towards the paper, make the read-out appear and stay: token embeddings from N(0, 0.0005) instead of N(0, 0.02)
# (held-out n1 at the switch 0.08 -> 0.68 at 0.002 -> 0.98 at 0.0005; a small init is the paper's geometric regime,
# "Knobs"); the release's weight decay 0.01 in the mixed stage instead of 1.0 (with 1.0 a per-leaf lookup displaces
# the read-out: 0.98 -> 0.15 by step 1,500; with 0.01 it is 0.91 there); and the training paths at their natural
# share of each mixed batch, as the release (with a quarter, seed 1 drifted from 0.98 to 0.86 within the 600
# mixed steps; at the natural share it ended at 0.97). The mixed stage is 600 steps (the switch comes within 100).
PATHSTAR_L6_CPU = replace(PATHSTAR_L5_CPU, l=6, model=replace(_GPT_CPU, emb_init_std=0.0005), stages=(
    _EDGE_STAGE_CPU_COARSE, replace(_MIXED_STAGE_CPU, path_fraction=None,
                                    train=replace(_MIXED_STAGE_CPU.train, steps=600, weight_decay=0.01))))
# The book's path-star run: that recipe at the release's path length, with the edge stage evaluated
# every 20 steps (the cascade chapter reads that timeline; evaluation draws no random numbers, so the
# weights are those of the shipped runs of PATHSTAR_L6_CPU, seeds 0-4: held-out full path 0.93-0.99).
# 900 steps where the former l = 5 recipe took 1,500, and held on every seed where that one ended at
# 0.78-1.00. The run of "Path-finding from memory", "No reverse cascade" and "Geometry explains" (one
# cache entry).
PATHSTAR_CPU = replace(PATHSTAR_L6_CPU, stages=(_EDGE_STAGE_CPU, PATHSTAR_L6_CPU.stages[1]))

# The authors' release recipe (`mixed_full_path`), every value as the release: one mixed stage from
# scratch (no edge-only stage), edges and training paths in their natural proportion, AdamW lr
# 5e-4, betas (0.9, 0.999), weight decay 0.01 on every parameter, no gradient clipping, warmup
# 1,000 then cosine to lr/10, batch 2,048, 10,000 epochs, bf16 autocast (the release's GPU
# precision), positional embeddings N(0, 1) and no GPT-2 residual scaling (the release's quirks),
# greedy decoding over the whole vocabulary. `paper`: d = 10^4, l = 6, 12 x 384 x 8 (525,000
# steps); `cpu`: the same recipe at the book's d = 500, l = 5, 2 x 128 (21,400 steps; run by
# tools/long_run.py, hours on 2 cores).
def _release_stage(steps: int) -> Stage:
    return Stage("mixed", _adamw(steps, 5e-4, warmup=1000, final_lr_ratio=0.1, weight_decay=0.01, decay_all=True,
                                 betas=(0.9, 0.999), grad_clip=None), batch=2048, path_fraction=None)


_GPT_PAPER = GPT(n_layer=12, n_head=8, n_embd=384)
RELEASE_RECIPE = {
    "cpu": PathStarRun(d=500, l=5, model=replace(_GPT_CPU, **_GPT_RELEASE), stages=(_release_stage(21_400),),
                       precision="bf16", eval_every=200, decode="vocab"),
    "paper": PathStarRun(d=10_000, l=6, model=replace(_GPT_PAPER, **_GPT_RELEASE), stages=(_release_stage(525_000),),
                         precision="bf16", eval_every=5000, decode="vocab"),
}
_PATHSTAR_PAPER = RELEASE_RECIPE["paper"]

# The phase diagram's recipe: the `pathstar` cpu recipe on smaller graphs, a mixed stage of 400
# steps with batches of 512 (also "Interventions" and "Mamba too").
_SCALING_BASE_CPU = PathStarRun(d=100, l=5, model=_GPT_CPU, stages=(
    _EDGE_STAGE_CPU, replace(_MIXED_STAGE_CPU, train=replace(_MIXED_STAGE_CPU.train, steps=400), batch=512)))


# ----------------------------------------------------------------------------- chapter presets
@dataclass(frozen=True)
class PathFindingFromMemory(_Typed):
    run: PathStarRun  # the in-weights task, at the release's path length l = 6
    incontext: InContextRun  # the same graphs given in context


@dataclass(frozen=True)
class NoReverseCascade(_Typed):
    run: PathStarRun  # the model of "Path-finding from memory" (the same cache entry)


@dataclass(frozen=True)
class HardestToken(_Typed):
    run: PathStarRun


@dataclass(frozen=True)
class GeometryExplains(_Typed):
    run: PathStarRun  # the model of "Path-finding from memory"
    control: PathStarRun  # the associative control: token embeddings frozen at random


@dataclass(frozen=True)
class MambaToo(_Typed):
    run: PathStarRun  # Mamba
    transformer: PathStarRun  # the Transformer on the same cell (a cell of "Scaling")


@dataclass(frozen=True)
class AssociativeVsGeometric(_Typed):
    cycle_n: int
    grid_rows: int
    grid_cols: int
    associative: EdgeRecipe  # wide linear net, embeddings frozen at random: a lookup in W
    geometric: EdgeRecipe  # 1-hop Node2Vec: only a table, no lookup possible
    eval_every: int


@dataclass(frozen=True)
class GeometryFromLocalSupervision(_Typed):
    recipe: EdgeRecipe
    seeds: int
    eval_every: int
    k: int  # top-k edge recall


@dataclass(frozen=True)
class UnclearWhy(_Typed):
    recipe: EdgeRecipe  # width > N, no regulariser, only 1-hop edges; the control freezes its embeddings
    seeds: int
    k: int


@dataclass(frozen=True)
class LargeGraph(_Typed):
    rows: int
    cols: int
    lr: float
    steps: int
    k: int  # top-k eigenvectors whose energy share is measured


@dataclass(frozen=True)
class Linearisation(_Typed):
    init_std: float
    lr: float
    steps: int


@dataclass(frozen=True)
class SpectralBias(_Typed):
    recipe: EdgeRecipe  # Node2Vec on the four tiny graphs, from a small init
    large: LargeGraph  # the same on a larger grid
    linearisation: Linearisation  # the small-init regime the chapter's argument is about
    release_start: EdgeRecipe  # Node2Vec as the release trains it: from N(0, 1), a random table to forget


@dataclass(frozen=True)
class LinearNetChapter(_Typed):
    n: int  # cycle length
    recipe: EdgeRecipe
    control: EdgeRecipe  # the associative control
    seeds: int


@dataclass(frozen=True)
class Headroom(_Typed):
    transformer: EdgeRecipe
    node2vec: EdgeRecipe
    seeds: int
    k: int  # directions whose energy share is measured


@dataclass(frozen=True)
class Knobs(_Typed):
    n: int  # cycle length
    seeds: int
    variants: dict[str, EdgeRecipe]


@dataclass(frozen=True)
class Scaling(_Typed):
    base: PathStarRun  # the centre cell; one axis changes at a time
    arms: tuple[int, ...]
    lengths: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]  # (layers, width)
    seeds: int
    size_seeds: int  # seeds of the two model-size cells the claim compares


@dataclass(frozen=True)
class Interventions(_Typed):
    variants: dict[str, PathStarRun]  # "plain" and one geometric intervention each
    seeds: int


PRESETS: dict[str, dict[str, Any]] = {}
RELEASE: dict[str, Any] = {}
WHY: dict[str, dict[str, str]] = {}


def _register(chapter: str, *, cpu, paper, release, why: dict[str, str]) -> None:
    PRESETS[chapter] = {"cpu": cpu, "paper": paper}
    RELEASE[chapter] = release
    WHY[chapter] = why


# Reasons shared by the path-star chapters: the book's recipe against the release's (a chapter
# whose run does not depart at one of these settings simply does not show that row).
_WHY_PATHSTAR = {
    "d": "budget: 500 arms train in minutes on 2 CPU cores; the release's 10^4 arms need a GPU (`paper` preset)",
    "l": "this run's recipe is the book's former l = 5 recipe, measured at l = 5; at the release's l = 6 it reads "
         "held-out n1 only transiently (a per-leaf lookup displaces it; data/pathstar_length). The book's main run "
         "('Path-finding from memory') is at l = 6, with a small token init and the release's weight decay and path "
         "share",
    "model.n_layer": "budget: 2 x 128 is what 2 CPU cores train in minutes; the release uses 12 x 384",
    "model.n_head": "budget: 4 heads at width 128 (head size 32); the release uses 8 at 384",
    "model.n_embd": "budget (see n_layer)",
    "model.pos_init_std": "the release's N(0, 1) positional init is a quirk of its init order; measured in the "
                          "release-recipe ablation (data/pathstar_release)",
    "model.scaled_residual_init": "the release's scaled init never fires (it keys on a name no module has); ours "
                                  "is GPT-2's",
    "stages": "the book's recipe: a short edge-only stage, then mixed batches; held-out paths switch on within "
              "~250 mixed steps on 2 cores (the release's single mixed stage: see the ablation)",
    "stages[mixed].train.steps": "budget: the book's switch happens within 1,200 mixed steps; the release runs "
                                 "10,000 epochs",
    "stages[mixed].train.lr": "the book's recipe: 2e-3 held then decayed (measured faster on 2 cores)",
    "stages[mixed].train.schedule": "warmup-stable-decay: the decay stops the oscillation a constant lr causes",
    "stages[mixed].train.warmup": "the edge stage has already warmed the model up",
    "stages[mixed].train.final_lr_ratio": "the book's recipe (decay to 0.05 lr)",
    "stages[mixed].train.decay_fraction": "the book's recipe (decay over the second half)",
    "stages[mixed].train.weight_decay": "at l = 5 weight decay 1.0 favours the geometric read-out over a per-leaf "
                                        "lookup (measured in the ablation; at l = 6 it does the opposite)",
    "stages[mixed].train.decay_all": "nanoGPT's convention: biases and norms do not decay",
    "stages[mixed].train.betas": "nanoGPT's (0.9, 0.95)",
    "stages[mixed].train.grad_clip": "nanoGPT's clipping at 1.0",
    "stages[mixed].path_fraction": "a quarter of each batch is paths, so that the few training paths are seen "
                                   "often (the release: their natural share, 7-9%)",
    "stages[mixed].batch": "the phase diagram's smaller graphs: batches of 512",
    "precision": "bf16 where the CPU computes it natively (as the release on a GPU), fp32 elsewhere: there bf16 "
                 "costs at least fp32's time (PyTorch's emulation 2-13x more); seed 0 forced to fp32 passes the same "
                 "path-star claims (data/robustness.json, series fp32; the model-size tendency aside)",
    "decode": "the answer is always a node: the argmax is taken over node tokens (the release: the whole "
              "vocabulary; a special token then counts as wrong)",
}


_INCONTEXT_CPU = InContextRun(d=2, l=5, num_labels=50, num_train=50_000, num_test=2000, model=_GPT_CPU,
                              train=_adamw(600, 1e-3, warmup=100, weight_decay=0.01, batch_size=256, precision="auto"),
                              eval_every=100)
_INCONTEXT_PAPER = InContextRun(d=5, l=5, num_labels=50, num_train=200_000, num_test=5000,
                                model=GPT(n_layer=6, n_head=6, n_embd=384),
                                train=_adamw(20000, 5e-4, warmup=500, weight_decay=0.01, batch_size=256,
                                             precision="auto"), eval_every=1000)
# Reasons of the book's main run (PATHSTAR_CPU, l = 6) where they differ from the former l = 5 recipe's.
_WHY_MAIN = {
    "model.emb_init_std": "at l = 6 a small token init is what makes held-out n1 readable from the geometry (0.08 at "
                          "N(0, 0.02), 0.98 at N(0, 0.0005), measured in data/pathstar_length): the small-init regime "
                          "the paper calls geometric ('Knobs'), 40x below the release's N(0, 0.02)",
    "stages[mixed].train.steps": "budget: held-out paths switch on within the first 100 mixed steps; 600 mixed "
                                 "steps (the release runs 10,000 epochs)",
}
# Bachmann & Nagarajan's in-context setting (their d = 2..5): d = 2 arms, l = 5, 50 labels.
# cpu: 600 steps; measured: the tokens after n1 are perfect by step 300 and n1 stays at chance
# (0.50) from then to step 1,500 in a longer run, so steps beyond 600 only cost time.
_register(
    "path_finding_from_memory",
    cpu=PathFindingFromMemory(run=PATHSTAR_CPU, incontext=_INCONTEXT_CPU),
    paper=PathFindingFromMemory(run=_PATHSTAR_PAPER, incontext=_INCONTEXT_PAPER),
    release=PathFindingFromMemory(run=_PATHSTAR_PAPER, incontext=_INCONTEXT_PAPER),
    why={**{f"run.{k}": v for k, v in {**_WHY_PATHSTAR, **_WHY_MAIN}.items()},
         "incontext.d": "budget: d = 2 (Bachmann & Nagarajan's smallest); their d = 5 in `paper`",
         "incontext.num_train": "budget: 50,000 graphs show the failure within 600 steps",
         "incontext.num_test": "budget",
         "incontext.model.n_layer": "budget: the book's 2 x 128 GPT; theirs is 6 x 384",
         "incontext.model.n_head": "budget", "incontext.model.n_embd": "budget",
         "incontext.train.steps": "n1 stays at chance from step 300 to 1,500 in a longer run (measured)",
         "incontext.train.lr": "the book's 2 x 128 GPT trains at 1e-3",
         "incontext.train.warmup": "a shorter run"},
)
_register(
    "no_reverse_cascade",
    cpu=NoReverseCascade(run=PATHSTAR_CPU), paper=NoReverseCascade(run=_PATHSTAR_PAPER),
    release=NoReverseCascade(run=_PATHSTAR_PAPER),
    why={f"run.{k}": v for k, v in {**_WHY_PATHSTAR, **_WHY_MAIN}.items()},
)
# The hardest-token recipe converges within 100 mixed steps (held-out n1 0.99 at step 400 and 1.00
# from then to step 1,500 in a longer run), so its mixed stage is half as long.
_HARDEST_CPU = replace(PATHSTAR_L5_CPU, hardest_token=True, stages=(
    _EDGE_STAGE_CPU_COARSE, replace(_MIXED_STAGE_CPU, train=replace(_MIXED_STAGE_CPU.train, steps=600))))
_register(
    "hardest_token",
    cpu=HardestToken(run=_HARDEST_CPU), paper=HardestToken(run=replace(_PATHSTAR_PAPER, hardest_token=True)),
    release=HardestToken(run=replace(_PATHSTAR_PAPER, hardest_token=True)),
    why={**{f"run.{k}": v for k, v in _WHY_PATHSTAR.items()},
         "run.stages[mixed].train.steps": "held-out n1 is 0.99 by step 400 and stays at 1.00 to step 1,500 in a "
                                          "longer run (measured): 600 mixed steps"},
)
# The associative control: the book's run with the token embeddings frozen at random, and the mixed
# stage of the former l = 5 recipe (a quarter of each batch paths, weight decay 1.0, 1,200 steps): with
# the main run's mixed stage the frozen network fitted 0.78 of its training paths and 0.89 of its edge
# queries (seed 0, data/control_l6.json), and a control must fit them for its held-out failure to mean anything.
_FROZEN_CPU = replace(PATHSTAR_L6_CPU, model=replace(PATHSTAR_L6_CPU.model, freeze_embeddings=True, emb_init_std=1.0),
                      stages=(PATHSTAR_L6_CPU.stages[0], _MIXED_STAGE_CPU))
_WHY_CONTROL_FIT = ("the control's mixed stage is the book's former l = 5 recipe (a quarter of each batch paths, weight "
                    "decay 1.0, 1,200 steps): with the main run's (natural share, 0.01, 600 steps) the frozen network "
                    "fitted 0.78 of its training paths and 0.89 of its edge queries (seed 0, data/control_l6.json); a control must "
                    "fit them for its held-out failure to mean anything")
_FROZEN_PAPER = replace(_PATHSTAR_PAPER, model=replace(_PATHSTAR_PAPER.model, freeze_embeddings=True, emb_init_std=1.0))
_register(
    "geometry_explains",
    cpu=GeometryExplains(run=PATHSTAR_CPU, control=_FROZEN_CPU),
    paper=GeometryExplains(run=_PATHSTAR_PAPER, control=_FROZEN_PAPER),
    release=GeometryExplains(run=_PATHSTAR_PAPER,
                             control=replace(_PATHSTAR_PAPER, model=replace(_PATHSTAR_PAPER.model, freeze_embeddings=True))),
    why={**{f"{p}.{k}": v for p in ("run", "control") for k, v in {**_WHY_PATHSTAR, **_WHY_MAIN}.items()},
         **{f"control.stages[mixed].{k}": _WHY_CONTROL_FIT for k in ("train.steps", "train.weight_decay", "path_fraction")},
         "control.model.emb_init_std": "frozen at N(0, 1), not the release's N(0, 0.02): unit-scale random "
                                       "vectors are nearly orthogonal and well separated, so the control can fit "
                                       "its training paths (it must, for its held-out failure to mean anything)"},
)
# "Mamba too": the pure-torch Mamba with the phase diagram's recipe at d = 200 arms; about 1.5 min on
# 2 cores (the scan is torch.compiled); a d = 500 run of the full recipe would take about 10 min.
# The block as the release builds it: Mamba(LayerNorm(x)) with no residual connection and no final
# LayerNorm, every Linear in a block N(0, 0.02) with zero biases (dt = softplus(0)). Measured
# (benchmarks/mamba_hypotheses.py, data/mamba_hypotheses.json): with the reference-style block
# held-out full path was 0.10; with the release's block 0.98 on seeds 0, 1 and 2.
_MAMBA_RELEASE = dict(residual=False, final_norm=False, release_init=True)
_MAMBA_CPU_STAGES = (_EDGE_STAGE_CPU_COARSE, _SCALING_BASE_CPU.stages[1])
_register(
    "mamba_too",
    cpu=MambaToo(run=replace(_SCALING_BASE_CPU, d=200, model=Mamba(n_layer=2, d_model=128, **_MAMBA_RELEASE),
                             stages=_MAMBA_CPU_STAGES),
                 transformer=replace(_SCALING_BASE_CPU, d=200)),
    paper=MambaToo(run=replace(_PATHSTAR_PAPER, model=Mamba(n_layer=12, d_model=384, **_MAMBA_RELEASE)),
                   transformer=_PATHSTAR_PAPER),
    release=MambaToo(run=replace(_PATHSTAR_PAPER, model=Mamba(n_layer=12, d_model=384, **_MAMBA_RELEASE)),
                     transformer=_PATHSTAR_PAPER),
    why={**{f"{p}.{k}": v for p in ("run", "transformer") for k, v in _WHY_PATHSTAR.items()},
         "run.d": "budget: a Mamba step costs ~3x a GPT step on 2 cores; 200 arms run in 1.5 min",
         "transformer.d": "the same cell as the Mamba run",
         "run.model.n_layer": "budget: 2 blocks of width 128; the release uses 12 x 384",
         "run.model.d_model": "budget (see n_layer)"},
)

# Tiny graphs: already the paper's size, so both presets have the same graphs; `paper` trains longer.
def _assoc_vs_geo(associative_steps: int, node2vec_steps: int, eval_every: int) -> AssociativeVsGeometric:
    return AssociativeVsGeometric(
        cycle_n=15, grid_rows=4, grid_cols=4,
        associative=EdgeRecipe(ASSOCIATIVE_CONTROL, TrainConfig(steps=associative_steps, lr=1e-2)),
        geometric=EdgeRecipe(_NODE2VEC, TrainConfig(steps=node2vec_steps, lr=1.0, **_GD)), eval_every=eval_every)


_register(
    "associative_vs_geometric",
    cpu=_assoc_vs_geo(300, 1500, eval_every=25),
    paper=_assoc_vs_geo(2000, 10000, eval_every=100),
    release=AssociativeVsGeometric(
        cycle_n=15, grid_rows=4, grid_cols=4,
        associative=_RELEASE_ASSOCIATIVE,
        geometric=_RELEASE_NODE2VEC, eval_every=1),
    why={"associative.model.init_std": "frozen E at 1/sqrt(width): unit-norm rows, so the lookup in W is "
                                       "well conditioned and fits in 300 steps",
         "associative.model.w_init_std": "W starts at 0: the lookup holds nothing before training",
         "associative.train.steps": "budget: the wide control memorises every edge within 300 steps",
         "associative.train.schedule": "nanoGPT's cosine decay (the release: constant)",
         "associative.train.betas": "nanoGPT's (0.9, 0.95)", "associative.train.grad_clip": "nanoGPT's 1.0",
         "associative.train.precision": "fp32: the control's recall is exact either way",
         "geometric.model.init_std": "small init: the regime the spectral-bias chapter's linearisation explains; "
                                     "the release's N(0, 1) start is shown in 'Spectral bias'",
         "geometric.model.loss": "the mean over edges (the release: summed over source nodes; both are shown in "
                                 "'Spectral bias')",
         "geometric.train.lr": "full-batch GD at lr 1.0 on the mean loss (the release: lr 0.01 on a loss summed "
                               "over nodes, i.e. ~15x larger steps)",
         "geometric.train.steps": "budget: recall and geometry are complete by step 1,500"},
)
# The tiny Transformer's cpu recipe: the release's settings and its longest schedule (2,500 full-batch
# steps; at 1,000 the 2-hop structure of the grid is not complete on every seed), in fp32.
_TINY_CPU = EdgeRecipe(TINY_TRANSFORMER, TrainConfig(steps=2500, precision="fp32", **_TINY_TRANSFORMER_TRAIN))


def _why_tiny_cpu(prefix: str) -> dict[str, str]:
    return {f"{prefix}.train.precision": "fp32: bf16 autocast gives the same peak, final level and profile here (5 "
                                         "seeds, data/tiny_transformer.json) and is slow on CPUs without native bf16"}


_register(
    "geometry_from_local_supervision",
    cpu=GeometryFromLocalSupervision(recipe=_TINY_CPU, seeds=3, eval_every=5, k=5),
    paper=GeometryFromLocalSupervision(recipe=_RELEASE_TINY, seeds=5, eval_every=5, k=5),
    release=GeometryFromLocalSupervision(recipe=_RELEASE_TINY, seeds=1, eval_every=1, k=5),
    why=_why_tiny_cpu("recipe"),
)
_WIDE_TRANSFORMER = GPT(n_layer=1, n_head=1, n_embd=64)
_register(
    "unclear_why",
    cpu=UnclearWhy(recipe=EdgeRecipe(_WIDE_TRANSFORMER, TrainConfig(steps=600, **_TINY_TRAIN)), seeds=2, k=5),
    paper=UnclearWhy(recipe=EdgeRecipe(_WIDE_TRANSFORMER, TrainConfig(steps=3000, **_TINY_TRAIN)), seeds=5, k=5),
    release=UnclearWhy(recipe=EdgeRecipe(replace(_WIDE_TRANSFORMER, **_GPT_RELEASE), _RELEASE_TINY_TRAIN), seeds=1,
                       k=5),
    why={"recipe.model.pos_init_std": "nanoGPT's small positional init (the release's N(0, 1) is an init-order quirk)",
         "recipe.model.scaled_residual_init": "GPT-2's scaled residual init (the release's never fires)",
         "recipe.train.steps": "budget: recall is 100% well before step 600",
         "recipe.train.betas": "nanoGPT's (0.9, 0.95)", "recipe.train.grad_clip": "nanoGPT's 1.0",
         "recipe.train.precision": "fp32 (the release: bf16 autocast on its GPU)"},
)
_N2V_RECIPE_CPU = EdgeRecipe(_NODE2VEC, TrainConfig(steps=1500, lr=1.0, **_GD))
_register(
    "spectral_bias",
    cpu=SpectralBias(recipe=_N2V_RECIPE_CPU, large=LargeGraph(rows=20, cols=20, lr=40.0, steps=1500, k=10),
                     linearisation=Linearisation(init_std=1e-4, lr=1.0, steps=40), release_start=_RELEASE_NODE2VEC),
    paper=SpectralBias(recipe=EdgeRecipe(_NODE2VEC, TrainConfig(steps=10000, lr=1.0, **_GD)),
                       large=LargeGraph(rows=30, cols=30, lr=90.0, steps=5000, k=10),
                       linearisation=Linearisation(init_std=1e-4, lr=1.0, steps=40), release_start=_RELEASE_NODE2VEC),
    release=SpectralBias(recipe=_RELEASE_NODE2VEC,
                         large=LargeGraph(rows=30, cols=30, lr=90.0, steps=5000, k=10),
                         linearisation=Linearisation(init_std=1e-4, lr=1.0, steps=40), release_start=_RELEASE_NODE2VEC),
    why={"recipe.model.init_std": "small init: the regime the chapter's linearisation explains; the release's "
                                  "N(0, 1) start runs beside it ('From the release's start')",
         "recipe.model.loss": "the mean over edges (the release: summed over source nodes; see 'From the release's "
                              "start')",
         "recipe.train.lr": "lr 1.0 on the mean loss (the release: 0.01 on a loss summed over nodes)",
         "recipe.train.steps": "budget: the profile is settled by step 1,500",
         "large.rows": "budget: a 20 x 20 grid", "large.cols": "budget: a 20 x 20 grid",
         "large.lr": "scaled with the number of nodes (mean loss)", "large.steps": "budget"},
)
_register(
    "linear_net",
    cpu=LinearNetChapter(n=15, recipe=_RELEASE_LINEAR, control=_RELEASE_ASSOCIATIVE, seeds=3),
    paper=LinearNetChapter(n=15, recipe=_RELEASE_LINEAR, control=_RELEASE_ASSOCIATIVE, seeds=5),
    release=LinearNetChapter(n=15, recipe=_RELEASE_LINEAR, control=_RELEASE_ASSOCIATIVE, seeds=1),
    why={},
)
_register(
    "headroom",
    cpu=Headroom(transformer=_TINY_CPU, node2vec=_N2V_RECIPE_CPU, seeds=2, k=2),
    paper=Headroom(transformer=_RELEASE_TINY,
                   node2vec=EdgeRecipe(_NODE2VEC, TrainConfig(steps=10000, lr=1.0, **_GD)), seeds=5, k=2),
    release=Headroom(transformer=_RELEASE_TINY, node2vec=_RELEASE_NODE2VEC, seeds=1, k=2),
    why={**_why_tiny_cpu("transformer"),
         "node2vec.model.init_std": "small init, as 'Spectral bias'",
         "node2vec.model.loss": "the mean over edges, as 'Spectral bias' (which also runs the release's summed loss)",
         "node2vec.train.lr": "lr 1.0 on the mean loss (the release: 0.01 on a loss summed over nodes)",
         "node2vec.train.steps": "budget"},
)
# Knobs on the wide linear net (cycle of 15), as the release runs them: E and W N(0, 0.02) by
# default; the "non-geometric" init makes only the embedding E unit-normal (W stays N(0, 0.02));
# AdamW betas (0.9, 0.999), no gradient clipping, constant lr unless stated, 10,000 full-batch
# epochs, bf16 autocast (the release trains under it on a GPU). Measured here (3 seeds): in fp32
# the large-lr knob is geometric on 1 of 3 seeds, under bf16 autocast on 4 of 4; at 2,000 and at
# 5,000 steps neither weight decay nor dropout has acted yet, so the release's 10,000 stay. The cpu
# preset runs 5 of the 6 on 2 seeds (10 x 10,000 steps of a 512 x 512 W: ~1 min on 2 cores, one
# process per core); over seeds 0-6 (data/knobs_seeds.json) every knob but the large lr is on the same side of the
# lookup band on every seed, so 2 seeds decide them.
_LINEAR_SMALL = Linear(width=512, init_std=0.02)
_NON_GEOMETRIC = replace(_LINEAR_SMALL, init_std=1.0, w_init_std=0.02)


def _knob(model: Linear, lr: float, **train) -> EdgeRecipe:
    return EdgeRecipe(model, TrainConfig(steps=10_000, lr=lr, schedule=train.pop("schedule", "constant"),
                                         betas=(0.9, 0.999), grad_clip=None, precision="bf16", **train))


_WEAKENED = "default small init, lr 1e-4 (the paper: weakened geometry)"
_KNOBS = {
    "non-geometric init, lr 1e-4": _knob(_NON_GEOMETRIC, 1e-4),
    "non-geometric init, large lr 0.1 (cosine to 0.01)": _knob(_NON_GEOMETRIC, 0.1, schedule="cosine",
                                                               final_lr_ratio=0.1),
    "non-geometric init, lr 1e-4, weight decay 10": _knob(_NON_GEOMETRIC, 1e-4, weight_decay=10.0),
    "non-geometric init, lr 1e-3, dropout 0.4 after W": _knob(replace(_NON_GEOMETRIC, dropout=0.4,
                                                                      dropout_after_w=True), 1e-3),
    "default small init, lr 1e-2": _knob(_LINEAR_SMALL, 1e-2),
    _WEAKENED: _knob(_LINEAR_SMALL, 1e-4),
}
_register("knobs", cpu=Knobs(n=15, seeds=2, variants={k: v for k, v in _KNOBS.items() if k != _WEAKENED}),
          paper=Knobs(n=15, seeds=5, variants=_KNOBS),
          release=Knobs(n=15, seeds=1, variants=_KNOBS),
          why={"variants": "budget (one minute on 2 cores): the last knob, the default small init at lr 1e-4 (the "
                           "paper's 'weakened geometry', which no claim checks), is shown from data/knobs_seeds.json "
                           "(seeds 0-6) instead of run live"})

# ----------------------------------------------------------------------------- beyond the paper
# Phase diagram: one axis at a time around a centre cell; the edge stage evaluates every 20 steps
# so that the moment the geometry probe switches on is visible. The model-size claim compares two
# cells of 25 held-out leaves each: one seed moved it by 0.16 between two CPUs, so those two cells
# run 3 seeds and the claim is their mean gain.
_register(
    "scaling",
    cpu=Scaling(base=_SCALING_BASE_CPU, arms=(25, 50, 100, 200), lengths=(4, 5, 6, 7),
                sizes=((1, 128), (2, 64), (2, 128), (2, 256)), seeds=1, size_seeds=3),
    # For a GPU, around the paper's d = 10^4, l = 6, 12 x 384 (not run on the CPU machine).
    paper=Scaling(base=_PATHSTAR_PAPER, arms=(500, 2000, 5000, 10_000), lengths=(4, 6, 8, 10),
                  sizes=((4, 256), (8, 384), (12, 384), (12, 768)), seeds=3, size_seeds=3),
    release=Scaling(base=_PATHSTAR_PAPER, arms=(500, 2000, 5000, 10_000), lengths=(4, 6, 8, 10),
                    sizes=((4, 256), (8, 384), (12, 384), (12, 768)), seeds=3, size_seeds=3),
    why={**{f"base.{k}": v for k, v in _WHY_PATHSTAR.items()},
         "base.d": "the centre cell of a CPU phase diagram (100 arms)",
         "arms": "CPU scale", "lengths": "CPU scale", "sizes": "CPU scale",
         "base.stages[mixed].train.steps": "budget: 400 mixed steps per cell"},
)
# Headroom as an intervention: where the plain Transformer's generalisation is fragile (d = 50 arms:
# held-out accuracy rises, then collapses into a lookup), does more geometric memory help? The
# Node2Vec start is the "Spectral bias" chapter's recipe (the same value: a change there recomputes
# these runs).
_INTERVENTIONS_BASE_CPU = replace(_SCALING_BASE_CPU, d=50, stages=(_EDGE_STAGE_CPU_COARSE, _SCALING_BASE_CPU.stages[1]))


def _interventions(base: PathStarRun, node2vec: EdgeRecipe) -> dict[str, PathStarRun]:
    return {"plain": base, "self-edges": replace(base, self_edges=True),
            "Node2Vec-initialised embeddings": replace(base, emb_init=node2vec),
            "auxiliary Node2Vec loss": replace(base, aux_node2vec=1.0),
            "small embedding init (std 0.002)": replace(base, model=replace(base.model, emb_init_std=0.002))}


_INTERVENTIONS_PAPER = _interventions(replace(_PATHSTAR_PAPER, d=1000),
                                      EdgeRecipe(_NODE2VEC, TrainConfig(steps=10000, lr=1.0, **_GD)))
_register(
    "interventions",
    cpu=Interventions(variants=_interventions(_INTERVENTIONS_BASE_CPU, _N2V_RECIPE_CPU), seeds=3),
    paper=Interventions(variants=_INTERVENTIONS_PAPER, seeds=5),
    release=Interventions(variants=_INTERVENTIONS_PAPER, seeds=5),
    why={**{f"variants[{v}].{k}": text for v in _INTERVENTIONS_PAPER for k, text in _WHY_PATHSTAR.items()},
         **{f"variants[{v}].d": "the fragile regime at CPU scale: 50 arms" for v in _INTERVENTIONS_PAPER},
         **{f"variants[{v}].stages[mixed].train.steps": "budget: 400 mixed steps" for v in _INTERVENTIONS_PAPER},
         "variants[Node2Vec-initialised embeddings].emb_init.train.steps": "the 'Spectral bias' chapter's cpu "
                                                                           "recipe (1,500 steps)"},
)


# Departures no preset value holds: how an example is formatted or a model is built, the same in
# every preset of the chapter. (setting, this book, the release, why); shown in its setup table.
_NET_FORMAT = ("net", "E_u W E^T over the nodes", "E (W E_u + b), E also over the special tokens",
               "no bias and no special-token rows, so that the geometric margin reads W alone (not re-run with "
               "the release's bias)")
FORMATS: dict[str, list[tuple[str, str, str, str]]] = {
    "hardest_token": [("hardest-token example", "[PATH] leaf [PAUSE] root -> n1 (the root given)",
                       "[PATH] leaf [PAUSE] -> n1",
                       "measured in the release's format (data/hardest_token_release_format.json): held-out n1 0.86-1.00 "
                       "on seeds 0-4 in bf16 but 0.38 in fp32 (seed 0; 0.40 at the switch, then displaced by a lookup), "
                       "against 0.93 in fp32 in the book's; the root is the same for every arm, so it says nothing about "
                       "which n1")],
    "geometry_explains": [("control: positional embeddings", "trained", "frozen with the token embeddings",
                           "the control needs only token embeddings that carry no geometry; positions are shared by "
                           "all arms (not re-measured with them frozen)")],
    "linear_net": [_NET_FORMAT],
    "knobs": [_NET_FORMAT],
}


# ----------------------------------------------------------------------------- access
def get_preset(chapter: str, name: str = "cpu"):
    """Preset ``name`` (``"cpu"`` or ``"paper"``) of ``chapter`` (a notebook's name); a copy, so a
    chapter cannot change another's values. Make variants with ``dataclasses.replace``."""
    if chapter not in PRESETS:
        raise KeyError(f"unknown chapter {chapter!r}; chapters with presets: {sorted(PRESETS)}")
    if name not in PRESETS[chapter]:
        raise ValueError(f"unknown preset {name!r} for {chapter!r}; choose from {sorted(PRESETS[chapter])}")
    return copy.deepcopy(PRESETS[chapter][name])


def preset_names() -> list[str]:
    """The preset names every chapter offers (what a chapter's ``preset`` parameter may be)."""
    names = None
    for presets in PRESETS.values():
        names = set(presets) if names is None else names & set(presets)
    return sorted(names or ())


# ----------------------------------------------------------------------------- provenance
_SKIP = {"eval_every", "seed", "batch_size", "seeds", "size_seeds", "k", "stop_at", "stop_patience"}
# bookkeeping, not recipe: how often a run is evaluated, how many seeds the book runs (the release
# runs one), which metric parameter a chapter reports; a stage's eval cadence and a run's stop rule


def _fmt(value) -> str:
    if isinstance(value, Stage):
        return f"{value.data} ({value.train.steps:,} steps)"
    if isinstance(value, tuple) and value and all(isinstance(v, Stage) for v in value):
        return " + ".join(_fmt(v) for v in value)
    if is_dataclass(value):
        return type(value).__name__
    if isinstance(value, dict):
        return f"{len(value)} entries"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return "—" if value is None else str(value)


def departures(ours, release, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every setting where ``ours`` differs from ``release``: ``[(path, ours, release), ...]``.
    Stages are matched by their data (``stages[mixed]``); a different list of stages is one row
    (``stages``) plus the matched stages' own differences."""
    if is_dataclass(ours) and is_dataclass(release) and type(ours) is type(release):
        rows = []
        for f in fields(ours):
            if f.name in _SKIP:
                continue
            rows += departures(getattr(ours, f.name), getattr(release, f.name), f"{path}.{f.name}".lstrip("."))
        return rows
    if isinstance(ours, tuple) and ours and all(isinstance(s, Stage) for s in ours + tuple(release or ())):
        rows = [] if [s.data for s in ours] == [s.data for s in release] and len(ours) == len(release) else \
            [(path, ours, release)]
        theirs = {s.data: s for s in release}
        for s in ours:
            if s.data in theirs:
                rows += departures(s, theirs[s.data], f"{path}[{s.data}]")
        return rows
    if isinstance(ours, dict) and isinstance(release, dict) and set(ours) == set(release):
        return [r for k in ours for r in departures(ours[k], release[k], f"{path}[{k}]")]
    if _same(ours, release):
        return []
    return [(path, ours, release)]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, numbers.Real) and isinstance(b, numbers.Real) and float(a) == float(b)
    return a == b


def is_release(chapter: str, name: str = "paper") -> bool:
    """Whether preset ``name`` of ``chapter`` is the release's recipe: every value as the release's
    (bookkeeping such as evaluation cadence and seeds aside)."""
    return not departures(PRESETS[chapter][name], RELEASE[chapter])


# Words of a setting's path that say which part of the setup it belongs to (the one-line summary).
_MODEL_WORDS = {"model", "net", "n_layer", "n", "layer", "head", "embd", "width", "dim", "init", "std", "pos",
                "residual", "scaled", "dropout", "tied", "freeze", "embeddings", "loss"}
_TRAINING_WORDS = {"stages", "train", "lr", "steps", "batch", "fraction", "weight", "decay", "betas", "warmup",
                   "schedule", "precision", "every", "optimizer", "clip", "grad", "ratio", "epochs"}


class SetupTable:
    """The setup-vs-release table of a chapter's preset (shown as a table in a notebook)."""

    def __init__(self, chapter: str, name: str, rows: list[tuple[str, str, str, str]]):
        self.chapter, self.name, self.rows = chapter, name, rows

    def _repr_markdown_(self) -> str:
        if not self.rows:
            return (f"**Setup:** preset `{self.name}` is the authors' release recipe: every setting as the release "
                    "(evaluation cadence and seeds aside).")
        differ = f"{len(self.rows)} settings differ" if len(self.rows) > 1 else "1 setting differs"
        lines = [f"**Setup vs the authors' release** (preset `{self.name}`; {differ}; generated from `geomlib.presets`)", "",
                 "| setting | this book | the release | why |", "|---|---|---|---|"]
        lines += [f"| `{p}` | {o} | {r} | {w} |" for p, o, r, w in self.rows]
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: how many settings depart, and in which parts of the setup (with counts)."""
        if not self.rows:
            return "every setting as the release"
        counts: dict[str, int] = {}
        for path, *_ in self.rows:
            words = set(re.findall(r"[a-z0-9]+", path.lower().split(":")[-1]))
            part = "model" if words & _MODEL_WORDS else "training" if words & _TRAINING_WORDS else "task"
            counts[part] = counts.get(part, 0) + 1
        differ = f"{len(self.rows)} settings differ" if len(self.rows) > 1 else "1 setting differs"
        budget = sum(w.startswith("budget") for *_, w in self.rows)
        return (f"{differ} ({', '.join(f'{k} {n}' for k, n in counts.items())})"
                + (f", {budget} of them for the CPU budget" if budget else ""))

    def _repr_html_(self) -> str:
        """The book's rendering: the one-line summary, and the full table folded under it (a long
        table must not push the chapter's argument down), fitted to the page's width."""
        e = html.escape
        if not self.rows:
            return f"<p>{e(self._repr_markdown_()).replace('**Setup:**', '<strong>Setup:</strong>')}</p>"
        def text(value: str) -> str:  # escaped, with `code` spans as code
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", e(value))
        body = "".join(f"<tr><td><code>{e(p)}</code></td><td>{text(o)}</td><td>{text(r)}</td><td>{text(w)}</td></tr>"
                       for p, o, r, w in self.rows)
        return (f'<div class="geomlib-setup"><p><strong>Setup vs the authors\' release</strong> (preset '
                f"<code>{e(self.name)}</code>, generated from <code>geomlib.presets</code>): {e(self.summary())}.</p>"
                f"<details><summary>Every departing setting: this book's value, the release's, and why</summary>"
                '<table style="width:100%;table-layout:fixed;font-size:0.85em;overflow-wrap:anywhere">'
                '<colgroup><col style="width:24%"><col style="width:15%"><col style="width:15%">'
                '<col style="width:46%"></colgroup>'
                "<thead><tr><th>setting</th><th>this book</th><th>the release</th><th>why</th></tr></thead>"
                f"<tbody>{body}</tbody></table></details></div>")

    def __str__(self) -> str:
        return self._repr_markdown_()

    def __repr__(self) -> str:
        return self._repr_markdown_()


def setup_table(chapter: str, name: str = "cpu") -> SetupTable:
    """Where preset ``name`` of ``chapter`` departs from the authors' release, one row per setting:
    the value here, the release's, and why (from ``WHY``; a departure without a reason is an
    error, so a new setting cannot enter the book unexplained)."""
    if chapter not in PRESETS:
        raise KeyError(f"unknown chapter {chapter!r}; chapters with presets: {sorted(PRESETS)}")
    groups: dict[tuple, list[str]] = {}
    for path, ours, theirs in departures(PRESETS[chapter][name], RELEASE[chapter]):
        why = WHY[chapter].get(path)
        if why is None:
            raise KeyError(f"{chapter}: preset {name!r} departs from the release at {path!r} "
                           f"({_fmt(ours)} vs {_fmt(theirs)}) and geomlib.presets.WHY gives no reason")
        head, tail = _split_head(path)
        key = (tail, _fmt(ours), _fmt(theirs), why) if tail else (path, _fmt(ours), _fmt(theirs), why)
        groups.setdefault(key, []).append(head if tail else "")
    rows = []
    for (tail, ours, theirs, why), heads in groups.items():
        rows.append((_join_heads(heads, tail), ours, theirs, why))
    return SetupTable(chapter, name, rows + FORMATS.get(chapter, []))


def _split_head(path: str) -> tuple[str, str]:
    """``variants[std 0.002].model.d`` -> ``("variants[std 0.002]", "model.d")``: the first
    component, where a dot inside brackets (a dict key) does not count."""
    depth = 0
    for i, c in enumerate(path):
        depth += (c == "[") - (c == "]")
        if c == "." and depth == 0:
            return path[:i], path[i + 1:]
    return path, ""


def _join_heads(heads: list[str], tail: str) -> str:
    """One row for a departure shared by several parts of a preset: ``run, control: lr`` or, for
    several entries of one dict, ``variants[*]: lr``."""
    if heads == [""]:
        return tail
    if len(heads) == 1:
        return f"{heads[0]}.{tail}"
    prefixes = {h.split("[")[0] for h in heads}
    shown = f"{prefixes.pop()}[*]" if len(prefixes) == 1 and all("[" in h for h in heads) else ", ".join(heads)
    return f"{shown}: {tail}"

