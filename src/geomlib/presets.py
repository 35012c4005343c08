"""Named presets: ``cpu`` (the default, what CI runs and the book shows) and ``paper`` (the
paper's scale, for a GPU). A chapter asks for its experiment's preset by name."""
from __future__ import annotations

import copy

from .validate import check_like

__all__ = ["PRESETS", "get_preset", "derive", "preset_names"]

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
    for key, value in overrides.items():
        check_like(f"{experiment}.{key}", value, cfg[key])
    cfg.update(overrides)
    return cfg


def preset_names() -> list[str]:
    """The preset names every experiment offers (what a chapter's ``preset`` parameter may be)."""
    names = None
    for presets in PRESETS.values():
        names = set(presets) if names is None else names & set(presets)
    return sorted(names or ())


def derive(cfg: dict, **changes) -> dict:
    """A copy of ``cfg`` with nested keys replaced; ``__`` separates levels and a list index is
    an integer: ``derive(base, d=50, model__n_embd=64, stages__1__steps=400)``. Unknown keys
    raise, so a typo cannot silently leave the base value in place."""
    out = copy.deepcopy(cfg)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = out
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) else last
        if isinstance(node, dict) and key not in node:
            raise KeyError(f"derive: {dotted!r} is not a key of the config (known here: {sorted(node)})")
        node[key] = check_like(f"derive: {dotted}", value, node[key])
    return out


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

# "It is unclear why": no bottleneck (width > N), no regulariser, only 1-hop edges; the associative
# control is the same Transformer with its token embeddings frozen at random.
_WIDE_GPT = dict(kind="gpt", n_layer=1, n_head=1, n_embd=64)
register(
    "pressures",
    cpu=dict(model=_WIDE_GPT, train=dict(_TINY_TRAIN, steps=600), seeds=2, k=5),
    paper=dict(model=_WIDE_GPT, train=dict(_TINY_TRAIN, steps=3000), seeds=5, k=5),
)

# 1-hop Node2Vec: full softmax, tied, plain full-batch gradient descent, width 100 > N, no decay.
_NODE2VEC = dict(kind="node2vec", dim=100, init_std=0.02)
_GD = dict(optimizer="sgd", schedule="constant", grad_clip=None, weight_decay=0.0)
register(
    "spectral_bias",
    cpu=dict(model=_NODE2VEC, train=dict(_GD, lr=1.0, steps=1500),
             large=dict(kind="grid", rows=20, cols=20, lr=40.0, steps=1500, k=10),
             linearisation=dict(init_std=1e-4, lr=1.0, steps=40)),
    paper=dict(model=_NODE2VEC, train=dict(_GD, lr=1.0, steps=10000),
               large=dict(kind="grid", rows=30, cols=30, lr=90.0, steps=5000, k=10),
               linearisation=dict(init_std=1e-4, lr=1.0, steps=40)),
)

# The wide linear net E W E^T on the cycle: tiny init, AdamW, no regulariser.
register(
    "linear_net",
    cpu=dict(n=15, width=512, model=dict(kind="linear", width=512, init_std=1e-4, w_init_std=1e-4),
             train=dict(lr=1e-3, schedule="constant", steps=2500),
             control=dict(kind="linear", width=512, init_std=512 ** -0.5, w_init_std=0.0, freeze_embeddings=True),
             control_train=dict(lr=1e-2, steps=300), seeds=3),
    paper=dict(n=15, width=512, model=dict(kind="linear", width=512, init_std=1e-4, w_init_std=1e-4),
               train=dict(lr=1e-3, schedule="constant", steps=10000),
               control=dict(kind="linear", width=512, init_std=512 ** -0.5, w_init_std=0.0, freeze_embeddings=True),
               control_train=dict(lr=1e-2, steps=2000), seeds=5),
)

# Headroom: the tiny Transformer's spectral profile against Node2Vec's, and self-edges.
register(
    "headroom",
    cpu=dict(model=_TINY_GPT, train=dict(_TINY_TRAIN, steps=600), node2vec=_NODE2VEC,
             node2vec_train=dict(_GD, lr=1.0, steps=1500), seeds=2, k=2),
    paper=dict(model=_TINY_GPT, train=dict(_TINY_TRAIN, steps=3000), node2vec=_NODE2VEC,
               node2vec_train=dict(_GD, lr=1.0, steps=10000), seeds=5, k=2),
)

