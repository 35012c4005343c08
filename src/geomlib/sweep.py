"""The phase diagram of path-finding from memory, as cells, and a sweep runner for many machines.

A *cell* is one path-star configuration (one point on an axis: arms ``d``, path length ``l`` or
model size, around a centre cell). :func:`phase_diagram_cells` lays them out from a ``scaling``
preset; :func:`cell_row` reduces a trained cell's history to the row the ``scaling`` chapter
tabulates and plots.

:func:`run_sweep` runs cells x seeds as jobs through `submitit`: its local executor by default
(one job at a time on a laptop, or ``parallel`` at once), or SLURM on a cluster. Each job writes
its row as ``<out>/cells/<name>-<hash>.json``; a finished cell is never recomputed, so a sweep that
was stopped (or whose jobs partly failed) is resumed by running the same command again. The
collected rows land in ``<out>/<name>.json`` in the chapter's format (``rows``, ``command``,
``commit``, ``hardware``), ready to ship in ``data/``::

    python -m geomlib.sweep --preset paper --seeds 0 1 2 --executor slurm --out sweep/ \\
        --slurm slurm_partition=gpu gpus_per_node=1
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

from .cache import config_hash
from .fileio import write_json_atomic
from .precision import check_environment
from .presets import PathStarRun, Scaling, get_preset, plain
from .provenance import library_fingerprint
from .studies import machine, provenance
from .validate import check_seed

__all__ = ["phase_diagram_cells", "cell_row", "probe_first_share", "run_cell", "run_sweep", "collect"]


def phase_diagram_cells(cfg: Scaling) -> dict[tuple[str, object], PathStarRun]:
    """``{(axis, value): path-star run}`` for a ``Scaling`` preset (the scaling chapter's): one axis
    at a time around its ``base`` cell (arms ``d``, path length ``l``, model ``layers x width``)."""
    base = cfg.base
    cells = {}
    for d in cfg.arms:
        cells["arms d", d] = replace(base, d=d)
    for l in cfg.lengths:
        cells["path length l", l] = replace(base, l=l)
    for n_layer, width in cfg.sizes:
        cells["model (layers x width)", f"{n_layer}x{width}"] = replace(base, model=replace(base.model, n_layer=n_layer,
                                                                                          n_embd=width))
    return cells


def cell_row(axis: str, value, cfg: PathStarRun, hist) -> dict:
    """One cell's result: held-out full path at the end and at its best, held-out ``n1`` at the end,
    the geometry probe at the end of the edge stage, when the probe and ``n1`` first switched on,
    training seconds."""
    edge_end = cfg.stages[0].train.steps
    return dict(axis=axis, value=value, d=cfg.d, l=cfg.l, heldout_full_path=hist.last["heldout_full_path"],
                best_heldout_full_path=max(hist["heldout_full_path"]), heldout_n1=hist.last["heldout_n1"],
                probe_edges=hist.at(edge_end)["probe"], probe_first=hist.first_step("probe", 0.9),
                n1_first=hist.first_step("heldout_n1", 0.5),
                seconds=hist.last["seconds"])


def probe_first_share(rows: list[dict]) -> tuple[float, int]:
    """Among the cells whose held-out ``n1`` switched on (reached 0.5), the share whose geometry
    probe had reached 0.9 at an *earlier* evaluation; and how many cells switched on (0.0, 0 when
    none did: nothing switched, nothing to credit)."""
    switched = [r for r in rows if r["n1_first"] is not None]
    if not switched:
        return 0.0, 0
    return sum(r["probe_first"] is not None and r["probe_first"] < r["n1_first"] for r in switched) / len(switched), \
        len(switched)


def _cell_file(out: Path, name: str, axis: str, value, cfg: PathStarRun, seed: int) -> Path:
    """A cell's row file, named by what decides its numbers: the cell, its config and seed, the
    geomlib code that changes numbers and the torch version (the notion the model cache uses). A
    row written by other code is not this file: it is left alone and reported, never mixed in."""
    import torch

    key = {"axis": axis, "value": value, "config": plain(cfg), "seed": seed, "geomlib": library_fingerprint(),
           "torch": torch.__version__}
    return out / "cells" / f"{name}-{config_hash(key)}.json"


def run_cell(axis: str, value, cfg: PathStarRun, seed: int, out: str, name: str = "scaling") -> dict:
    """Train one cell (through the model cache) and write its row; a job of :func:`run_sweep`."""
    from .recipes import pathstar_run

    path = _cell_file(Path(out), name, axis, value, cfg, seed)
    _, _, hist = pathstar_run(cfg, seed=seed, progress=False)
    row = {**cell_row(axis, value, cfg, hist), "seed": seed, "config": plain(cfg), **machine()}
    write_json_atomic(path, row)
    return row


def _executor(kind: str, folder: Path, timeout_min: int, slurm: dict):
    import submitit

    if kind == "local":
        ex = submitit.LocalExecutor(folder=str(folder))
        ex.update_parameters(timeout_min=timeout_min)
    elif kind == "debug":  # in this process: for debugging a cell with pdb
        ex = submitit.DebugExecutor(folder=str(folder))
    elif kind == "slurm":
        ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        ex.update_parameters(timeout_min=timeout_min, **slurm)  # submitit's names: slurm_partition, gpus_per_node...
    else:
        raise ValueError(f"executor must be 'local', 'slurm' or 'debug', got {kind!r}")
    return ex


def run_sweep(cells: dict[tuple[str, object], PathStarRun], seeds, out: Path | str, *, name: str = "scaling",
              executor: str = "local", parallel: int = 1, timeout_min: int = 600, slurm: dict | None = None,
              command: str = "") -> dict:
    """Run every cell for every seed as a job, skipping cells whose row is already in ``out``;
    then collect the rows into ``<out>/<name>.json`` and return that document.

    ``parallel``: jobs in flight at once (the local executor starts each job as a process; on a
    cluster, pass the number of GPUs you may hold). A job that fails is reported with its log
    folder; its cell stays missing and is run again next time."""
    seeds = [check_seed(s) for s in seeds]
    if executor not in ("local", "slurm", "debug"):
        raise ValueError(f"executor must be 'local', 'slurm' or 'debug', got {executor!r}")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"parallel must be an integer >= 1, got {parallel!r}")
    if isinstance(timeout_min, bool) or not isinstance(timeout_min, int) or timeout_min < 1:
        raise ValueError(f"timeout_min must be an integer >= 1 (minutes), got {timeout_min!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; it must be a folder (for cell rows, logs and the collected JSON)")
    try:
        (out / "cells").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot make the sweep folder {out / 'cells'}: {e.strerror or e}") from None
    todo = [(axis, value, cfg, seed) for (axis, value), cfg in cells.items() for seed in seeds
            if not _cell_file(out, name, axis, value, cfg, seed).exists()]
    print(f"sweep {name}: {len(cells) * len(seeds)} cell(s) x seed(s), {len(todo)} to run "
          f"({executor} executor, {parallel} at a time)")
    ex = _executor(executor, out / "logs", timeout_min, slurm or {})
    failures = []
    for i in range(0, len(todo), parallel):
        wave = [(t, ex.submit(run_cell, *t, str(out), name)) for t in todo[i:i + parallel]]
        for (axis, value, _, seed), job in wave:
            try:
                job.result()
                print(f"  done: {axis}={value}, seed {seed}")
            except Exception as e:  # noqa: BLE001 - one failed cell must not lose the others
                failures.append(f"{axis}={value}, seed {seed}: {type(e).__name__}: {str(e).splitlines()[-1:]}"
                                f" (logs: {out / 'logs'})")
    doc = collect(out, name, cells, seeds, command=command)
    if failures:
        raise RuntimeError(f"{len(failures)} cell(s) failed; run the same command again to retry them:\n  "
                           + "\n  ".join(failures))
    return doc


def collect(out: Path | str, name: str, cells: dict, seeds, command: str = "") -> dict:
    """Gather the rows of ``cells`` x ``seeds`` that exist in ``out`` into ``<out>/<name>.json``."""
    out = Path(out)
    files = [_cell_file(out, name, axis, value, cfg, seed) for (axis, value), cfg in cells.items() for seed in seeds]
    rows = [json.loads(p.read_text()) for p in files if p.exists()]
    other = sorted(set((out / "cells").glob(f"{name}-*.json")) - set(files))
    if other:
        print(f"sweep {name}: {len(other)} row file(s) in {out / 'cells'} come from other code, another torch or "
              "cells outside this sweep; they are left out of the collected rows")
    machines = sorted({r.get("hardware", "?") for r in rows})
    doc = {**provenance(f"the {name} sweep: one row per cell and seed", command, name=name,
                        hardware=", ".join(machines) or "none"), "host": platform.node(),
           "written": time.strftime("%Y-%m-%d %H:%M:%S"), "cells": len(cells) * len(seeds), "finished": len(rows),
           "left_out": len(other), "rows": rows}
    write_json_atomic(out / f"{name}.json", doc)
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run the phase diagram of path-finding from memory as a sweep.")
    ap.add_argument("--preset", default="cpu", help="the scaling chapter's preset (cpu or paper)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for cell rows, logs and the collected JSON")
    ap.add_argument("--executor", default="local", choices=["local", "slurm", "debug"])
    ap.add_argument("--parallel", type=int, default=1, help="jobs in flight at once")
    ap.add_argument("--timeout-min", type=int, default=600)
    ap.add_argument("--slurm", nargs="*", default=[], metavar="KEY=VALUE",
                    help="submitit's SLURM parameters, e.g. slurm_partition=gpu gpus_per_node=1")
    args = ap.parse_args(argv)
    try:
        check_environment()
        cfg = get_preset("scaling", args.preset)
        bad = [kv for kv in args.slurm if "=" not in kv]
        if bad:
            raise ValueError(f"--slurm takes KEY=VALUE pairs, got {bad}")
        slurm = {k: int(v) if v.isdigit() else v for k, v in (kv.split("=", 1) for kv in args.slurm)}
        for s in args.seeds:
            check_seed(s, "--seeds")
    except (KeyError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python -m geomlib.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        doc = run_sweep(phase_diagram_cells(cfg), args.seeds, args.out, executor=args.executor,
                        parallel=args.parallel, timeout_min=args.timeout_min, slurm=slurm, command=command)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{doc['finished']} of {doc['cells']} cells in {args.out / (doc['name'] + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
