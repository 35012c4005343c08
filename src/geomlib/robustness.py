"""Each claim's spread over seeds and precisions, from the shipped ``data/robustness.json``
(written by ``make robustness``): the "over seeds" column of the report and the verdict boxes,
judged by today's checks.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .claims import CHECKS, FROM_SHIPPED_STUDY, TENDENCIES, passes

__all__ = ["load", "machine", "tally", "seeds_text", "over_seeds", "DamagedRobustness"]


class DamagedRobustness(ValueError):
    """A shipped ``data/robustness.json`` that cannot be read: the message names it and the cure."""


def load(path: Path | str | None = None) -> dict[str, dict]:
    """Each claim's spread over seeds and precisions from ``data/robustness.json`` (written by
    ``make robustness``; shipped with geomlib), as ``{claim id: summary}``; empty when none is
    shipped; a file that cannot be read raises :class:`DamagedRobustness` (the build then fails,
    saying so, instead of showing every claim as "not run")."""
    if path is None:
        from .cache import shipped_data

        path = shipped_data("robustness.json")
        if path is None:
            return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise DamagedRobustness(f"{path}: the robustness series cannot be read ({type(err).__name__}: {err}); every "
                                "claim's 'over seeds' column comes from it. Restore it with `git checkout -- "
                                "data/robustness.json`, or rerun `make robustness`") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), dict):
        raise DamagedRobustness(f"{path}: not a robustness series (no 'claims' table); restore it with `git checkout "
                                "-- data/robustness.json`, or rerun `make robustness`")
    claims = data["claims"]
    for cid, entry in claims.items():  # judged by today's check, not the one recorded with the run
        if cid not in CHECKS:
            continue
        for run in entry.get("runs", []):
            if run["status"] == "crashed":  # the chapter run failed before it reached this claim
                continue
            run["status"] = "pass" if passes(cid, run["measured"], run.get("threshold")) else (
                "tendency" if cid in TENDENCIES else run["status"] if run["status"] != "pass" else "fail")
        tally(entry)
    return claims


def machine(path: Path | str | None = None) -> str | None:
    """What the shipped robustness series ran on: ``"Intel(R) Xeon(R) Processor, 2 threads, torch
    2.13.0+cpu, updated 2026-12-03 10:10"``; None when none is shipped or it cannot be read."""
    if path is None:
        from .cache import shipped_data

        path = shipped_data("robustness.json")
        if path is None:
            return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("hardware"):
        return None
    return (f"{data['hardware']}, {data.get('threads', '?')} threads, torch {data.get('torch', '?')}, updated "
            f"{data.get('updated', '?')}")


def tally(entry: dict) -> dict:
    """Fill a claim's robustness summary from its ``runs``: over the default series the seeds,
    the passes, the pass rate, min / median / max and the precision(s) the runs computed in; the
    forced-fp32 runs' statuses (``other_precision``)."""
    runs = entry.get("runs", [])
    main = [r for r in runs if r["series"] == "default"]
    values = [r["measured"] for r in main if r["measured"] is not None]
    entry["seeds"] = sorted(r["seed"] for r in main)
    entry["crashed"] = sorted(r["seed"] for r in main if r["status"] == "crashed")
    entry["passed"] = sum(r["status"] == "pass" for r in main)
    entry["pass_rate"] = f"{entry['passed']}/{len(main)}"
    entry["precision"] = " / ".join(sorted({r["precision"] for r in main if r["status"] != "crashed"}))
    if values:
        entry.update(min=min(values), median=statistics.median(values), max=max(values))
    entry["other_precision"] = {f"{r['precision']} seed {r['seed']}": r["status"] for r in runs
                                if r["series"] != "default"}
    entry["other_values"] = {f"{r['precision']} seed {r['seed']}": r["measured"] for r in runs
                             if r["series"] != "default" and r["measured"] is not None}
    return entry


def seeds_text(summary: dict | None) -> str:
    """``"5/5 seeds in bf16 (0.98 to 1); fp32 ✓"`` for a claim's robustness summary (the forced-fp32
    run's status last, where the claim's runs are not fp32 already; ``"fp32 3/3 (0.94 to 0.98)"``
    for several forced-fp32 seeds); ``"not run"`` without one."""
    if not summary or not summary.get("seeds"):
        return "not run"
    n = len(summary["seeds"])
    spread = ("" if "min" not in summary else f" ({summary['min']:.3g})" if summary["min"] == summary["max"]
              else f" ({summary['min']:.3g} to {summary['max']:.3g})")
    where = f" in {summary['precision']}" if summary.get("precision") else ""
    crashed = summary.get("crashed") or []
    text = f"{summary['passed']}/{n} seeds{where}{spread}" + (
        f", seed{'s' if len(crashed) > 1 else ''} {', '.join(map(str, crashed))} crashed" if crashed else "")
    other = summary.get("other_precision") or {}
    values = summary.get("other_values") or {}
    by_precision: dict[str, list[str]] = {}
    for key in sorted(other):
        by_precision.setdefault(key.split(" seed")[0], []).append(key)
    parts = []
    for precision, keys in by_precision.items():  # one run: its mark; several: passes and range
        if len(keys) == 1:
            parts.append(f"{precision} {'✓' if other[keys[0]] == 'pass' else '✗'}")
            continue
        ok = sum(other[k] == "pass" for k in keys)
        vals = [values[k] for k in keys if k in values]
        spread = "" if not vals else f" ({min(vals):.3g})" if min(vals) == max(vals) else f" ({min(vals):.3g} to {max(vals):.3g})"
        parts.append(f"{precision} {ok}/{len(keys)}{spread}")
    return text + ("; " + ", ".join(parts) if parts else "")


def over_seeds(claim: str, spread: dict[str, dict]) -> str:
    """The "over seeds" column for ``claim``: :func:`seeds_text` of its summary, or, for a claim
    measured on a shipped study (``geomlib.claims.FROM_SHIPPED_STUDY``), the study it reads:
    one run, the same on every seed, not counted as several."""
    if claim in FROM_SHIPPED_STUDY:
        return f"one shipped study ({FROM_SHIPPED_STUDY[claim]}): not per seed"
    return seeds_text(spread.get(claim))
