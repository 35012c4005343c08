"""bf16 without a bf16 CPU: the trainer's rounded-operand matmuls against PyTorch's bf16 autocast.

Where a run asks for bf16 (the release's precision; "A wide linear net" and "Knobs" need its
numerics) and the CPU has no native bf16, geomlib multiplies bf16-rounded operands in fp32 instead
of running PyTorch's emulated bf16 kernels (``geomlib.precision.bf16_context``). This runs the
chapters' bf16 recipes both ways on a CPU that has native bf16, so that the two can be compared run
by run: the linear net and its associative control on the cycle of 15 (seeds 0-2) and the knobs
(seeds 0-1), 10,000 full-batch steps each. Per run: participation ratio of the projection profile,
geometric margin and its z-score, skewed top-1, recall, and the largest difference between the two
modes' final embeddings relative to their scale.

    python benchmarks/bf16_emulation.py           # writes data/bf16_emulation.json

Needs a CPU with native bf16 (``avx512_bf16`` or ``amx_bf16``): elsewhere there is no native run
to compare with. One single-threaded process per core (``geomlib.recipes.edge_runs``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from geomlib.evaluate import edge_recall
from geomlib.geometry import geometric_margin, margin_z
from geomlib.graphs import cycle
from geomlib.precision import forced, native_bf16
from geomlib.presets import PRESETS, plain
from geomlib.recipes import edge_runs
from geomlib.spectral import eigenpairs, participation_ratio, projection_profile
from geomlib.studies import Study, command_line

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "bf16_emulation.json"


def recipes(knob_seeds: list[int], net_seeds: list[int]) -> list[tuple[str, object, int]]:
    lin, knobs = PRESETS["linear_net"]["cpu"], PRESETS["knobs"]["cpu"]
    cells = [(f"linear net: {kind}", r, s) for s in net_seeds
             for kind, r in (("net", lin.recipe), ("associative control", lin.control))]
    return cells + [(f"knobs: {label}", r, s) for s in knob_seeds for label, r in knobs.variants.items()]


def measure(model, g, seed: int) -> dict:
    E, W = model.E.detach(), model.W.detach()
    _, vecs = eigenpairs(g)
    gm = geometric_margin(E, W, g)
    return dict(pr=participation_ratio(projection_profile(E, vecs, normalise=False)), margin=gm["margin"],
                z=margin_z(E, W, g, seed=seed)["z"], skewed_top1=gm["skewed_top1"],
                recall=edge_recall(model.scores().detach(), g, "degree"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--knob-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if forced() or os.environ.get("GEOMLIB_NATIVE_BF16"):
        print("error: unset $GEOMLIB_PRECISION and $GEOMLIB_NATIVE_BF16; this study sets them", file=sys.stderr)
        return 2
    if not native_bf16("cpu"):
        print("error: this CPU has no native bf16, so there is no native run to compare with", file=sys.stderr)
        return 2
    cells = recipes(args.knob_seeds, args.net_seeds)
    n = PRESETS["linear_net"]["cpu"].n
    results, seconds = {}, {}
    # edge_runs keeps runs in the model cache: a fresh one, so that both modes train (and are timed)
    os.environ["GEOMLIB_CACHE"] = tempfile.mkdtemp(prefix="bf16_emulation-")
    for mode, flag in (("native", "1"), ("emulated", "0")):
        os.environ["GEOMLIB_NATIVE_BF16"] = flag  # the worker processes inherit it
        start = time.perf_counter()
        results[mode] = edge_runs([(cycle(n, s), r, s, dict(k="degree", eval_every=0, progress=False))
                                   for _, r, s in cells])
        seconds[mode] = round(time.perf_counter() - start, 1)
        del os.environ["GEOMLIB_NATIVE_BF16"]
    runs = []
    for i, (label, _, s) in enumerate(cells):
        g = cycle(n, s)
        (m_n, h_n), (m_e, h_e) = results["native"][i], results["emulated"][i]
        a, b = measure(m_n, g, s), measure(m_e, g, s)
        E_n, E_e = m_n.E.detach(), m_e.E.detach()
        runs.append(dict(recipe=label, seed=s, native=a, emulated=b,
                         computed_as=[h_n.meta["configs"][0]["computed_as"], h_e.meta["configs"][0]["computed_as"]],
                         embedding_rel_diff=float((E_n - E_e).abs().max() / E_n.abs().max())))
        print(f"{label:62s} seed {s}: PR {a['pr']:5.2f} / {b['pr']:5.2f}  z {a['z']:+6.2f} / {b['z']:+6.2f}  "
              f"recall {a['recall']:.2f} / {b['recall']:.2f}  |dE|/|E| {runs[-1]['embedding_rel_diff']:.1e}")
    same_side = [np.sign(r["native"]["z"] - 2) == np.sign(r["emulated"]["z"] - 2) for r in runs]
    print(f"{sum(same_side)}/{len(runs)} runs on the same side of the lookup band (z = 2) both ways; "
          f"time: native {seconds['native']} s, emulated {seconds['emulated']} s (2 processes)")
    study = Study(args.out, "the bf16 recipes of 'A wide linear net' and 'Knobs' (cycle of 15, 10,000 steps) under "
                  "PyTorch's native bf16 autocast and under geomlib's rounded-operand fp32 matmuls, run by run",
                  command_line("benchmarks/bf16_emulation.py", argv), key=lambda r: (r["recipe"], r["seed"]),
                  threads_per_process=1, seconds=seconds, recipes={label: plain(r) for label, r, _ in cells})
    for r in runs:
        study.add(r, save=False)
    study.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
