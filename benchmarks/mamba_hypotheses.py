"""Why did the book's first Mamba memorise every edge and training path, build a perfect geometry
probe, and still not find held-out paths? One hypothesis at a time, from the `mamba_too`
chapter's cell (`mamba_too` cpu preset: d = 200 arms, l = 5, 2 x 128, the phase diagram's
recipe with the stages these runs were made with, ``MAMBA_FORMER_STAGES``: 300 edge, 400 mixed)
with the reference-style block it first used, each run's held-out full path (final and best), n1,
probe, training paths, steps and minutes written to ``data/mamba_hypotheses.json`` after every run,
with the command, commit and machine. Runs go through the model cache, so an interrupted sweep continues.

    python benchmarks/mamba_hypotheses.py                 # every variant, seed 0
    python benchmarks/mamba_hypotheses.py --only baseline "no decay on SSM parameters" --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from geomlib.presets import Mamba, PathStarRun, get_preset, plain
from geomlib.presets.pathstar import MAMBA_FORMER_STAGES
from geomlib.recipes import pathstar_run
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]

# name -> (model changes, mixed-stage changes, why)
VARIANTS = {
    "baseline": ({}, {}, "the mamba_too chapter's recipe"),
    "no decay on SSM parameters": (dict(no_decay_ssm=True), {},
                                   "reference Mamba exempts A_log, D, the conv and biases from weight decay"),
    "release weight decay 0.01": ({}, dict(weight_decay=0.01), "the release's AdamW weight decay"),
    "release lr 5e-4": ({}, dict(lr=5e-4), "the release's learning rate"),
    "natural path share": ({}, dict(path_fraction=None), "paths at their natural share of the mixed data"),
    "betas (0.9, 0.999), no clip": ({}, dict(betas=(0.9, 0.999), grad_clip=None), "the release's optimizer"),
    "release block (no residual, no final norm)": (dict(residual=False, final_norm=False), {},
                                                   "the release applies Mamba(LayerNorm(x)) with no residual"),
    "release init (Linear N(0, 0.02), zero biases)": (dict(release_init=True), {},
                                                      "the release re-initialises every Linear; dt = softplus(0)"),
    "capacity 2x256": (dict(d_model=256), {}, "twice the width"),
    "capacity 4x256": (dict(n_layer=4, d_model=256), {}, "twice the depth and width"),
    # combinations of what helped one at a time
    "release block + release init": (dict(residual=False, final_norm=False, release_init=True), {},
                                     "the release's block and init together"),
    "release block + lr 5e-4": (dict(residual=False, final_norm=False), dict(lr=5e-4),
                                "the release's block and learning rate"),
    "release block + release init + lr 5e-4": (dict(residual=False, final_norm=False, release_init=True),
                                               dict(lr=5e-4), "the release's block, init and learning rate"),
}


def variant_config(name: str) -> PathStarRun:
    cfg = get_preset("mamba_too", "cpu").run
    model, mixed, _ = VARIANTS[name]
    # the hypotheses start from the reference-style block the chapter first used (residual, final
    # norm, dt in [1e-3, 0.1]); the chapter now uses the release's block, the winner below
    reference = Mamba(n_layer=cfg.model.n_layer, d_model=cfg.model.d_model)
    edges, mix = MAMBA_FORMER_STAGES  # the stages data/mamba_hypotheses.json was made with
    stage = {k: v for k, v in mixed.items() if k in ("path_fraction", "batch")}  # the rest are training values
    train = {k: v for k, v in mixed.items() if k not in stage}
    return replace(cfg, model=replace(reference, **model),
                   stages=(edges, replace(mix, **stage, train=replace(mix.train, **train))))


def summary(name: str, seed: int, cfg: PathStarRun, hist, minutes: float) -> dict:
    full = hist["heldout_full_path"]
    return dict(variant=name, why=VARIANTS[name][2], seed=seed, heldout_full_path=hist.last["heldout_full_path"],
                best_heldout_full_path=float(full.max()), heldout_n1=hist.last["heldout_n1"], probe=hist.last["probe"],
                train_full_path=hist.last["train_full_path"], steps=int(hist.last["step"]),
                train_minutes=round(hist.last["seconds"] / 60, 2), wall_minutes=round(minutes, 2),
                model=plain(cfg.model), mixed_stage=plain(cfg.stages[1]),
                curve=[[r["step"], r.get("heldout_full_path"), r.get("heldout_n1"), r.get("probe"), r.get("train_full_path")]
                       for r in hist.rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", default=None, choices=list(VARIANTS), metavar="VARIANT")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "mamba_hypotheses.json")
    args = ap.parse_args(argv)
    names = args.only or list(VARIANTS)
    order = {v: i for i, v in enumerate(VARIANTS)}  # the table's rows in the order of VARIANTS
    study = Study(args.out, "Mamba hypotheses on the mamba_too cell (the mamba_too cpu preset), one change at a time",
                  command_line("benchmarks/mamba_hypotheses.py", argv), key=lambda r: (r["variant"], r["seed"]),
                  order=lambda r: (order.get(r["variant"], len(order)), r["seed"]))
    for name in names:
        for seed in args.seeds:
            cfg = variant_config(name)
            start = time.time()
            _, _, hist = pathstar_run(cfg, seed, progress=False)
            r = study.add(summary(name, seed, cfg, hist, (time.time() - start) / 60))
            print(f"{name:48s} seed {seed}: held-out full {r['heldout_full_path']:.3f} (best "
                  f"{r['best_heldout_full_path']:.3f}), n1 {r['heldout_n1']:.3f}, probe {r['probe']:.2f}, "
                  f"train {r['train_full_path']:.2f}, {r['train_minutes']:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
