"""The results ledger: one JSON row per claim a build checked (what the report and the verdict
boxes show). Written atomically under a lock, so chapters that run at the same time keep every
row; a damaged ledger is refused with a message that says what to do.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .fileio import locked, write_json_atomic

__all__ = ["ClaimResult", "ledger_path", "read_ledger", "record", "drop_chapter_rows"]


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
    precision: str = ""  # what the chapter's runs computed in ("bf16", "bf16 (rounded)", "fp32", "bf16 + fp32")
    device: str = ""  # where they ran ("cpu", "cuda")

    def __str__(self) -> str:
        return (f"{self.status.upper()}: {self.claim}: measured {self.measured:.4g} {self.op} {self.threshold:.4g} "
                f"(paper: {self.paper})")


def ledger_path() -> Path:
    """``$GEOMLIB_LEDGER`` when set and not empty (the book build sets it), else
    ``./geomlib-ledger.json``."""
    return Path(os.environ.get("GEOMLIB_LEDGER") or "geomlib-ledger.json")


# What a row must hold for the report and the verdict boxes to show it.
_ROW_FIELDS = {f.name for f in fields(ClaimResult)} - {"details", "precision", "device"}


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


def record(result: ClaimResult, path: Path | str | None = None) -> None:
    """Write ``result`` as its claim's row (replacing an earlier one), locked against concurrent
    writers: read-modify-write, as another chapter may be recording at the same time."""
    path = Path(path) if path else ledger_path()
    with locked(path):
        ledger = read_ledger(path)
        ledger[result.claim] = asdict(result)
        write_json_atomic(path, ledger)
