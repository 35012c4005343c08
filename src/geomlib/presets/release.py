"""What the authors' release runs for each chapter, stated once, as the release's code sets it
(github.com/Shahriarnz14/Geometric_Memory: ``in_weights/`` for the path-star runs,
``tiny_graphs_notebooks/`` for the tiny graphs).

These are the objects every setup table compares a preset against. They are written here, value
by value, and not built from the book's presets: a `paper` preset that uses one of them says so
(it *is* the release's recipe), and every other preset's departures from them are listed, each
with its reason, in the chapter's setup table.
"""
from __future__ import annotations

from dataclasses import replace

from ..specs import GPT, EdgeRecipe, InContextRun, Linear, Mamba, Node2Vec, PathStarRun, Stage, TrainConfig

__all__ = ["PATHSTAR", "PATHSTAR_AT_BOOK_SCALE", "INCONTEXT", "TINY_TRANSFORMER", "TINY_TRANSFORMER_EPOCHS",
           "TINY_TRANSFORMER_BY_GRAPH", "LINEAR_NET", "LINEAR_NET_BY_GRAPH", "ASSOCIATIVE",
           "NODE2VEC", "WIDE_TRANSFORMER", "MAMBA", "knob"]

# ----------------------------------------------------------------------------- path-star (in weights)
# `mixed_full_path`: one mixed stage from scratch (no edge-only stage), edges and training paths in
# their natural proportion, AdamW lr 5e-4, betas (0.9, 0.999), weight decay 0.01 on every
# parameter, no gradient clipping, warmup 1,000 then cosine to lr/10, batch 2,048, 10,000 epochs
# (525,000 steps at d = 10^4), bf16 autocast, greedy decoding over the whole vocabulary. Its GPT:
# 12 x 384 x 8, positional embeddings N(0, 1) (created after the generic init) and a GPT-2 residual
# scaling that keys on a name no module has (so never fires).
_RELEASE_GPT = dict(pos_init_std=1.0, scaled_residual_init=False)


def _mixed(steps: int) -> Stage:
    return Stage("mixed", TrainConfig(steps=steps, lr=5e-4, warmup=1000, final_lr_ratio=0.1, weight_decay=0.01,
                                      decay_all=True, betas=(0.9, 0.999), grad_clip=None), batch=2048)


PATHSTAR = PathStarRun(d=10_000, l=6, model=GPT(n_layer=12, n_head=8, n_embd=384, **_RELEASE_GPT),
                       stages=(_mixed(525_000),), precision="bf16", eval_every=5000, decode="vocab")
# The same recipe at the book's d = 500, l = 5, 2 x 128 (21,400 steps: 10,000 epochs of this graph);
# run by tools/long_run.py (hours on 2 cores), the ablation of "Path-finding from memory".
PATHSTAR_AT_BOOK_SCALE = PathStarRun(d=500, l=5, model=GPT(n_layer=2, n_head=4, n_embd=128, **_RELEASE_GPT),
                                     stages=(_mixed(21_400),), precision="bf16", eval_every=200, decode="vocab")
# Its Mamba: Mamba(LayerNorm(x)) with no residual connection and no final LayerNorm, every Linear in
# a block N(0, 0.02) with zero biases; 12 blocks of width 384.
MAMBA = Mamba(n_layer=12, d_model=384, residual=False, final_norm=False, release_init=True)

# ----------------------------------------------------------------------------- path-star (in context)
# Bachmann & Nagarajan's in-context task: d = 5 arms, l = 5, 50 labels; a 6 x 384 x 6 GPT.
INCONTEXT = InContextRun(d=5, l=5, num_labels=50, num_train=200_000, num_test=5000,
                         model=GPT(n_layer=6, n_head=6, n_embd=384),
                         train=TrainConfig(steps=20000, lr=5e-4, warmup=500, weight_decay=0.01, batch_size=256,
                                           precision="auto"), eval_every=1000)