# Knobs on the wide linear net (cycle of 15), as the release runs them: E and W N(0, 0.02) by
# default; the "non-geometric" init makes only the embedding E unit-normal (W stays N(0, 0.02));
# AdamW betas (0.9, 0.999), no gradient clipping, constant lr unless stated, 10,000 full-batch
# epochs, bf16 autocast (the release trains under it on a GPU). Measured here (3 seeds): in fp32
# the large-lr knob is geometric on 1 of 3 seeds, under bf16 autocast on 4 of 4; at 2,000 steps
# neither weight decay nor dropout has acted yet. 3 seeds: every knob is judged on its mean z-score.
_LINEAR_SMALL = dict(kind="linear", width=512, init_std=0.02)
_NON_GEOMETRIC = dict(_LINEAR_SMALL, init_std=1.0, w_init_std=0.02)
_KNOBS_TRAIN = dict(betas=(0.9, 0.999), grad_clip=None, schedule="constant", precision="bf16")
_KNOBS = {
    "non-geometric init, lr 1e-4": (_NON_GEOMETRIC, dict(lr=1e-4)),
    "non-geometric init, large lr 0.1 (cosine to 0.01)": (_NON_GEOMETRIC, dict(lr=0.1, schedule="cosine",
                                                                               final_lr_ratio=0.1)),
    "non-geometric init, lr 1e-4, weight decay 10": (_NON_GEOMETRIC, dict(lr=1e-4, weight_decay=10.0)),
    "non-geometric init, lr 1e-3, dropout 0.4 after W": (dict(_NON_GEOMETRIC, dropout=0.4, dropout_after_w=True),
                                                         dict(lr=1e-3)),
    "default small init, lr 1e-2": (_LINEAR_SMALL, dict(lr=1e-2)),
    "default small init, lr 1e-4 (the paper: weakened geometry)": (_LINEAR_SMALL, dict(lr=1e-4)),
}
register(
    "knobs",
    cpu=dict(n=15, steps=10_000, seeds=3, train=_KNOBS_TRAIN, variants=_KNOBS),
    paper=dict(n=15, steps=10_000, seeds=5, train=_KNOBS_TRAIN, variants=_KNOBS),
)

# ----------------------------------------------------------------------------- in-weights path-star
# cpu: measured on the 2-core machine (benchmarks/pathstar_switch.py): a short edge stage, then
# mixed batches with a quarter of each batch training paths, constant lr 2e-3 with weight decay 1.0,
# then a decay over the second half ("wsd"). Held-out full-path accuracy passes 0.9 within ~250
# mixed steps; the decay stops the oscillation a constant lr causes.
_PATHSTAR_STAGES_CPU = [
    dict(data="edges", steps=300, lr=1e-2, warmup=50, weight_decay=0.01, final_lr_ratio=0.1, eval_every=20),
    dict(data="mixed", steps=1200, lr=2e-3, schedule="wsd", decay_fraction=0.5, final_lr_ratio=0.05,
         weight_decay=1.0, batch=2048, path_fraction=0.25),
]
# paper: the authors' release recipe at their scale (d = 10^4 arms, l = 6, 12 x 384 x 8 GPT; edge
# stage lr 1e-2 batch 16384, path stage lr 5e-4 batch 2048, AdamW wd 1e-2, warmup + cosine to lr/10,
# thousands of epochs). For a GPU; not run on the CPU machine.
_PATHSTAR_STAGES_PAPER = [
    dict(data="edges", steps=12000, lr=1e-2, warmup=500, weight_decay=0.01, final_lr_ratio=0.1, batch=16384),
    dict(data="mixed", steps=20000, lr=5e-4, warmup=500, weight_decay=0.01, final_lr_ratio=0.1, batch=2048,
         path_fraction=0.25),
]
_GPT_CPU = dict(kind="gpt", n_layer=2, n_head=4, n_embd=128)
_GPT_PAPER = dict(kind="gpt", n_layer=12, n_head=8, n_embd=384)
register(
    "pathstar",
    cpu=dict(d=500, l=5, task={}, model=_GPT_CPU, stages=_PATHSTAR_STAGES_CPU, precision="auto", eval_every=100),
    paper=dict(d=10_000, l=6, task={}, model=_GPT_PAPER, stages=_PATHSTAR_STAGES_PAPER, precision="auto", eval_every=1000),
)
# The authors' release recipe (`mixed_full_path`), every value as the release: one mixed stage from
# scratch (no edge-only stage), edges and training paths in their natural proportion (path_fraction
# None: 375 of 4,375 examples at d = 500, l = 5), AdamW lr 5e-4, betas (0.9, 0.999), weight decay
# 0.01 on every parameter, no gradient clipping, warmup 1,000 then cosine to lr/10, batch 2,048,
# 10,000 epochs (21,400 steps at d = 500, l = 5; 525,000 at the paper's d = 10^4, l = 6), bf16
# autocast (the release's GPU precision), positional embeddings N(0, 1) and no GPT-2 residual
# scaling (the release's quirks), greedy decoding over the whole vocabulary.
_GPT_RELEASE = dict(pos_init_std=1.0, scaled_residual_init=False)
_RELEASE_STAGE = dict(data="mixed", lr=5e-4, warmup=1000, schedule="cosine", final_lr_ratio=0.1, weight_decay=0.01,
                      decay_all=True, betas=(0.9, 0.999), grad_clip=None, batch=2048, path_fraction=None)
