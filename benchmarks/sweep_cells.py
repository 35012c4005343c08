"""Wall time of a sweep's path-star cells: single-threaded runs one per CPU core
(``geomlib.recipes.pathstar_runs``, as the "scaling" and "interventions" chapters run them) against
the same cells one after the other on all the process's threads (``pathstar_run`` in a loop).

    python benchmarks/sweep_cells.py --mode workers   # or: --mode threads
    python benchmarks/sweep_cells.py --mode threads --cells 2

Each call trains ``--cells`` cells of the interventions chapter's plain d = 50 recipe (seeds 0, 1,
...) into a fresh temporary cache, so nothing is loaded, and prints the wall time. Time both modes
with a command timer, several runs each: the machine's speed drifts between runs.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("workers", "threads"), required=True)
    ap.add_argument("--cells", type=int, default=2)
    args = ap.parse_args(argv)
    if args.cells < 1:
        ap.error(f"--cells must be at least 1, got {args.cells}")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GEOMLIB_CACHE"] = cache
        from geomlib.presets import get_preset
        from geomlib.recipes import pathstar_run, pathstar_runs

        run = get_preset("interventions").variants["plain"]
        jobs = [(run, s) for s in range(args.cells)]
        start = time.perf_counter()
        if args.mode == "workers":
            results = pathstar_runs(jobs, progress=False)
        else:
            results = [pathstar_run(r, s, progress=False) for r, s in jobs]
        wall = time.perf_counter() - start
    finals = [round(h.last["heldout_full_path"], 2) for _, _, h in results]
    print(f"{args.mode}: {args.cells} cells (d = {run.d}, l = {run.l}) in {wall:.1f} s on {torch.get_num_threads()} "
          f"threads' machine; held-out full path {finals}")


if __name__ == "__main__":
    main()