# ----------------------------------------------------------------------------- tiny graphs
# The 1-layer, 1-head, width-32 Transformer: positional embeddings N(0, 1), no residual scaling;
# AdamW lr 1e-2 cosine to 1e-3, betas (0.9, 0.999), no weight decay, no clipping, 2,500 full-batch
# epochs (the longest of its per-graph runs, below), bf16 autocast.
TINY_TRANSFORMER = EdgeRecipe(GPT(n_layer=1, n_head=1, n_embd=32, **_RELEASE_GPT),
                              TrainConfig(steps=2500, lr=1e-2, final_lr_ratio=0.1, weight_decay=0.0, betas=(0.9, 0.999),
                                          grad_clip=None, precision="bf16"))
# Per graph, its length and width, from the release's saved run manifests: full-batch epochs with every
# edge both ways / forward only (path-star 500 / 500, grid 500 / 1,000, cycle 700 / 700, irregular
# 2,500 / 2,000), width 32 except the forward-only irregular run (48). Keyed "<graph>, <directions>"
# by the names of geomlib.graphs.tiny_graphs.
TINY_TRANSFORMER_EPOCHS = {"path-star": (500, 500), "grid": (500, 1000), "cycle": (700, 700), "irregular": (2500, 2000)}


def _tiny_transformer(graph: str, directions: str) -> EdgeRecipe:
    steps = TINY_TRANSFORMER_EPOCHS[graph][directions == "forward"]
    width = 48 if (graph, directions) == ("irregular", "forward") else 32
    return EdgeRecipe(replace(TINY_TRANSFORMER.model, n_embd=width), replace(TINY_TRANSFORMER.train, steps=steps))


TINY_TRANSFORMER_BY_GRAPH = {f"{g}, {d}": _tiny_transformer(g, d) for g in TINY_TRANSFORMER_EPOCHS
                             for d in ("both", "forward")}
# The same recipe at width 64 ("It is unclear why": width above the number of nodes).
WIDE_TRANSFORMER = replace(TINY_TRANSFORMER, model=replace(TINY_TRANSFORMER.model, n_embd=64))
# The linear net E W E^T at width 512, E and W from N(0, 0.02); AdamW lr 1e-2 constant, betas
# (0.9, 0.999), no clipping, 10,000 full-batch epochs, bf16 autocast. Its associative control
# freezes E.
_LINEAR_TRAIN = TrainConfig(steps=10000, lr=1e-2, schedule="constant", betas=(0.9, 0.999), grad_clip=None,
                            precision="bf16")
LINEAR_NET = EdgeRecipe(Linear(width=512, init_std=0.02), _LINEAR_TRAIN)
ASSOCIATIVE = EdgeRecipe(Linear(width=512, init_std=0.02, freeze_embeddings=True), _LINEAR_TRAIN)
# Per graph, the release's linear net (its manifests): 32 wide for 500 epochs on the path-star and the
# grid, 16 wide for 1,000 at lr 0.005 on the irregular graph, the 512-wide net above on the cycle.
LINEAR_NET_BY_GRAPH = {
    "path-star": EdgeRecipe(Linear(width=32, init_std=0.02), replace(_LINEAR_TRAIN, steps=500)),
    "grid": EdgeRecipe(Linear(width=32, init_std=0.02), replace(_LINEAR_TRAIN, steps=500)),
    "cycle": LINEAR_NET,
    "irregular": EdgeRecipe(Linear(width=16, init_std=0.02), replace(_LINEAR_TRAIN, steps=1000, lr=0.005)),
}
# 1-hop Node2Vec from N(0, 1), plain full-batch gradient descent at lr 0.01 on a loss summed over
# source nodes, 10,000 epochs.
NODE2VEC = EdgeRecipe(Node2Vec(dim=100, init_std=1.0, loss="node_sum"),
                      TrainConfig(steps=10000, lr=0.01, optimizer="sgd", schedule="constant", grad_clip=None,
                                  weight_decay=0.0))


def knob(model: Linear, lr: float, **train) -> EdgeRecipe:
    """One of the release's knobs on the linear net: its training (10,000 full-batch epochs, AdamW
    betas (0.9, 0.999), no clipping, bf16 autocast), constant lr unless a schedule is given."""
    return EdgeRecipe(model, replace(_LINEAR_TRAIN, lr=lr, **train))