register(
    "pathstar_release",
    cpu=dict(d=500, l=5, task={}, model=dict(_GPT_CPU, **_GPT_RELEASE), stages=[dict(_RELEASE_STAGE, steps=21_400)],
             precision="bf16", eval_every=200, decode="vocab"),
    paper=dict(d=10_000, l=6, task={}, model=dict(_GPT_PAPER, **_GPT_RELEASE),
               stages=[dict(_RELEASE_STAGE, steps=525_000)], precision="bf16", eval_every=5000, decode="vocab"),
)
# Runs whose edge stage needs no fine timeline (only the cascade chapter reads it every 20 steps).
_PATHSTAR_STAGES_CPU_COARSE = [dict(_PATHSTAR_STAGES_CPU[0], eval_every=100), _PATHSTAR_STAGES_CPU[1]]
# The hardest-token recipe converges within 100 mixed steps (held-out n1 0.99 at step 400 and
# 1.00 from then to step 1,500 in a longer run), so its mixed stage is half as long.
_PATHSTAR_STAGES_CPU_HARDEST = [_PATHSTAR_STAGES_CPU_COARSE[0], dict(_PATHSTAR_STAGES_CPU[1], steps=600)]
register(
    "pathstar_hardest",
    cpu=dict(d=500, l=5, task=dict(hardest_token=True), model=_GPT_CPU, stages=_PATHSTAR_STAGES_CPU_HARDEST, precision="auto",
             eval_every=100),
    paper=dict(d=10_000, l=6, task=dict(hardest_token=True), model=_GPT_PAPER, stages=_PATHSTAR_STAGES_PAPER,
               precision="auto", eval_every=1000),
)
register(
    "pathstar_frozen",
    cpu=dict(d=500, l=5, task={}, model=dict(_GPT_CPU, freeze_embeddings=True, emb_init_std=1.0),
             stages=_PATHSTAR_STAGES_CPU_COARSE, precision="auto", eval_every=100),
    paper=dict(d=10_000, l=6, task={}, model=dict(_GPT_PAPER, freeze_embeddings=True, emb_init_std=1.0),
               stages=_PATHSTAR_STAGES_PAPER, precision="auto", eval_every=1000),
)
# Bachmann & Nagarajan's in-context setting (their d = 2..5): d = 2 arms, l = 5, 50 labels.
# cpu: 600 steps; measured: the tokens after n1 are perfect by step 300 and n1 stays at chance
# (0.50) from then to step 1,500 in a longer run, so steps beyond 600 only cost time.
register(
    "incontext",
    cpu=dict(d=2, l=5, num_labels=50, num_train=50_000, num_test=2000, model=_GPT_CPU,
             train=dict(steps=600, lr=1e-3, warmup=100, weight_decay=0.01, batch_size=256, precision="auto"), eval_every=100),
    paper=dict(d=5, l=5, num_labels=50, num_train=200_000, num_test=5000, model=dict(kind="gpt", n_layer=6, n_head=6, n_embd=384),
               train=dict(steps=20000, lr=5e-4, warmup=500, weight_decay=0.01, batch_size=256, precision="auto"), eval_every=1000),
)

