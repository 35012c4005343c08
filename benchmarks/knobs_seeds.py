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
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from geomlib.evaluate import edge_recall
from geomlib.fileio import write_json_atomic
from geomlib.geometry import geometric_margin, margin_z
from geomlib.graphs import cycle
from geomlib.presets import PRESETS, plain
from geomlib.provenance import git_commit, hardware, library_fingerprint
from geomlib.recipes import edge_runs

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
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = [r for r in doc.get("runs", []) if r.get("optimizer", "adamw") != optimizer]
    commands = [c for c in doc.get("command", "").split(" && ") if c]
    command = "python benchmarks/knobs_seeds.py" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    commands += [command] if command not in commands else []
    for (label, s), (m, h) in zip(cells, out):
        g, E, W = cycle(cfg.n, s), m.E.detach(), m.W.detach()
        gm = geometric_margin(E, W, g)
        runs.append(dict(variant=label, optimizer=optimizer, seed=s, margin=gm["margin"], z=margin_z(E, W, g, seed=s)["z"],
                         skewed_top1=gm["skewed_top1"], recall=edge_recall(m.scores().detach(), g, "degree")))
        r = runs[-1]
        print(f"{label:58s} {optimizer:11s} {s} margin {r['margin']:+7.2f} z {r['z']:+6.2f} skewed top-1 {r['skewed_top1']:.2f} "
              f"recall {r['recall']:.2f}")
    write_json_atomic(args.out, {
        "what": "the knobs preset's variants on the cycle of 15, per seed, with PyTorch's plain and fused AdamW "
                "kernels", "command": " && ".join(commands), "commit": git_commit(),
        "geomlib": library_fingerprint(), "hardware": hardware(), "torch": str(torch.__version__),
        "threads_per_process": 1, "variants": {k: plain(v) for k, v in cfg.variants.items()},
        "runs": sorted(runs, key=lambda r: (r["optimizer"], r["variant"], r["seed"]))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
