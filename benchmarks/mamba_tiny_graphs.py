"""Mamba on the tiny graphs (beyond the paper; issue: where Mamba keeps its geometry).

Edge memorisation on the four tiny graphs (cycle, grid, path-star, irregular) by a 1-block,
width-32 Mamba built as the release builds its block (no residual, no final norm, release init),
beside the 1-layer, width-32 Transformer of "Headroom" and 1-hop Node2Vec, all trained with the
"Headroom" chapter's cpu recipes (the Mamba with the Transformer's: AdamW lr 1e-2 cosine to 1e-3,
betas (0.9, 0.999), no clipping, 2,500 full-batch steps, fp32). Per run: edge recall, the
geometric level over training (every 50 steps) and at the end, the energy share of the top and
bottom k = 2 eigenvectors, and the spectral projection profile of the final token embeddings.

    python benchmarks/mamba_tiny_graphs.py                   # 4 graphs x 3 models x seeds 0-2 (resumable)
    python benchmarks/mamba_tiny_graphs.py --seeds 0 --graphs cycle

Writes ``data/mamba_tiny_graphs.json`` (a :class:`geomlib.studies.Study`) after every batch of runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geomlib.graphs import tiny_graphs
from geomlib.presets import PRESETS, EdgeRecipe, Mamba, plain
from geomlib.recipes import edge_runs
from geomlib.spectral import eigenpairs, energy_share, projection_profile
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "mamba_tiny_graphs.json"
_HEADROOM = PRESETS["headroom"]["cpu"]
MODELS = {
    "Mamba": EdgeRecipe(Mamba(n_layer=1, d_model=32, residual=False, final_norm=False, release_init=True),
                        _HEADROOM.transformer.train),
    "Transformer": _HEADROOM.transformer,
    "Node2Vec": _HEADROOM.node2vec,
}
K, EVAL_EVERY = 2, 50


def main(argv=None) -> int:
    graphs = tiny_graphs(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", nargs="+", default=list(graphs), choices=list(graphs))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    study = Study(args.out, "Mamba (the release's block, 1 x 32) on the tiny graphs beside the Transformer and Node2Vec "
                  "of 'Headroom': edge recall, geometric level over training, top/bottom eigenvector energy and the "
                  "spectral projection profile", command_line("benchmarks/mamba_tiny_graphs.py", argv),
                  key=lambda r: (r["graph"], r["model"], r["seed"]), k=K,
                  recipes={name: plain(r) for name, r in MODELS.items()})
    cells = [(g, m, s) for g in args.graphs for m in args.models for s in args.seeds if (g, m, s) not in study]
    print(f"{len(cells)} run(s) to do -> {args.out}", flush=True)
    for start in range(0, len(cells), 4):  # a few runs at a time, one process per core; written after each batch
        batch = cells[start:start + 4]
        runs = edge_runs([(tiny_graphs(s)[g], MODELS[m], s, dict(k=5, eval_every=EVAL_EVERY, progress=False))
                          for g, m, s in batch])
        for (g, m, s), (net, hist) in zip(batch, runs):
            graph = tiny_graphs(s)[g]
            vals, vecs = eigenpairs(graph)
            E = net.token_embeddings()[: graph.num_nodes].detach().float()
            levels = [[int(r["step"]), float(r["geometric_level"])] for r in hist.rows if "geometric_level" in r]
            row = study.add(dict(graph=g, model=m, seed=s, recall=float(hist.last["recall"]),
                                 level=float(hist.last["geometric_level"]), peak_level=max(v for _, v in levels),
                                 top=energy_share(E, vecs, K)["share"],
                                 zigzag=energy_share(E, vecs, K, which="bottom")["share"],
                                 profile=[float(x) for x in projection_profile(E, vecs)],
                                 eigenvalues=[float(x) for x in vals], levels=levels,
                                 computed_as=hist.meta["configs"][0]["computed_as"]), save=False)
            print(f"{g:10s} {m:12s} seed {s}: recall {row['recall']:.2f} level {row['level']:.2f} (peak "
                  f"{row['peak_level']:.2f}) top-{K} {row['top']:.2f} bottom-{K} {row['zigzag']:.2f}", flush=True)
        study.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
