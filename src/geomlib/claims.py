"""Checking a chapter's claim and recording it in the results ledger.

A chapter's last cell calls :func:`check_claim` for each claim: it prints the measured value
against the threshold, writes one row to a JSON ledger atomically, and raises
:class:`ClaimFailed` when the claim does not hold. It then shows :func:`verdict`, the chapter's
verdict box built from those ledger rows.
"""
from __future__ import annotations

import html
import json
import math
import operator
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .fileio import locked, write_json_atomic
from .train import resolve_precision

__all__ = ["ClaimFailed", "ClaimResult", "Report", "Verdict", "check_claim", "chapter_status", "drop_chapter_rows",
           "ledger_path", "read_ledger", "report_markdown", "verdict"]

_T0 = time.perf_counter()  # the kernel starts with the chapter: wall time since import ~ chapter time
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class ClaimFailed(AssertionError):
    """A chapter's claim did not hold on this run."""


@dataclass
class ClaimResult:
    claim: str
    description: str
    measured: float
    op: str
    threshold: float
    paper: str
    passed: bool
    status: str
    chapter: str
    preset: str
    seed: int
    torch: str
    threads: int
    wall_seconds: float
    details: dict
    precision: str = ""  # what "auto" resolved to on this machine (runs with precision="auto" used it)

    def __str__(self) -> str:
        return (f"{self.status.upper()}: {self.claim}: measured {self.measured:.4g} {self.op} {self.threshold:.4g} "
                f"(paper: {self.paper})")


def ledger_path() -> Path:
    """``$GEOMLIB_LEDGER`` when set and not empty (the book build sets it), else
    ``./geomlib-ledger.json``."""
    return Path(os.environ.get("GEOMLIB_LEDGER") or "geomlib-ledger.json")


# What a row must hold for the report and the verdict boxes to show it.
_ROW_FIELDS = {f.name for f in fields(ClaimResult)} - {"details", "precision"}


