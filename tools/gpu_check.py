"""The prepared GPU check: one command, within a time budget, one JSON per part under ``--out``.

    python tools/gpu_check.py --out gpu_results/               # on a lent GPU (about 8 minutes)
    python tools/gpu_check.py --out /tmp/gpu --dry-run          # on a CPU: every part at toy size (CI)

Parts, in priority order (a part that does not fit the remaining budget is written as skipped):

1. ``environment``: the device, its compute capability, whether it computes bf16 natively, what
   ``"auto"`` precision resolves to, torch and Python versions.
2. ``resume``: a short path-star run stopped after its third checkpoint and resumed on this device
   (the path that crashed on CUDA), compared value for value with the same run uninterrupted.
3. ``paper_step``: the ``paper`` preset's model and graph (d = 10^4, l = 6, 12 x 384 GPT) trained for
   a few hundred mixed-stage steps without evaluation: steps/s, examples/s and peak memory, in the
   precision the preset resolves to here.
4. ``chapter-<name>``: chapters executed at their default preset on this device (``run_book.py
   --only``), in the order of ``CHAPTERS`` while the budget lasts: seconds, and each claim's value,
   status, precision and device from the ledger.

``--dry-run`` runs parts 1-3 at toy size on whatever device there is and plans part 4 without
executing a chapter: it tests the script's wiring in ``make test``. Every JSON names the commit,
the device and the command; ``summary.json`` lists the parts and their status.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
try:  # a lent machine may have torch but not this repository's install: use its source folder
    import geomlib  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))

from geomlib.fileio import write_json_atomic  # noqa: E402
from geomlib.precision import check_environment, native_bf16, precision_label, resolve_precision  # noqa: E402
from geomlib.presets import GPT, PATHSTAR_CPU, get_preset  # noqa: E402
from geomlib.recipes import build_pathstar, pathstar_run, stage_batches  # noqa: E402
from geomlib.studies import command_line, machine, provenance  # noqa: E402
from geomlib.train import default_device, train  # noqa: E402

#: Chapters in the order the GPU check runs them: the headline and the claims that share its run
#: first, then the chapters whose CPU time is longest (where a GPU helps most), then the rest.
CHAPTERS = ("path_finding_from_memory", "hardest_token", "geometry_explains", "mamba_too", "no_reverse_cascade",
            "scaling", "interventions", "knobs", "linear_net", "geometry_from_local_supervision", "headroom",
            "spectral_bias", "unclear_why", "associative_vs_geometric")


def environment() -> dict:
    device = default_device()
    out = {"device": str(device), **machine(), "python": platform.python_version(), "native_bf16": native_bf16(device),
           "auto_precision": precision_label(resolve_precision("auto", device), device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(capability=f"{props.major}.{props.minor}", memory_gib=round(props.total_memory / 2**30, 1))
    return out


def _tiny_resumable_run():
    edges, mixed = PATHSTAR_CPU.stages
    return replace(PATHSTAR_CPU, d=8, l=4, precision="fp32", eval_every=2, model=GPT(n_layer=1, n_head=2, n_embd=16),
                   stages=(replace(edges, train=replace(edges.train, steps=6, eval_every=2)),
                           replace(mixed, batch=16, train=replace(mixed.train, steps=6, eval_every=2))))


def resume_check(cache: Path) -> dict:
    """A run stopped after its third checkpoint and resumed, against the same run uninterrupted."""
    import os

    class Stop(Exception):
        pass

    saves = []

    def stop_at_third(history):
        saves.append(1)
        if len(saves) == 3:
            raise Stop

    run = _tiny_resumable_run()
    for folder in ("resumed", "straight"):  # a fresh cache every time: a second check into one --out runs it again
        shutil.rmtree(cache / folder, ignore_errors=True)
    before = os.environ.get("GEOMLIB_CACHE")
    try:
        os.environ["GEOMLIB_CACHE"] = str(cache / "resumed")
        try:
            pathstar_run(run, resumable=True, progress=False, on_checkpoint=stop_at_third)
        except Stop:
            pass
        _, resumed_model, resumed = pathstar_run(run, resumable=True, progress=False)
        os.environ["GEOMLIB_CACHE"] = str(cache / "straight")
        _, straight_model, straight = pathstar_run(run, resumable=False, progress=False)
    finally:  # the chapters after this part use the book's own cache
        if before is None:
            os.environ.pop("GEOMLIB_CACHE", None)
        else:
            os.environ["GEOMLIB_CACHE"] = before
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in h.rows] for h in (resumed, straight)]
    same_weights = all(torch.equal(a, b) for a, b in zip(resumed_model.state_dict().values(),
                                                          straight_model.state_dict().values()))
    return {"resumed_at_save": 3, "same_curve": untimed[0] == untimed[1], "same_weights": same_weights,
            "sessions": resumed.meta.get("sessions", []), "steps": resumed.last["step"]}


def paper_step(steps: int, dry_run: bool) -> dict:
    """Training speed and memory of the ``paper`` preset's path-star run (its mixed stage)."""
    run = get_preset("path_finding_from_memory", "paper").run
    if dry_run:  # the paper's graph, a toy model and batch: the wiring, in seconds on a CPU
        run = replace(run, model=replace(run.model, n_layer=1, n_head=2, n_embd=16),
                      stages=tuple(replace(st, batch=64) for st in run.stages))
    stage = run.stages[-1]
    task, model = build_pathstar(run, 0)
    device = next(model.parameters()).device
    streams, sizes = stage_batches(task, stage.data, stage.batch, stage.path_fraction)
    cfg = replace(stage.train, steps=steps, eval_every=0, batch_size=sizes, precision=run.precision, warmup=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    hist = train(model, streams, cfg, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    batch = sum(v for v in sizes.values() if v) or sum(len(v) for v in streams.values())
    return {"d": run.d, "l": run.l, "model": f"{run.model.n_layer}x{run.model.n_embd}", "batch": batch, "steps": steps,
            "seconds": round(seconds, 2), "steps_per_s": round(steps / seconds, 2),
            "examples_per_s": round(steps * batch / seconds), "precision": hist.meta["configs"][0]["computed_as"],
            "final_loss": hist.last.get("loss"),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None}


def chapter(name: str, build: Path, timeout_s: int) -> dict:
    import run_book

    start = time.perf_counter()
    code = run_book.main(["--only", name, "--no-html", "--build", str(build), "--cell-timeout", str(max(60, timeout_s))])
    seconds = time.perf_counter() - start
    ledger = json.loads((build / "ledger.json").read_text()) if (build / "ledger.json").exists() else {}
    claims = {cid: {f: row.get(f) for f in ("measured", "op", "threshold", "status", "precision", "device")}
              for cid, row in ledger.items() if row.get("chapter") == name}
    return {"exit_code": code, "seconds": round(seconds, 1), "claims": claims}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for one JSON per part")
    ap.add_argument("--budget-s", type=int, default=480, help="stop starting parts after this many seconds")
    ap.add_argument("--paper-steps", type=int, default=300, help="training steps of the paper_step part")
    ap.add_argument("--only", nargs="+", default=None, metavar="CHAPTER", help="chapters to run (default: all, "
                    "in priority order)")
    ap.add_argument("--dry-run", action="store_true", help="toy sizes, no chapter executed (tests the script)")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} is a file; it must be a folder", file=sys.stderr)
        return 2
    unknown = set(args.only or ()) - set(CHAPTERS)
    if unknown:
        print(f"error: unknown chapter(s) {sorted(unknown)}; choose from {list(CHAPTERS)}", file=sys.stderr)
        return 2
    if args.budget_s < 1 or args.paper_steps < 1:
        print("error: --budget-s and --paper-steps must be >= 1", file=sys.stderr)
        return 2
    try:
        check_environment()  # e.g. $GEOMLIB_PRECISION: refused here, not in the middle of a part
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    common = {**provenance("the GPU path's check: every chapter's runs on this device, and the paper-scale steps",
                           command_line("tools/gpu_check.py", argv)), "device": str(default_device()),
              "dry_run": args.dry_run}
    summary = {}

    def part(name: str, fn, *a) -> None:
        left = args.budget_s - (time.perf_counter() - t0)
        if left <= 0:
            doc = {"status": "skipped: out of budget"}
        else:
            start = time.perf_counter()
            try:
                doc = {"status": "done", **fn(*a)}
            except Exception as e:  # noqa: BLE001 - one failed part must not lose the others
                doc = {"status": f"failed: {type(e).__name__}: {e}"}
            doc["part_seconds"] = round(time.perf_counter() - start, 1)
        write_json_atomic(args.out / f"{name}.json", {"part": name, **common, **doc})
        summary[name] = doc["status"]
        print(f"{name}: {doc['status']}", flush=True)

    part("environment", environment)
    part("resume", resume_check, args.out / "cache")
    part("paper_step", paper_step, 3 if args.dry_run else args.paper_steps, args.dry_run)
    for name in [c for c in CHAPTERS if args.only is None or c in args.only]:
        if args.dry_run:
            write_json_atomic(args.out / f"chapter-{name}.json", {"part": f"chapter-{name}", **common,
                                                                  "status": "planned (dry run)"})
            summary[f"chapter-{name}"] = "planned (dry run)"
            continue
        part(f"chapter-{name}", lambda n=name: chapter(n, args.out / "build", int(args.budget_s - (time.perf_counter() - t0))))
    write_json_atomic(args.out / "summary.json", {**common, "seconds": round(time.perf_counter() - t0, 1), "parts": summary})
    failed = [k for k, v in summary.items() if v.startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
