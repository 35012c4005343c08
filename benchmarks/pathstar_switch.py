"""Time-to-accuracy study for the in-weights path-star task on this machine.

Runs one recipe variant (by name) from VARIANTS and appends one JSON line per run to
benchmarks/results/pathstar_switch.jsonl: held-out full-path accuracy over training with wall
time, the first time it reaches 0.9, and the setting. Usage:

    python benchmarks/pathstar_switch.py VARIANT [--seed S] [--minutes M]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from geomlib.presets import GPT, PathStarRun, Stage, plain
from geomlib.recipes import timed_pathstar_run
from geomlib.studies import Study, command_line
from geomlib.train import TrainConfig

BASE = PathStarRun(
    d=500, l=5, model=GPT(n_layer=2, n_head=4, n_embd=128), precision="bf16", eval_every=250,
    stages=(Stage("edges", TrainConfig(steps=1000, lr=1e-2, warmup=50, weight_decay=0.01, final_lr_ratio=0.1)),
            Stage("mixed", TrainConfig(steps=20000, lr=1e-3, schedule="constant", weight_decay=0.5), batch=2048)))


def variant(**mixed) -> PathStarRun:
    """BASE with the mixed stage's settings changed (and ``d``, ``task`` options or ``edge_steps``)."""
    edges, mix = BASE.stages
    if "edge_steps" in mixed:
        edges = replace(edges, train=replace(edges.train, steps=mixed.pop("edge_steps")))
    top = {k: mixed.pop(k) for k in list(mixed) if k in ("d", "l", "model")}
    top.update(mixed.pop("task", {}))
    stage = {k: mixed.pop(k) for k in list(mixed) if k in ("batch", "path_fraction")}
    return replace(BASE, stages=(edges, replace(mix, train=replace(mix.train, **mixed), **stage)), **top)


VARIANTS = {
    "reference": variant(),
    "lr2e-3_wd1": variant(lr=2e-3, weight_decay=1.0),
    "lr2e-3_wd1_p25": variant(lr=2e-3, weight_decay=1.0, path_fraction=0.25),
    "lr2e-3_wd1_p50": variant(lr=2e-3, weight_decay=1.0, path_fraction=0.5),
    "lr3e-3_wd1_p25": variant(lr=3e-3, weight_decay=1.0, path_fraction=0.25),
    "lr2e-3_wd2_p25": variant(lr=2e-3, weight_decay=2.0, path_fraction=0.25),
    "lr2e-3_wd1_p25_b1024": variant(lr=2e-3, weight_decay=1.0, path_fraction=0.25, batch=1024),
    "d250_lr2e-3_wd1_p25": variant(d=250, lr=2e-3, weight_decay=1.0, path_fraction=0.25),
    "hard_lr2e-3_wd1_p25": variant(task=dict(hardest_token=True), lr=2e-3, weight_decay=1.0, path_fraction=0.25),
    "e500_lr2e-3_wd1_p25": variant(edge_steps=500, lr=2e-3, weight_decay=1.0, path_fraction=0.25),
    "e300_lr2e-3_wd1_p25": variant(edge_steps=300, lr=2e-3, weight_decay=1.0, path_fraction=0.25),
    "e500_lr2e-3_wd1_p50": variant(edge_steps=500, lr=2e-3, weight_decay=1.0, path_fraction=0.5),
    "e500_lr2e-3_wd0.1_p25": variant(edge_steps=500, lr=2e-3, weight_decay=0.1, path_fraction=0.25),
    "e500_lr1e-3_wd0.5_p25": variant(edge_steps=500, lr=1e-3, weight_decay=0.5, path_fraction=0.25),
    "e300_wsd1200_p25": variant(edge_steps=300, lr=2e-3, weight_decay=1.0, path_fraction=0.25, steps=1200,
                                schedule="wsd", decay_fraction=0.5, final_lr_ratio=0.05),
}
_WSD = dict(edge_steps=300, lr=2e-3, weight_decay=1.0, steps=1200, schedule="wsd", decay_fraction=0.5, final_lr_ratio=0.05)
VARIANTS.update({
    "e300_wsd1200_natural": variant(**_WSD),
    "e300_wsd1200_p25_wd0.1": variant(**dict(_WSD, weight_decay=0.1), path_fraction=0.25),
    "e300_wsd1200_p50": variant(**_WSD, path_fraction=0.5),
    "hard_e300_wsd1200_p25": variant(task=dict(hardest_token=True), **_WSD, path_fraction=0.25),
    "e300_wsd1200_p25_decay0.8": variant(**dict(_WSD, decay_fraction=0.8), path_fraction=0.25),
    "e300_cos1200_p25": variant(**dict(_WSD, schedule="cosine"), path_fraction=0.25),
    "e300_wsd1200_p25_wd2": variant(**dict(_WSD, weight_decay=2.0), path_fraction=0.25),
})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=12.0, help="wall-clock budget; the run stops after it")
    args = ap.parse_args()
    cfg = VARIANTS[args.variant]

    def log(row):
        print(f"[{row['seconds']:6.0f}s] step {row['step']:6d} " + " ".join(
            f"{k}={row[k]:.3f}" for k in ("heldout_full_path", "heldout_n1", "probe", "train_full_path") if k in row), flush=True)

    _, _, hist = timed_pathstar_run(cfg, args.seed, args.minutes * 60, on_eval=log, progress=False)
    rows = hist.rows
    t90 = next((r["seconds"] for r in rows if r.get("heldout_full_path", 0) >= 0.9), None)
    study = Study(Path(__file__).parent / "results" / "pathstar_switch.json",
                  "the book's former path-star recipe (d = 500, l = 5) and its variants: seconds to held-out full path "
                  "0.9 on 2 cores, one variant and seed per run", command_line("benchmarks/pathstar_switch.py"),
                  key=lambda r: (r["variant"], r["seed"]))
    out = study.add(dict(variant=args.variant, seed=args.seed, config=plain(cfg), seconds_to_0_9=t90,
                         best_heldout_full_path=max(r.get("heldout_full_path", 0) for r in rows),
                         heldout_full_path=rows[-1].get("heldout_full_path"),
                         curve=[[r["step"], r["seconds"], r.get("heldout_full_path"), r.get("heldout_n1"), r.get("probe"),
                                 r.get("train_full_path")] for r in rows]))
    print(json.dumps({k: v for k, v in out.items() if k not in ("curve", "config")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
