"""The 1-layer Transformer on the tiny graphs under the release's settings and ours, one change at
a time, and in fp32 vs bf16 autocast: what moves its geometry ("Geometry from local supervision",
"Headroom").

Variants (every one: 1 layer, 1 head, width 32, AdamW lr 1e-2 cosine to 1e-3, no weight decay,
full batch):

* ``release``: the release's settings (positional embeddings N(0, 1), no residual scaling, betas
  (0.9, 0.999), no clipping, 2,500 full-batch epochs, bf16 autocast);
* ``release, fp32``: the same in fp32;
* ``release, small positional init``: positional embeddings N(0, 0.02) and GPT-2's residual scaling;
* ``release, betas (0.9, 0.95), clip 1.0``: nanoGPT's optimiser settings;
* ``book before``: the book's former recipe (small positional init, nanoGPT's optimiser, 600 steps,
  fp32);
* ``release, per graph`` and ``release, per graph, fp32``: the release's own length (and width) on
  each graph and direction (``geomlib.presets.release.TINY_TRANSFORMER_BY_GRAPH``: 500-2,500 epochs;
  the forward-only irregular run 48 wide), where the variants above train 2,500 everywhere.

Per run (both directions; forward only; both directions with self-edges): edge recall, peak and
final geometric level, the step of the peak, edge contrast, 2-hop AUC, and the energy share in the
two top and the two most negative eigen-directions.

    python benchmarks/tiny_transformer.py                       # everything (resumable)
    python benchmarks/tiny_transformer.py --variants release --seeds 0 1

Writes ``data/tiny_transformer.json`` after every run, with the command, commit, machine and torch.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from geomlib.geometry import cosine_matrix, edge_contrast, two_hop_auc
from geomlib.graphs import tiny_graphs
from geomlib.precision import forced
from geomlib.presets import GPT, EdgeRecipe, TrainConfig, plain, release
from geomlib.recipes import edge_run
from geomlib.spectral import eigenpairs, energy_share
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "tiny_transformer.json"
_REL = release.TINY_TRANSFORMER  # 2,500 epochs on every graph (the release's longest)
VARIANTS = {
    "release": _REL,
    "release, fp32": replace(_REL, train=replace(_REL.train, precision="fp32")),
    "release, small positional init": replace(_REL, model=replace(_REL.model, pos_init_std=None,
                                                                  scaled_residual_init=True)),
    "release, betas (0.9, 0.95), clip 1.0": replace(_REL, train=replace(_REL.train, betas=(0.9, 0.95), grad_clip=1.0)),
    "book before": EdgeRecipe(GPT(n_layer=1, n_head=1, n_embd=32), TrainConfig(steps=600, lr=1e-2, final_lr_ratio=0.1,
                                                            weight_decay=0.0)),
    # per graph: "<graph>, <directions>" -> recipe (the self-edges mode runs the "both" recipe)
    "release, per graph": release.TINY_TRANSFORMER_BY_GRAPH,
    "release, per graph, fp32": {k: replace(r, train=replace(r.train, precision="fp32"))
                                 for k, r in release.TINY_TRANSFORMER_BY_GRAPH.items()},
}
MODES = {"both": dict(directions="both", self_edges=False), "forward": dict(directions="forward", self_edges=False),
         "self-edges": dict(directions="both", self_edges=True)}


def measure(graph, recipe: EdgeRecipe, mode: str, seed: int) -> dict:
    start = time.perf_counter()
    m, h = edge_run(graph, recipe, seed, k=5, eval_every=5, progress=False, **MODES[mode])
    E = m.token_embeddings()[: graph.num_nodes].detach().float()
    lv = h["geometric_level"]
    _, vecs = eigenpairs(graph)
    return dict(recall=float(h.last["recall"]), peak_level=float(lv.max()), peak_step=int(h["step"][lv.argmax()]),
                final_level=float(lv[-1]), contrast=edge_contrast(E, graph), two_hop=two_hop_auc(cosine_matrix(E), graph),
                top2=energy_share(E, vecs, 2)["share"], zigzag2=energy_share(E, vecs, 2, which="bottom")["share"],
                seconds=round(time.perf_counter() - start, 2))


def main(argv=None) -> int:
    graphs = tiny_graphs(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--graphs", nargs="+", default=list(graphs), choices=list(graphs))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if forced():
        print("error: $GEOMLIB_PRECISION forces every run's precision; unset it (this study sets precision per run)",
              file=sys.stderr)
        return 2
    study = Study(args.out, "the 1-layer Transformer on the tiny graphs: the release's settings, one change at a time, "
                  "fp32 vs bf16 autocast, and the book's former recipe", command_line("benchmarks/tiny_transformer.py", argv),
                  variants={k: plain(v) for k, v in VARIANTS.items()})
    for variant in args.variants:
        for name in args.graphs:
            for mode in args.modes:
                for seed in args.seeds:
                    key = f"{variant}|{name}|{mode}|{seed}"
                    if key in study:
                        continue
                    recipe = VARIANTS[variant]
                    if isinstance(recipe, dict):
                        recipe = recipe[f"{name}, {MODES[mode]['directions']}"]
                    r = measure(tiny_graphs(seed)[name], recipe, mode, seed)
                    study.add(dict(key=key, variant=variant, graph=name, mode=mode, seed=seed, **r))
                    print(f"{key:60s} recall {r['recall']:.2f} peak {r['peak_level']:.2f}@{r['peak_step']} final "
                          f"{r['final_level']:.2f} contrast {r['contrast']:.2f} zigzag {r['zigzag2']:.2f} "
                          f"({r['seconds']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
