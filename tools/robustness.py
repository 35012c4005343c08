"""Run every chapter for several seeds (and in fp32) and record each claim's spread.

    python tools/robustness.py                       # seeds 0-4 at the machine's precision, seed 0 in fp32
    python tools/robustness.py --seeds 0 1 --fp32-seeds   # a subset; no fp32 run
    python tools/robustness.py --only scaling --redo     # rerun one chapter's entries

Each (chapter, precision, seed) is one ``run_book.py --only`` execution in its own build folder,
with failed claims recorded instead of stopping the chapter (``$GEOMLIB_RECORD_ONLY``) and the
model cache shared between them. After every chapter the measured claims are merged into
``data/robustness.json`` (written atomically), so the run can be stopped at any point and
started again: an entry whose chapter presets are unchanged (same hash) is not run again.
One chapter at a time, meant for a long background run (``make robustness``).

``data/robustness.json`` holds, per claim, every run's measured value and status, the minimum,
median and maximum over the seeds at the machine's precision, the pass rate, and for every run
the preset, precision, torch version, CPU model, threads, and hashes of the chapter's presets and
of the library's source.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from geomlib.cache import config_hash
from geomlib.claims import read_ledger, tally
from geomlib.fileio import locked, write_json_atomic
from geomlib.presets import PRESETS, plain
from geomlib.provenance import git_commit, hardware, library_fingerprint
from geomlib.train import resolve_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebooks import chapters  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "robustness.json"
COMMAND = "make robustness"

def preset_hash(chapter: str, preset: str = "cpu") -> str:
    """A hash of every value of ``chapter``'s preset ``preset`` (its typed preset holds every run it
    makes, including any value shared with another chapter): what makes an entry stale."""
    return config_hash({"chapter": chapter, "preset": plain(PRESETS[chapter][preset])})


def summarise(runs: dict, precision: str) -> dict:
    """Per claim: every run, and over the runs at ``precision`` the spread and pass rate."""
    claims: dict[str, dict] = {}
    for run in sorted(runs.values(), key=lambda r: (r["chapter"], r["precision"], r["seed"])):
        for cid, c in run["claims"].items():
            entry = claims.setdefault(cid, {"chapter": run["chapter"], "op": c["op"], "threshold": c["threshold"],
                                            "runs": []})
            entry["runs"].append({"seed": run["seed"], "precision": run["precision"], "measured": c["measured"],
                                  "status": c["status"], "threshold": c["threshold"]})
    for entry in claims.values():
        tally(entry, precision)
    return claims


def record(out: Path, key: str, run: dict, precision: str) -> None:
    with locked(out):
        data = json.loads(out.read_text()) if out.exists() else {}
        runs = data.get("runs", {})
        runs[key] = run
        write_json_atomic(out, {
            "what": "every claim of the book at the default preset, over seeds and precisions",
            "command": COMMAND, "precision": precision, "updated": time.strftime("%Y-%m-%d %H:%M"),
            "claims": summarise(runs, precision), "runs": runs})


def run_chapter(chapter: str, seed: int, precision: str, build: Path, preset: str) -> tuple[dict, float, str]:
    """Execute one chapter; return its ledger rows, wall seconds and an error line ("" if none)."""
    folder = build / f"{precision}-seed{seed}"
    env = dict(os.environ, GEOMLIB_RECORD_ONLY="1", GEOMLIB_CACHE=str(build / "cache"))
    env.pop("GEOMLIB_LEDGER", None)
    if precision == "fp32":
        env["GEOMLIB_PRECISION"] = "fp32"
    else:
        env.pop("GEOMLIB_PRECISION", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "run_book.py"), "--only", chapter, "--seed", str(seed),
                           "--preset", preset, "--build", str(folder), "--no-html"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    error = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
    ledger = read_ledger(folder / "ledger.json")
    return {k: v for k, v in ledger.items() if v["chapter"] == chapter}, seconds, error


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    ap.add_argument("--fp32-seeds", type=int, nargs="*", default=[0], help="seeds also run in fp32")
    ap.add_argument("--only", nargs="+", default=None, metavar="CHAPTER")
    ap.add_argument("--redo", action="store_true", help="run the chosen entries again even if they are recorded")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--build", type=Path, default=ROOT / "build" / "robustness")
    args = ap.parse_args(argv)
    book = ROOT / "book"
    names = [c for c in chapters(book) if c != "report"]
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            print(f"error: unknown chapter(s) {sorted(unknown)}; known: {names}", file=sys.stderr)
            return 2
        names = [c for c in names if c in args.only]
    native = resolve_precision("auto")
    plan = [(native, s) for s in args.seeds] + [("fp32", s) for s in args.fp32_seeds if native != "fp32"]
    done = json.loads(args.out.read_text()).get("runs", {}) if args.out.exists() else {}
    todo = []
    for precision, seed in plan:  # a seed at a time: every chapter gets its first seeds first
        for ch in names:
            key = f"{ch}|{precision}|{seed}"
            if not args.redo and done.get(key, {}).get("preset_hash") == preset_hash(ch, args.preset):
                continue
            todo.append((ch, precision, seed, key))
    print(f"{len(todo)} chapter run(s) to do ({len(plan) * len(names) - len(todo)} already recorded) -> {args.out}",
          flush=True)
    for i, (ch, precision, seed, key) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {ch}, {precision}, seed {seed} ...", end=" ", flush=True)
        rows, seconds, error = run_chapter(ch, seed, precision, args.build, args.preset)
        run = {"chapter": ch, "seed": seed, "precision": precision, "preset": args.preset,
               "preset_hash": preset_hash(ch, args.preset), "library": library_fingerprint(),
               "commit": git_commit(), "torch": torch.__version__, "cpu": hardware(),
               "threads": torch.get_num_threads(), "seconds": round(seconds, 1), "error": error,
               "claims": {k: {f: v[f] for f in ("measured", "op", "threshold", "status")} for k, v in rows.items()}}
        record(args.out, key, run, native)
        fails = [k for k, v in rows.items() if v["status"] != "pass"]
        print(f"{seconds:.0f} s, {len(rows)} claims" + (f", not passing: {fails}" if fails else "")
              + (f", ERROR: {error}" if error else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
