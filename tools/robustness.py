"""Run every chapter for several seeds (and in fp32) and record each claim's spread.

    python tools/robustness.py                       # seeds 0-4 as the book runs, seed 0 forced to fp32
    python tools/robustness.py --seeds 0 1 --fp32-seeds   # a subset; no fp32 run
    python tools/robustness.py --only scaling --redo     # rerun one chapter's entries

Each (chapter, series, seed) is one ``run_book.py --only`` execution in its own build folder,
with failed claims recorded instead of stopping the chapter (``$GEOMLIB_RECORD_ONLY``) and the
model cache shared between them. After every chapter the measured claims are merged into
``data/robustness.json`` (written atomically), so the run can be stopped at any point and
started again: an entry whose chapter presets are unchanged (same hash) is not run again.
One chapter at a time, meant for a long background run (``make robustness``).

Two series: ``default`` (the book as it runs on this machine: each run in the precision its preset
asks for, "auto" resolved by the hardware) and ``fp32`` (``$GEOMLIB_PRECISION=fp32`` forces every
run). A chapter whose default run already computes every claim in fp32 gets no forced run (the
same run; listed under ``skipped``). ``data/robustness.json`` holds, per claim, every run's measured
value, status and the precision and device the run really computed in (from the ledger row), the
minimum, median and maximum over the default series, the pass rate, and for every run the preset,
torch version, CPU model, threads, and hashes of the chapter's presets and of the library's source.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import fields, is_dataclass
from pathlib import Path

from geomlib.cache import config_hash
from geomlib.claims import CHECKS
from geomlib.fileio import locked, write_json_atomic
from geomlib.ledger import read_ledger
from geomlib.precision import check_environment
from geomlib.presets import PRESETS, EdgeRecipe, InContextRun, PathStarRun, plain
from geomlib.robustness import tally
from geomlib.studies import machine, provenance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebooks import chapters  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "robustness.json"
COMMAND = "make robustness"

def preset_hash(chapter: str, preset: str = "cpu") -> str:
    """A hash of every value of ``chapter``'s preset ``preset`` (its typed preset holds every run it
    makes, including any value shared with another chapter): what makes an entry stale."""
    return config_hash({"chapter": chapter, "preset": plain(PRESETS[chapter][preset])})


def expected_precision(chapter: str, series: str, native: bool, preset: str = "cpu") -> str:
    """What the chapter's preset says its runs compute in: every precision its runs ask for, resolved
    for ``series`` on a machine with (``native``) or without native bf16, as the ledger labels it."""
    asked: set[str] = set()

    def walk(value):
        if isinstance(value, PathStarRun):
            asked.add(value.precision)  # the run's precision governs all its stages
            walk(value.emb_init)
        elif isinstance(value, (EdgeRecipe, InContextRun)):
            asked.add(value.train.precision)
        elif is_dataclass(value):
            for f in fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)

    walk(PRESETS[chapter][preset])
    labels = set()
    for p in asked:
        p = "fp32" if series == "fp32" else ("bf16" if native else "fp32") if p == "auto" else p
        labels.add("bf16 (rounded)" if p == "bf16" and not native else p)
    return " + ".join(sorted(labels)) or "none"


def summarise(runs: dict) -> dict:
    """Per claim: every run (its series, seed and the precision it computed in), and over the
    default series the spread and pass rate."""
    claims: dict[str, dict] = {}
    for run in sorted(runs.values(), key=lambda r: (r["chapter"], r["series"], r["seed"])):
        for cid, c in run["claims"].items():
            entry = claims.setdefault(cid, {"chapter": run["chapter"], "op": c["op"], "threshold": c["threshold"],
                                            "runs": []})
            entry["runs"].append({"seed": run["seed"], "series": run["series"], "precision": c["precision"],
                                  "measured": c["measured"], "status": c["status"], "threshold": c["threshold"]})
    # a run that crashed counts against every claim of its chapter it did not reach
    for run in runs.values():
        if not run.get("error"):
            continue
        for cid, (op, threshold) in CHECKS.items():
            if cid.split(".")[0] == run["chapter"] and cid not in run["claims"]:
                entry = claims.setdefault(cid, {"chapter": run["chapter"], "op": op, "threshold": threshold, "runs": []})
                entry["runs"].append({"seed": run["seed"], "series": run["series"], "precision": run["precision"] or "?",
                                      "measured": None, "status": "crashed", "threshold": threshold,
                                      "error": run["error"]})
    for entry in claims.values():
        entry["runs"].sort(key=lambda r: (r["series"], r["seed"]))
        tally(entry)
    return claims


def record(out: Path, key: str, run: dict | None = None, skipped: str | None = None) -> None:
    """Merge one run (or the reason a run is not needed) into ``out``, atomically, under a lock."""
    with locked(out):
        data = json.loads(out.read_text()) if out.exists() else {}
        runs, skips = data.get("runs", {}), data.get("skipped", {})
        if run is not None:
            runs[key] = run
            skips.pop(key, None)
        else:
            skips[key] = skipped
            runs.pop(key, None)
        write_json_atomic(out, {
            **provenance("every claim of the book at the default preset, over seeds, as the book runs on the machine "
                         "(series 'default': each run in its own precision) and with every run forced to fp32 "
                         "(series 'fp32', $GEOMLIB_PRECISION=fp32); each claim's runs name the precision they "
                         "computed in", COMMAND), "updated": time.strftime("%Y-%m-%d %H:%M"),
            "claims": summarise(runs), "runs": runs, "skipped": skips})


def run_chapter(chapter: str, seed: int, series: str, build: Path, preset: str) -> tuple[dict, float, str]:
    """Execute one chapter; return its ledger rows, wall seconds and an error line ("" if none)."""
    folder = build / f"{series}-seed{seed}"
    env = dict(os.environ, GEOMLIB_RECORD_ONLY="1", GEOMLIB_CACHE=str(build / "cache"))
    env.pop("GEOMLIB_LEDGER", None)
    if series == "fp32":
        env["GEOMLIB_PRECISION"] = "fp32"
    else:
        env.pop("GEOMLIB_PRECISION", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "run_book.py"), "--only", chapter, "--seed", str(seed),
                           "--preset", preset, "--build", str(folder), "--no-html", "--chapters-only"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = proc.stderr.strip().splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAILED", "error:", "interrupted"))]  # the runner's own words
    error = "" if proc.returncode == 0 else (failed or lines or [f"exit {proc.returncode}"])[0]
    ledger = read_ledger(folder / "ledger.json")
    return {k: v for k, v in ledger.items() if v["chapter"] == chapter}, seconds, error


def fp32_already(done: dict, chapter: str, seed: int) -> bool:
    """Whether the chapter's default run of ``seed`` computed every claim in fp32: its forced-fp32
    run would be the same run."""
    run = done.get(f"{chapter}|default|{seed}")
    return bool(run and run["claims"]) and all(c["precision"] == "fp32" for c in run["claims"].values())


def bad_paths(out: Path, build: Path) -> str | None:
    """Why ``--out`` (a JSON file) or ``--build`` (a folder) cannot be used, before any chapter runs
    (None: both can)."""
    if out.is_dir():
        return f"--out {out} is a folder; it must be the JSON file to write (e.g. data/robustness.json)"
    if not out.parent.is_dir():
        return f"--out {out}: its folder {out.parent} does not exist"
    if build.exists() and not build.is_dir():
        return f"--build {build} is a file; it must be a folder (one build folder per chapter run goes inside)"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    ap.add_argument("--fp32-seeds", type=int, nargs="*", default=[0], help="seeds also run with every run forced "
                    "to fp32")
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
    try:
        check_environment()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.environ.get("GEOMLIB_PRECISION"):
        print("error: $GEOMLIB_PRECISION is set; the robustness run sets it itself per series (unset it)",
              file=sys.stderr)
        return 2
    problem = bad_paths(args.out, args.build)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        data = json.loads(args.out.read_text()) if args.out.exists() else {}
    except (OSError, ValueError) as e:
        print(f"error: --out {args.out} cannot be read as the robustness JSON ({e}); it is left as it is",
              file=sys.stderr)
        return 2
    plan = [("default", s) for s in args.seeds] + [("fp32", s) for s in args.fp32_seeds]
    done = data.get("runs", {})
    todo = []
    for series, seed in plan:  # a seed at a time: every chapter gets its first seeds first
        for ch in names:
            key = f"{ch}|{series}|{seed}"
            if (not args.redo and done.get(key, {}).get("preset_hash") == preset_hash(ch, args.preset)
                    and not done[key].get("error")):  # a failed run is never done: it is run again
                continue
            if not args.redo and key in data.get("skipped", {}) and fp32_already(done, ch, seed):
                continue
            todo.append((ch, series, seed, key))
    print(f"{len(todo)} chapter run(s) to do ({len(plan) * len(names) - len(todo)} already recorded) -> {args.out}",
          flush=True)
    crashed = []
    for i, (ch, series, seed, key) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {ch}, {series}, seed {seed} ...", end=" ", flush=True)
        if series == "fp32":
            done = json.loads(args.out.read_text()).get("runs", {}) if args.out.exists() else {}
            if fp32_already(done, ch, seed):
                record(args.out, key, skipped=f"the default run of seed {seed} already computes every claim in fp32")
                print("not needed: its default run is fp32 already", flush=True)
                continue
        rows, seconds, error = run_chapter(ch, seed, series, args.build, args.preset)
        run = {"chapter": ch, "seed": seed, "series": series,
               "precision": " + ".join(sorted({v.get("precision") or "?" for v in rows.values()})),
               "device": " + ".join(sorted({v.get("device") or "?" for v in rows.values()})), "preset": args.preset,
               "preset_hash": preset_hash(ch, args.preset), **machine(),
               "seconds": round(seconds, 1), "error": error,
               "claims": {k: {f: v.get(f, "?") for f in ("measured", "op", "threshold", "status", "precision",
                                                         "device")} for k, v in rows.items()}}
        record(args.out, key, run)
        fails = [k for k, v in rows.items() if v["status"] != "pass"]
        print(f"{seconds:.0f} s, {len(rows)} claims in {run['precision']}" + (f", not passing: {fails}" if fails else "")
              + (f", ERROR: {error}" if error else ""), flush=True)
        if error:
            crashed.append(f"{ch}, {series}, seed {seed}: {error}")
    if crashed:
        print(f"{len(crashed)} chapter run(s) failed (recorded as failed; the next run retries them):\n  "
              + "\n  ".join(crashed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
