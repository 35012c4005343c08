"""Checking a chapter's claim and recording it in the results ledger.

A chapter's last cell calls :func:`check_claim`. It displays the measured value (as a
myst-nb ``glue`` output, so the book's prose can quote it with ``{glue:}``), writes one row to
a JSON ledger atomically, and raises :class:`ClaimFailed` when the claim does not hold.
"""
from __future__ import annotations

import json
import math
import operator
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

__all__ = ["ClaimFailed", "ClaimResult", "check_claim", "ledger_path", "read_ledger", "write_json_atomic",
           "report_markdown"]

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

    def __str__(self) -> str:
        return (f"{self.status.upper()}: {self.claim}: measured {self.measured:.4g} {self.op} {self.threshold:.4g} "
                f"(paper: {self.paper})")


def ledger_path() -> Path:
    """``$GEOMLIB_LEDGER`` when set (the book build sets it), else ``./geomlib-ledger.json``."""
    return Path(os.environ.get("GEOMLIB_LEDGER", "geomlib-ledger.json"))


def write_json_atomic(path: Path | str, obj) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def read_ledger(path: Path | str | None = None) -> dict[str, dict]:
    """The ledger as ``{claim id: row}``; empty if it does not exist yet. A corrupt ledger raises."""
    path = Path(path) if path else ledger_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"the results ledger {path} is corrupt ({e}); delete it and rebuild") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"the results ledger {path} does not hold claim rows; delete it and rebuild")
    return data


def _glue(name: str, value) -> None:
    """Display ``value`` the way myst-nb's ``glue`` does, without importing myst-nb."""
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display
    except ImportError:  # plain Python: just print
        print(f"{name} = {value}")
        return
    if get_ipython() is None:
        print(f"{name} = {value}")
        return
    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": ""}
    display(bundle, raw=True, metadata=metadata)


def check_claim(claim: str, measured: float, op: str, threshold: float, *, paper: str, description: str,
                chapter: str, preset: str, seed: int, details: dict | None = None,
                known_failure: str | None = None) -> ClaimResult:
    """Check ``measured <op> threshold``, record it in the ledger, and raise if it fails.

    ``known_failure``: when the book already says, in prose, that this claim does not reproduce
    at this preset, pass the reason; a failure is then recorded as ``"not reproduced"`` (and shown
    as such in the report) instead of stopping the build. It is never a pass.
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
                         {**(details or {}), **({"known_failure": known_failure} if known_failure else {})})
    path = ledger_path()
    ledger = read_ledger(path)
    ledger[claim] = asdict(result)
    write_json_atomic(path, ledger)
    _glue(claim, round(measured, 4))
    print(result)
    if not passed and not known_failure:
        raise ClaimFailed(f"claim {claim!r} ({description}) FAILED: measured {measured:.4g}, "
                          f"required {op} {threshold:.4g}")
    return result


_BADGE = {"pass": "✅ pass", "fail": "❌ FAIL", "not reproduced": "⚠️ not reproduced"}


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
