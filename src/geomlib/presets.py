"""Named presets: ``cpu`` (the default, what CI runs and the book shows) and ``paper`` (the
paper's scale, for a GPU). A chapter asks for its experiment's preset by name."""
from __future__ import annotations

import copy

__all__ = ["PRESETS", "get_preset"]

PRESETS: dict[str, dict[str, dict]] = {}


def register(experiment: str, **presets: dict) -> None:
    PRESETS[experiment] = presets


def get_preset(experiment: str, name: str = "cpu", **overrides) -> dict:
    """A copy of preset ``name`` of ``experiment``, with top-level keys replaced by ``overrides``."""
    if experiment not in PRESETS:
        raise KeyError(f"unknown experiment {experiment!r}; known: {sorted(PRESETS)}")
    if name not in PRESETS[experiment]:
        raise ValueError(f"unknown preset {name!r} for {experiment!r}; choose from {sorted(PRESETS[experiment])}")
    cfg = copy.deepcopy(PRESETS[experiment][name])
    bad = set(overrides) - set(cfg)
    if bad:
        raise ValueError(f"unknown parameter(s) {sorted(bad)} for {experiment!r}; known: {sorted(cfg)}")
    cfg.update(overrides)
    return cfg


# Chapter "Associative vs geometric memory": the tiny graphs are already the paper's scale, so
# both presets are the same size; `paper` trains longer.
register(
    "associative_vs_geometric",
    cpu=dict(cycle_n=15, grid_rows=4, grid_cols=4,
             node2vec=dict(dim=100, init_std=0.02, lr=1.0, steps=1500),
             associative=dict(width=512, lr=1e-2, steps=300),
             eval_every=25),
    paper=dict(cycle_n=15, grid_rows=4, grid_cols=4,
               node2vec=dict(dim=100, init_std=0.02, lr=1.0, steps=10000),
               associative=dict(width=512, lr=1e-2, steps=2000),
               eval_every=100),
)


# The mechanism studies' 1-layer, 1-head, width-32 Transformer on the tiny graphs: AdamW lr 1e-2
# cosine to 1e-3, no weight decay, no dropout, full batch. These graphs are the paper's own size.
_TINY_GPT = dict(kind="gpt", n_layer=1, n_head=1, n_embd=32)
_TINY_TRAIN = dict(lr=1e-2, final_lr_ratio=0.1, weight_decay=0.0)
register(
    "local_supervision",
    cpu=dict(model=_TINY_GPT, train=dict(_TINY_TRAIN, steps=600), seeds=3, eval_every=5, k=5),
    paper=dict(model=_TINY_GPT, train=dict(_TINY_TRAIN, steps=3000), seeds=5, eval_every=5, k=5),
)
