"""How long the edge-only stage of the book's d = 500 path-star runs needs to be.

The book's main run (``PATHSTAR_CPU``: d = 500, l = 6, 2 x 128 GPT) starts with an edge-only stage
evaluated every 20 steps. This runs the former recipe (a 300-step edge stage, then 600 mixed
steps) and records, per seed and precision, the step by which every edge query's top-1 answer is a
true neighbour (``edge_top1_neighbour``) and every ancestor probe (``probe_k1`` .. ``probe_k4``: the
leaf's k-hop ancestor nearest among its depth) has reached 0.99 (``geomlib.evaluate.readable_by``;
one past the edge stage's end if never), and the held-out full-path accuracy at every mixed-stage
evaluation (the drift that the shorter mixed stage avoids).

    python benchmarks/edge_stage.py                     # seeds 0-4 auto (bf16 where native), 0-2 fp32
    python benchmarks/edge_stage.py --seeds 0 --fp32-seeds

Writes ``data/edge_stage.json``. The runs are ``geomlib.recipes.pathstar_run`` calls, so a cache
(``$GEOMLIB_CACHE``) that already holds them (e.g. ``make robustness`` at a commit whose main run was
this recipe) is read instead of retrained: about 2.5 min a run on 2 cores otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from geomlib.evaluate import readable_by
from geomlib.precision import forced, precision_label
from geomlib.presets import PATHSTAR_CPU
from geomlib.recipes import pathstar_run
from geomlib.studies import Study, command_line
from geomlib.train import History

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "edge_stage.json"
LEVEL = 0.99
EDGE_STEPS, MIXED_STEPS = 300, 600  # the former recipe's stages


def former_recipe():
    """The book's main run as it was before its stages were shortened: 300 edge steps, 600 mixed."""
    edges, mixed = PATHSTAR_CPU.stages
    return replace(PATHSTAR_CPU, stages=(replace(edges, train=replace(edges.train, steps=EDGE_STEPS)),
                                         replace(mixed, train=replace(mixed.train, steps=MIXED_STEPS))))


def measure(seed: int) -> dict:
    run = former_recipe()
    _, _, hist = pathstar_run(run, seed, progress=False)
    edge_stage = History(rows=[r for r in hist.rows if r["step"] <= EDGE_STEPS])
    probes = [k for k in hist.rows[-1] if k.startswith("probe_k")]
    # the step by which each reached LEVEL (the latest of their first steps; never: one past the stage's end)
    return {"key": f"{precision_label(run.precision)}|{seed}", "seed": seed, "precision": precision_label(run.precision),
            "edges_first": readable_by(edge_stage, ["edge_top1_neighbour"], LEVEL),
            "probes_first": readable_by(edge_stage, probes, LEVEL),
            "both_first": readable_by(edge_stage, ["edge_top1_neighbour", *probes], LEVEL),
            "edge_stage_steps": EDGE_STEPS, "eval_every": run.stages[0].train.eval_every,
            "mixed_heldout_full_path": {int(r["step"]): round(r["heldout_full_path"], 4)
                                        for r in hist.rows if r["step"] > EDGE_STEPS}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--fp32-seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if forced():
        print("error: unset $GEOMLIB_PRECISION; this study sets it for its fp32 series", file=sys.stderr)
        return 2
    study = Study(args.out, f"the book's main path-star run with its former stages ({EDGE_STEPS} edge steps, "
                  f"{MIXED_STEPS} mixed): the step by which edges and every ancestor probe have reached {LEVEL}, and "
                  "held-out full path over the mixed stage", command_line("benchmarks/edge_stage.py", argv),
                  level=LEVEL)
    for series, seeds in (("", args.seeds), ("fp32", args.fp32_seeds)):
        if series:
            os.environ["GEOMLIB_PRECISION"] = series
        try:
            for s in seeds:
                row = study.add(measure(s))
                print(f"{row['key']}: edges {row['edges_first']}, probes {row['probes_first']}, "
                      f"held-out full path over the mixed stage {list(row['mixed_heldout_full_path'].values())}")
        finally:
            os.environ.pop("GEOMLIB_PRECISION", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