# ----------------------------------------------------------------------------- beyond the paper
# Phase diagram: the `pathstar` cpu recipe on smaller graphs (a mixed stage of 400 steps with
# batches of 512), one axis at a time around a centre cell; the edge stage evaluates every 20
# steps so that the moment the geometry probe switches on is visible.
_SCALING_STAGES_CPU = [dict(_PATHSTAR_STAGES_CPU[0]), dict(_PATHSTAR_STAGES_CPU[1], steps=400, batch=512)]
_SCALING_STAGES_CPU_COARSE = [_PATHSTAR_STAGES_CPU_COARSE[0], _SCALING_STAGES_CPU[1]]  # no probe timeline needed
_SCALING_BASE_CPU = dict(d=100, l=5, task={}, model=dict(_GPT_CPU, emb_init_std=None), stages=_SCALING_STAGES_CPU, precision="auto", eval_every=100,
                         emb_init=None, aux_node2vec=0.0)
register(
    "scaling",
    cpu=dict(base=_SCALING_BASE_CPU, arms=[25, 50, 100, 200], lengths=[4, 5, 6, 7],
             sizes=[(1, 128), (2, 64), (2, 128), (2, 256)], seeds=1,
             # the model-size claim compares two cells of 25 held-out leaves each: one seed moved it by
             # 0.16 between two CPUs, so those two cells run 3 seeds and the claim is their mean gain
             size_seeds=3),
    # For a GPU, around the paper's d = 10^4, l = 6, 12 x 384 (not run on the CPU machine).
    paper=dict(base=dict(_SCALING_BASE_CPU, d=10_000, l=6, model=dict(_GPT_PAPER, emb_init_std=None), stages=_PATHSTAR_STAGES_PAPER,
                         eval_every=1000),
               arms=[500, 2000, 5000, 10_000], lengths=[4, 6, 8, 10], sizes=[(4, 256), (8, 384), (12, 384), (12, 768)],
               seeds=3, size_seeds=3),
)

# Headroom as an intervention: where the plain Transformer's generalisation is fragile (d = 50
# arms: held-out accuracy rises, then collapses into a lookup), does more geometric memory help?
_INTERVENTIONS = {
    "plain": {},
    "self-edges": dict(task={"self_edges": True}),
    "Node2Vec-initialised embeddings": dict(emb_init="node2vec"),
    "auxiliary Node2Vec loss": dict(aux_node2vec=1.0),
    "small embedding init (std 0.002)": dict(model__emb_init_std=0.002),
}
register(
    "interventions",
    cpu=dict(base=dict(_SCALING_BASE_CPU, d=50, stages=_SCALING_STAGES_CPU_COARSE),
             variants=_INTERVENTIONS, seeds=3),
    paper=dict(base=dict(_SCALING_BASE_CPU, d=1000, l=6, model=dict(_GPT_PAPER, emb_init_std=None), stages=_PATHSTAR_STAGES_PAPER,
                         eval_every=1000),
               variants=_INTERVENTIONS, seeds=5),
)

# "Mamba too": the pure-torch Mamba (state 16, conv 4, expand 2, tied, no positions) with the
# phase diagram's recipe at d = 200 arms; about 1.5 min on 2 cores (the scan is torch.compiled).
# A d = 500 run of the full `pathstar` recipe would take about 10 min here.
# The block as the authors' release builds it: Mamba(LayerNorm(x)) with no residual connection and
# no final LayerNorm, every Linear in a block re-initialised N(0, 0.02) with zero biases (so dt =
# softplus(0) in every channel). Measured (benchmarks/mamba_hypotheses.py, data/mamba_hypotheses.json):
# with the reference-style block (residual, final norm, dt in [1e-3, 0.1]) held-out full path was
# 0.10; with the release's block and init 0.98 on seeds 0, 1 and 2.
_MAMBA_RELEASE = dict(kind="mamba", residual=False, final_norm=False, release_init=True)
register(
    "pathstar_mamba",
    cpu=dict(_SCALING_BASE_CPU, d=200, model=dict(_MAMBA_RELEASE, n_layer=2, d_model=128),
             stages=_SCALING_STAGES_CPU_COARSE),
    paper=dict(_SCALING_BASE_CPU, d=10_000, l=6, model=dict(_MAMBA_RELEASE, n_layer=12, d_model=384),
               stages=_PATHSTAR_STAGES_PAPER, eval_every=1000),
)
