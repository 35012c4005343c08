"""The associative control for Mamba (issue: where Mamba keeps its geometry).

"Geometry explains it" freezes the Transformer's token embeddings at random: it can still store
every edge and training path in its other weights, but cannot find held-out paths. Does Mamba's
success need learned embedding geometry the same way? This runs the "Mamba too?" chapter's cpu
recipe with the stages these runs were made with (``MAMBA_FORMER_STAGES``: 300 edge, 400 mixed),
with the token embeddings (tied to the output head) frozen at their random init, seeds 0-2, and
records what it memorises (edges, training paths) and what it finds (held-out n1 and full
paths), beside the same recipe unfrozen.

    python benchmarks/mamba_control.py                  # seeds 0-2, frozen and plain (resumable)
    python benchmarks/mamba_control.py --seeds 0 --variants frozen

Writes ``data/mamba_control.json`` (a :class:`geomlib.studies.Study`) after every run.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from geomlib.presets import PRESETS, plain
from geomlib.presets.pathstar import MAMBA_FORMER_STAGES
from geomlib.recipes import pathstar_run
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]
_RUN = replace(PRESETS["mamba_too"]["cpu"].run, stages=MAMBA_FORMER_STAGES)  # what data/mamba_control.json ran
VARIANTS = {"plain": _RUN, "frozen embeddings": replace(_RUN, model=replace(_RUN.model, freeze_embeddings=True))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "mamba_control.json")
    args = ap.parse_args(argv)
    study = Study(args.out, "the 'Mamba too?' recipe with its token embeddings frozen at random (the associative "
                  "control) beside the same recipe unfrozen", command_line("benchmarks/mamba_control.py", argv),
                  key=lambda r: (r["variant"], r["seed"]), configs={k: plain(v) for k, v in VARIANTS.items()})
    for variant in args.variants:
        for seed in args.seeds:
            if (variant, seed) in study:
                continue
            task, _, hist = pathstar_run(VARIANTS[variant], seed, progress=False)
            last = hist.last
            r = study.add(dict(variant=variant, seed=seed, d=task.d, edge_top1_neighbour=last["edge_top1_neighbour"],
                               train_full_path=last["train_full_path"], heldout_n1=last["heldout_n1"],
                               heldout_full_path=last["heldout_full_path"], probe=last["probe"],
                               steps=int(last["step"]), train_seconds=round(last["seconds"], 1),
                               computed_as=hist.meta["configs"][0]["computed_as"]))
            print(f"{variant:18s} seed {seed}: edges {r['edge_top1_neighbour']:.2f} training paths "
                  f"{r['train_full_path']:.2f} held-out n1 {r['heldout_n1']:.2f} full {r['heldout_full_path']:.2f} "
                  f"({r['train_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
