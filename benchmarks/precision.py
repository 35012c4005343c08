"""Numeric precision as an experiment: the wide linear net on the four tiny graphs, with and
without self-edges, under its release recipe (E and W N(0, 0.02), AdamW lr 1e-2 constant, betas
(0.9, 0.999), no clipping, 10,000 full-batch steps), in fp32 and under bf16 autocast, 5 seeds;
beside it the associative control (E frozen) under the same recipe, the lookup whose margins the
linear net's are compared with.

Beside them, the release's own narrower, shorter net on the path-star, the grid and the irregular
graph (``geomlib.presets.release.LINEAR_NET_BY_GRAPH``; on the cycle it is the wide net).

Per run: participation ratio of the projection profile (effective number of eigen-directions),
the two eigen-directions carrying the most mass (1 = top, N-1 = most negative), the geometric
margin, its z-score against lookups with the same answers, skewed top-1, edge recall.

    python benchmarks/precision.py                    # everything (resumable: finished runs are kept)
    python benchmarks/precision.py --graphs cycle --seeds 0 1

Writes ``data/precision.json`` after every run (a :class:`geomlib.studies.Study`).
Denormal floats are flushed to zero (``torch.set_flush_denormal``): in fp32 the net's tiny
updates otherwise run into denormals, which this CPU handles ~4x slower (measured); values below
1e-38 do not move a margin.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from geomlib.evaluate import edge_recall
from geomlib.geometry import geometric_margin, margin_z
from geomlib.graphs import tiny_graphs
from geomlib.precision import forced
from geomlib.presets import RELEASE, plain, release
from geomlib.recipes import edge_run
from geomlib.spectral import eigenpairs, participation_ratio, projection_profile
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "precision.json"
# name -> recipe, or graph -> recipe: the release trains a narrower, shorter net on every graph but the
# cycle (where it is the wide net above, so that row is the linear net's own)
NETS = {"linear net": RELEASE["linear_net"].recipe, "associative control": RELEASE["linear_net"].control,
        "release's per-graph net": {g: r for g, r in release.LINEAR_NET_BY_GRAPH.items() if g != "cycle"}}


def recipe_of(net: str, graph: str):
    """The recipe of ``net`` on ``graph`` (None: this net is not run there)."""
    recipe = NETS[net]
    return recipe.get(graph) if isinstance(recipe, dict) else recipe


def measure(graph, recipe, precision: str, self_edges: bool, seed: int) -> dict:
    recipe = replace(recipe, train=replace(recipe.train, precision=precision))
    start = time.perf_counter()
    m, h = edge_run(graph, recipe, seed, self_edges=self_edges, k="degree", eval_every=0, progress=False)
    E, W = m.E.detach().float(), m.W.detach().float()
    vals, vecs = eigenpairs(graph)
    prof = projection_profile(E, vecs, normalise=False)
    gm = geometric_margin(E, W, graph)
    return dict(pr=participation_ratio(prof), top_directions=(np.argsort(prof)[::-1][:2] + 1).tolist(),
                n_directions=len(vals), margin=gm["margin"], skewed_top1=gm["skewed_top1"],
                margin_z=margin_z(E, W, graph, seed=seed)["z"],
                recall=edge_recall(m.scores().detach(), graph, "degree"), seconds=round(time.perf_counter() - start, 2))


def main(argv=None) -> int:
    graphs = tiny_graphs(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graphs", nargs="+", default=list(graphs), choices=list(graphs))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (tiny matmuls: 1 is fastest)")
    ap.add_argument("--merge", type=Path, nargs="*", default=[], help="fold these files' runs into --out, then exit")
    args = ap.parse_args(argv)
    if forced():
        print("error: $GEOMLIB_PRECISION forces every run's precision; unset it (this study sets precision per run)",
              file=sys.stderr)
        return 2
    what = ("the wide linear net (release recipe) and its associative control on the tiny graphs, with and without "
            "self-edges, fp32 vs bf16 autocast, 5 seeds")
    fields = dict(flush_denormal=True, recipes={k: plain(v) for k, v in NETS.items()})  # plain() maps a dict too
    if args.merge:
        study = Study(args.out, what, command_line("benchmarks/precision.py", argv), **fields)
        for part in args.merge:
            other = json.loads(part.read_text())
            study.commands += [c for c in other["command"].split(" && ") if c not in study.commands]
            for r in other["runs"]:
                study.add(r, save=False)
        study.save()
        print(f"{len(study)} runs in {args.out}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    study = Study(args.out, what, command_line("benchmarks/precision.py", argv), **fields)
    for name in args.graphs:
        for self_edges in (False, True):
            for precision in args.precisions:
                for net in args.nets:
                    if recipe_of(net, name) is None:
                        continue
                    for seed in args.seeds:
                        key = f"{name}|{'self' if self_edges else 'plain'}|{precision}|{net}|{seed}"
                        if key in study:
                            continue
                        graph = tiny_graphs(seed)[name]
                        r = measure(graph, recipe_of(net, name), precision, self_edges, seed)
                        study.add(dict(key=key, graph=name, self_edges=self_edges, precision=precision, net=net,
                                       seed=seed, **r))
                        print(f"{key:55s} PR {r['pr']:5.2f} top {r['top_directions']} margin {r['margin']:+7.2f} "
                              f"z {r['margin_z']:+6.1f} skewed top-1 {r['skewed_top1']:.2f} recall {r['recall']:.2f} "
                              f"({r['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
