"""The knobs of "Knobs that pick associative or geometric memory" over more seeds than the chapter
runs: each variant of the `knobs` preset (the release's settings: width 512, 10,000 full-batch
steps, bf16 autocast) on the cycle of 15, per seed: geometric margin, its z-score against lookups
with the same answers, skewed top-1, recall.

    python benchmarks/knobs_seeds.py                          # seeds 0-6, the preset's AdamW kernel
    python benchmarks/knobs_seeds.py --optimizer adamw        # the same with PyTorch's plain AdamW kernel

Writes ``data/knobs_seeds.json`` with the command, commit, machine and torch. The runs are spread
over one process per CPU core (``geomlib.recipes.edge_runs``).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from geomlib.evaluate import edge_recall
from geomlib.geometry import geometric_margin, margin_z
from geomlib.graphs import cycle
from geomlib.presets import PRESETS, plain
from geomlib.recipes import edge_runs
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "knobs_seeds.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(7)))
    ap.add_argument("--optimizer", choices=["adamw", "adamw_fused"], default=None,
                    help="run the knobs with this AdamW kernel (default: the preset's)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cfg = PRESETS["knobs"]["cpu"]
    variants = {label: r if args.optimizer is None else replace(r, train=replace(r.train, optimizer=args.optimizer))
                for label, r in cfg.variants.items()}
    optimizer = next(iter(variants.values())).train.optimizer
    cells = [(label, s) for label in variants for s in args.seeds]
    out = edge_runs([(cycle(cfg.n, s), variants[label], s, dict(k="degree", eval_every=0, progress=False))
                     for label, s in cells])
    study = Study(args.out, "the knobs preset's variants on the cycle of 15, per seed, with PyTorch's plain and fused "
                  "AdamW kernels", command_line("benchmarks/knobs_seeds.py", argv),
                  key=lambda r: (r.get("optimizer", "adamw"), r["variant"], r["seed"]),
                  threads_per_process=1, variants={k: plain(v) for k, v in cfg.variants.items()})
    study.drop(lambda r: r.get("optimizer", "adamw") != optimizer)  # this kernel's runs are redone
    for (label, s), (m, h) in zip(cells, out):
        g, E, W = cycle(cfg.n, s), m.E.detach(), m.W.detach()
        gm = geometric_margin(E, W, g)
        r = study.add(dict(variant=label, optimizer=optimizer, seed=s, margin=gm["margin"],
                           z=margin_z(E, W, g, seed=s)["z"], skewed_top1=gm["skewed_top1"],
                           recall=edge_recall(m.scores().detach(), g, "degree")), save=False)
        print(f"{label:58s} {optimizer:11s} {s} margin {r['margin']:+7.2f} z {r['z']:+6.2f} skewed top-1 {r['skewed_top1']:.2f} "
              f"recall {r['recall']:.2f}")
    study.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
