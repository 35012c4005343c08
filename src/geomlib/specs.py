"""The run specs: what a model is and how a run trains it, as small typed frozen dataclasses.

A spec holds literal values; a variant is made with ``dataclasses.replace``, which checks every
value's type and range::

    from dataclasses import replace
    from geomlib.specs import PathStarRun

    run = replace(run, d=200)                                   # a PathStarRun with 200 arms
    replace(run, d="200")                                       # TypeError: d must be int

**Reasons beside values.** Every spec takes a keyword ``why``: ``{setting: reason}`` for the
settings in which it departs from the authors' release, written where the value is written::

    GPT(n_layer=2, n_head=4, n_embd=128, why={"n_layer": "budget: ..."})

A setting inside a part is named from the spec that holds the reason (``"train.lr"`` in a
:class:`Stage`). ``why`` is not a value: it is left out of :func:`plain` (so of every cache key),
of comparisons and of the models built; ``replace`` carries it over, so a variant that changes a
value gives that value's new reason with it (``why=spec.why | {...}``).

**One spec per model.** :class:`GPT`, :class:`Mamba`, :class:`Linear` and :class:`Node2Vec` are
the whole of a model's settings: :func:`geomlib.models.build_model` builds the network from the
spec and the task's sizes, and no second config class repeats them. A setting that no preset has
ever changed from its default (dropout, biases, tied head, base init scale; Mamba's state size,
convolution width, expansion) is *keyed when set*: :func:`plain` leaves it out while it holds its
default, so that stating it here kept every cache key and every shipped run's identity.
"""
from __future__ import annotations

import math
import numbers
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Union

from .evaluate import DECODES
from .precision import PRECISIONS
from .validate import check_int, check_seed

__all__ = ["Spec", "plain", "values", "GPT", "Mamba", "Linear", "Node2Vec", "Model", "keyed_when_set", "EdgeRecipe", "Stage",
           "PathStarRun", "InContextRun", "TrainConfig"]



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


@dataclass(frozen=True)
class Spec:
    """A frozen dataclass whose fields are checked against their annotations on construction
    (and so on every ``dataclasses.replace``): a wrong type is a TypeError naming the field."""

    #: ``{setting: reason}``: why this spec departs from the authors' release at a setting (not a value).
    why: dict[str, str] = field(default_factory=dict, kw_only=True, compare=False, repr=False)

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


def values(obj) -> list:
    """The fields of a spec that are values (every field but ``why``)."""
    return [f for f in fields(obj) if f.name != "why"]


def keyed_when_set(default):
    """A spec field that :func:`plain` leaves out while it holds ``default``."""
    return field(default=default, metadata={"plain": "when set"})


def _in_plain(f, value) -> bool:
    return not (f.metadata.get("plain") == "when set" and value == f.default)