def read_ledger(path: Path | str | None = None) -> dict[str, dict]:
    """The ledger as ``{claim id: row}``; empty if it does not exist yet. A ledger that is not
    valid JSON, not a mapping of claim rows, or has a row missing fields raises a ``ValueError``
    that names the file, the problem and what to do."""
    path = Path(path) if path else ledger_path()
    if not path.exists():
        return {}
    fix = "delete it (or rebuild the book) and run the chapters again"
    if not path.is_file():
        raise ValueError(f"the results ledger {path} is not a file; {fix}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the results ledger {path} is corrupt ({e}); {fix}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"the results ledger {path} does not hold claim rows; {fix}")
    for cid, row in data.items():
        missing = _ROW_FIELDS - set(row)
        if missing:
            raise ValueError(f"the results ledger {path}: claim {cid!r} lacks the field(s) {sorted(missing)}; {fix}")
    return data


def drop_chapter_rows(chapter: str, path: Path | str | None = None) -> None:
    """Remove every row of ``chapter`` from the ledger (before a chapter re-runs, so that it
    leaves no stale claims). Locked against concurrent writers; a damaged ledger raises."""
    path = Path(path) if path else ledger_path()
    with locked(path):
        rows = read_ledger(path)
        kept = {k: v for k, v in rows.items() if v.get("chapter") != chapter}
        if kept != rows:
            write_json_atomic(path, kept)


def check_claim(claim: str, measured: float, op: str, threshold: float, *, paper: str, description: str,
                chapter: str, preset: str, seed: int, details: dict | None = None,
                known_failure: str | None = None) -> ClaimResult:
    """Check ``measured <op> threshold``, record it in the ledger, and raise if it fails.

    ``known_failure``: when the book already says, in prose, that this claim does not reproduce
    at this preset, pass the reason; a failure is then recorded as ``"not reproduced"`` (and shown
    as such in the report) instead of stopping the build. It is never a pass.

    ``$GEOMLIB_RECORD_ONLY`` (set by the robustness run): a failed claim is recorded but does not
    raise, so the chapter goes on to measure its other claims.
    """
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    measured = float(measured)
    if not math.isfinite(measured):
        raise ClaimFailed(f"claim {claim!r}: the measured value is {measured}, not a number")
    passed = bool(_OPS[op](measured, float(threshold)))
    status = "pass" if passed else ("not reproduced" if known_failure else "fail")
    result = ClaimResult(claim, description, measured, op, float(threshold), paper, passed, status, chapter,
                         str(preset), int(seed), torch.__version__, torch.get_num_threads(),
                         round(time.perf_counter() - _T0, 1),
                         {**(details or {}), **({"known_failure": known_failure} if known_failure else {})},
                         resolve_precision("auto"))
    path = ledger_path()
    with locked(path):  # read-modify-write: another chapter may be recording at the same time
        ledger = read_ledger(path)
        ledger[claim] = asdict(result)
        write_json_atomic(path, ledger)
    print(result)
    if not passed and not known_failure and not os.environ.get("GEOMLIB_RECORD_ONLY"):
        raise ClaimFailed(f"claim {claim!r} ({description}) FAILED: measured {measured:.4g}, "
                          f"required {op} {threshold:.4g}")
    return result


_BADGE = {"pass": "✓ pass", "fail": "✗ FAIL", "not reproduced": "⚠ not reproduced"}  # plain glyphs: no emoji font needed


def report_markdown(ledger: dict[str, dict]) -> str:
    """The reproducibility report: one row per claim, status, measured vs threshold vs paper."""
    if not ledger:
        return "*The ledger is empty: no chapter has recorded a claim in this build.*"
    lines = ["| claim | chapter | status | measured | check | paper | preset / seed | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for cid, r in sorted(ledger.items(), key=lambda kv: (kv[1].get("chapter", ""), kv[0])):
        lines.append(
            f"| `{cid}`<br><small>{r['description']}</small> | [{r['chapter']}]({r['chapter']}.ipynb) "
            f"| {_BADGE.get(r['status'], r['status'])} | {r['measured']:.4g} | {r['op']} {r['threshold']:.4g} "
            f"| {r['paper']} | {r['preset']} / {r['seed']} | {r['wall_seconds']:.0f} |")
    n = len(ledger)
    ok = sum(r["status"] == "pass" for r in ledger.values())
    lines.append(f"\n**{ok} of {n} claims pass.**")
    return "\n".join(lines)


_STATUS_STYLE = {"pass": "background:#e6f4ea;color:#137333", "fail": "background:#fce8e6;color:#a50e0e",
                 "not reproduced": "background:#fef7e0;color:#8a5300"}


class Report:
    """The reproducibility report: one row per claim of the ledger, as an HTML table in the book
    (status coloured) and as Markdown text elsewhere."""

    def __init__(self, ledger: dict[str, dict]):
        self.ledger = ledger

    def __repr__(self) -> str:
        return report_markdown(self.ledger)

    def _repr_html_(self) -> str:
        e = html.escape
        if not self.ledger:
            return "<p><em>The ledger is empty: no chapter has recorded a claim in this build.</em></p>"
        head = "".join(f"<th>{h}</th>" for h in ("claim", "chapter", "status", "measured", "check", "paper",
                                                    "preset / seed", "wall (s)"))
        body = []
        for cid, r in sorted(self.ledger.items(), key=lambda kv: (kv[1].get("chapter", ""), kv[0])):
            style = _STATUS_STYLE.get(r["status"], "")
            body.append(
                f'<tr class="geomlib-claim status-{e(r["status"].replace(" ", "-"))}">'
                f"<td><code>{e(cid)}</code><br><small>{e(r['description'])}</small></td>"
                f'<td><a href="{e(r["chapter"])}.html">{e(r["chapter"])}</a></td>'
                f'<td style="{style};white-space:nowrap;font-weight:600">{e(_BADGE.get(r["status"], r["status"]))}</td>'
                f"<td>{r['measured']:.4g}</td><td style=\"white-space:nowrap\">{e(r['op'])} {r['threshold']:.4g}</td>"
                f"<td>{e(r['paper'])}</td><td>{e(str(r['preset']))} / {r['seed']}</td>"
                f"<td>{r['wall_seconds']:.0f}</td></tr>")
        ok = sum(r["status"] == "pass" for r in self.ledger.values())
        return (f'<table class="geomlib-report" style="font-size:0.85em"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
                f"<p><strong>{ok} of {len(self.ledger)} claims pass.</strong></p>")


def chapter_status(rows: list[dict]) -> str:
    """One line for a chapter's claims: ``"✓ 3 of 3 pass"``, ``"⚠ 3 pass, 2 not reproduced"``..."""
    if not rows:
        return "not run in this build"
    counts = {k: sum(r["status"] == k for r in rows) for k in ("pass", "not reproduced", "fail")}
    if counts["fail"]:
        return f"✗ {counts['fail']} of {len(rows)} FAIL"
    if counts["not reproduced"]:
        return f"⚠ {counts['pass']} pass, {counts['not reproduced']} not reproduced"
    return f"✓ {counts['pass']} of {len(rows)} pass"


class Verdict:
    """A chapter's verdict box: every claim the chapter recorded in the ledger, measured value
    against the check and the paper's statement. Rendered as an admonition in the book."""

    def __init__(self, chapter: str, rows: list[dict]):
        self.chapter, self.rows = chapter, rows

    @property
    def status(self) -> str:
        return chapter_status(self.rows)

    def __repr__(self) -> str:
        lines = [f"Verdict for {self.chapter}: {self.status}"]
        lines += [f"  {_BADGE.get(r['status'], r['status'])}  {r['claim']}: measured {r['measured']:.4g} "
                  f"{r['op']} {r['threshold']:.4g}  (paper: {r['paper']})" for r in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        kind = "tip" if self.status.startswith("✓") else ("warning" if self.status.startswith("⚠") else "error")
        body = "".join(
            f"<tr><td>{e(_BADGE.get(r['status'], r['status']))}</td><td><code>{e(r['claim'])}</code><br>"
            f"<small>{e(r['description'])}</small></td><td>{r['measured']:.4g}</td>"
            f"<td>{e(r['op'])} {r['threshold']:.4g}</td><td>{e(r['paper'])}"
            + (f"<br><small>why not: {e(str(r['details']['known_failure']))}</small>"
               if r["status"] != "pass" and r.get("details", {}).get("known_failure") else "")
            + "</td></tr>" for r in self.rows)
        seeds = sorted({(r["preset"], r["seed"]) for r in self.rows})
        run = ", ".join(f"preset {p}, seed {s}" for p, s in seeds)
        return (f'<div class="admonition {kind} geomlib-verdict"><p class="admonition-title">Verdict: {e(self.status)}'
                f"</p><p>Measured on this build ({e(run)}), checked against thresholds a failure of the "
                f"phenomenon would violate; all rows are in the reproducibility report.</p>"
                f"<table><thead><tr><th>status</th><th>claim</th><th>measured</th><th>check</th><th>paper</th>"
                f"</tr></thead><tbody>{body}</tbody></table></div>")


def verdict(chapter: str, ledger: Path | str | None = None) -> Verdict:
    """The verdict box for ``chapter``: its rows of the ledger, sorted by claim id."""
    rows = [r for r in read_ledger(ledger).values() if r.get("chapter") == chapter]
    if not rows:
        raise ValueError(f"the ledger has no claims for chapter {chapter!r}: call check_claim first")
    return Verdict(chapter, rows)