def plain(obj):
    """A preset (or any part of one) as JSON-able data: what cache keys and shipped results hold.
    A dataclass becomes its values (not its reasons; a field keyed when set only when set), with the
    model kind for a model."""
    if is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: plain(getattr(obj, f.name)) for f in values(obj) if _in_plain(f, getattr(obj, f.name))}
        kind = getattr(type(obj), "kind", None)
        return {"kind": kind, **out} if isinstance(kind, str) else out
    if isinstance(obj, (tuple, list)):
        return [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------- models
@dataclass(frozen=True)
class GPT(Spec):
    """The nanoGPT-style decoder (:class:`geomlib.models.gpt.GPT`): learned positions,
    pre-LayerNorm blocks, a tied head."""
    n_layer: int
    n_head: int
    n_embd: int
    emb_init_std: float | None = None  # token embeddings (None: init_std)
    pos_init_std: float | None = None  # positional embeddings (None: init_std; the release: 1.0)
    scaled_residual_init: bool = True  # GPT-2's init_std / sqrt(2 n_layer) on residual projections
    # (the release's version of it never fires: False is the release)
    freeze_embeddings: bool = False  # the associative control: token embeddings stay random
    init_std: float = keyed_when_set(0.02)  # every other Linear and Embedding: N(0, init_std)
    dropout: float = keyed_when_set(0.0)
    bias: bool = keyed_when_set(True)  # biases in the Linears and LayerNorms
    tied: bool = keyed_when_set(True)  # the output head is the token embedding table
    kind: ClassVar[str] = "gpt"
    _bounds = {"n_layer": (1, None), "n_head": (1, None), "n_embd": (1, None), "emb_init_std": (0.0, None),
               "pos_init_std": (0.0, None), "init_std": (0.0, None), "dropout": (0.0, 0.99)}

    def __post_init__(self):
        super().__post_init__()
        if self.n_embd % self.n_head:
            raise ValueError(f"GPT.n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


@dataclass(frozen=True)
class Mamba(Spec):
    """Selective state-space blocks (:class:`geomlib.models.mamba.Mamba`), tied embeddings, no
    positions; the release's block variants are options."""
    n_layer: int
    d_model: int
    residual: bool = True  # x + mixer(norm(x)); the release: mixer(norm(x)), no residual connection
    final_norm: bool = True  # a LayerNorm before the head; the release has none
    release_init: bool = False  # the release: every Linear in a block N(0, init_std), zero biases (dt = softplus(0))
    freeze_embeddings: bool = False  # the associative control: token embeddings stay random
    no_decay_ssm: bool = keyed_when_set(False)  # no weight decay on A_log, D, the conv and biases (reference Mamba)
    d_state: int = keyed_when_set(16)
    d_conv: int = keyed_when_set(4)
    expand: int = keyed_when_set(2)
    init_std: float = keyed_when_set(0.02)  # token embeddings and head
    tied: bool = keyed_when_set(True)
    kind: ClassVar[str] = "mamba"
    _bounds = {"n_layer": (1, None), "d_model": (1, None), "d_state": (1, None), "d_conv": (1, None),
               "expand": (1, None), "init_std": (0.0, None)}


@dataclass(frozen=True)
class Linear(Spec):
    """The linear net ``logits = E W E^T`` (:class:`geomlib.models.shallow.LinearNet`)."""
    width: int
    init_std: float = 0.02  # E
    w_init_std: float | None = None  # W (None: init_std)
    freeze_embeddings: bool = False  # the associative control
    dropout: float = 0.0
    dropout_after_w: bool = False  # the release's dropout position
    kind: ClassVar[str] = "linear"
    _bounds = {"width": (1, None), "init_std": (0.0, None), "w_init_std": (0.0, None), "dropout": (0.0, 0.99)}


@dataclass(frozen=True)
class Node2Vec(Spec):
    """1-hop Node2Vec, full softmax, tied (:class:`geomlib.models.shallow.Node2Vec`)."""
    dim: int = 100
    init_std: float = 0.02
    loss: str = "mean"  # "node_sum": the release's sum over source nodes of the mean over neighbours
    kind: ClassVar[str] = "node2vec"
    _bounds = {"dim": (1, None), "init_std": (0.0, None)}


Model = Union[GPT, Mamba, Linear, Node2Vec]


# ----------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """How a run trains (one stage): the optimiser, its schedule, the precision, the batch size of
    each example stream, how often to evaluate; read by :func:`geomlib.train.train`. A plain
    (mutable) dataclass whose values are checked on construction."""
    steps: int
    lr: float = 1e-3
    schedule: str = "cosine"  # "cosine" (warmup, then cosine to lr * final_lr_ratio), "constant", or
    # "wsd" (warmup, stable at lr, then cosine to lr * final_lr_ratio over the last decay_fraction)
    warmup: int = 0
    final_lr_ratio: float = 0.1
    decay_fraction: float = 0.3
    # "adamw"; "adamw_fused" (the same update in PyTorch's fused kernel: faster on a big matrix,
    # rounding differs in the last bits); or "sgd" (plain gradient descent, no momentum)
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    decay_all: bool = False  # weight decay on every parameter (biases and norms too), as the release;
    # default: matrices only
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    precision: str = "fp32"  # "fp32", "bf16" (bf16 autocast) or "auto" (bf16 where the hardware runs it
    # natively, else fp32: see resolve_precision)
    batch_size: dict[str, int | None] | int | None = None  # per stream; None = full batch
    eval_every: int = 0  # 0: evaluate only at the start and the end
    seed: int = 0
    # a decoder's head and cross-entropy computed this many rows at a time, never the whole logits
    # tensor, and in a full-batch stream the examples that share an input computed once with all
    # their targets (the same loss and gradient up to summation order): a 50,006-token vocabulary
    head_chunk: int | None = keyed_when_set(None)
    # a decoder's token embeddings (and so its tied head) are not trained in this stage: what an
    # earlier stage built there is kept as it is
    freeze_token_embeddings: bool | None = keyed_when_set(None)

    def __post_init__(self):
        self.steps = check_int("steps", self.steps, 0)
        self.warmup = check_int("warmup", self.warmup, 0)
        self.eval_every = check_int("eval_every", self.eval_every, 0)
        self.seed = check_seed(self.seed, "seed (of a training stage)")
        if self.head_chunk is not None:
            self.head_chunk = check_int("head_chunk", self.head_chunk, 1)
        if self.freeze_token_embeddings is not None and not isinstance(self.freeze_token_embeddings, bool):
            raise TypeError(f"freeze_token_embeddings must be True, False or None, got {self.freeze_token_embeddings!r}")
        for name in ("lr", "final_lr_ratio", "decay_fraction", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.final_lr_ratio < 0:
            raise ValueError(f"final_lr_ratio must be >= 0, got {self.final_lr_ratio}")
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float))
                                           or not math.isfinite(self.grad_clip) or self.grad_clip <= 0):
            raise ValueError(f"grad_clip must be None (no clipping) or a finite number > 0, got {self.grad_clip!r}")
        if len(tuple(self.betas)) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                                  and 0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.schedule not in ("cosine", "constant", "wsd"):
            raise ValueError(f"schedule must be 'cosine', 'constant' or 'wsd', got {self.schedule!r}")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.optimizer not in ("adamw", "adamw_fused", "sgd"):
            raise ValueError(f"optimizer must be 'adamw', 'adamw_fused' or 'sgd', got {self.optimizer!r}")
        self.betas = tuple(self.betas)


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class EdgeRecipe(Spec):
    """Edge memorisation on a small graph, full batch: a model and how to train it."""
    model: Model
    train: TrainConfig


@dataclass(frozen=True)
class Stage(Spec):
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
class PathStarRun(Spec):
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
class InContextRun(Spec):
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
