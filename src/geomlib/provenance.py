"""Where a shipped result came from: the commit and the machine, recorded in every JSON file in
``data/`` (the sweep runner, the CPU headline run, the Mamba hypotheses)."""
from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path

__all__ = ["git_commit", "hardware", "library_fingerprint", "NUMERIC_MODULES", "OTHER_MODULES"]


# The modules whose code decides what a run computes: the trainer, the models, the tasks and
# graphs, the metrics and the precision. Every other module (presets' reasons and setup tables,
# the ledger and report, plots, the cache's own bookkeeping, file handling, validation messages)
# can change without changing a trained model or a metric, so editing it must not retrain anything.
# A run's configuration enters its cache key by value (every field of its spec), not through the presets'
# modules; `specs` is listed because it says how a spec becomes a key and a model.
# tests/test_faults.py requires every module of the package to be listed in exactly one of the two.
NUMERIC_MODULES = ("evaluate", "geometry", "graphs", "models", "precision", "recipes", "spectral", "specs", "tasks",
                   "train")
OTHER_MODULES = ("__init__", "cache", "chapter", "checkpoints", "claims", "fileio", "ledger", "plots", "presets",
                 "processes", "provenance", "report", "robustness", "runkeys", "studies", "sweep", "validate")


@functools.lru_cache(maxsize=1)
def library_fingerprint() -> str:
    """A hash of the geomlib code that changes numbers (the modules in ``NUMERIC_MODULES``, names
    and contents): part of every cache key, so that a change to the trainer, a model, a task or a
    metric recomputes the results that depend on it instead of reusing models trained by other
    code, while a reworded reason, a plot or a message reuses them."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in sorted(NUMERIC_MODULES):  # a module, or a package's every module
        files = [root / f"{name}.py"] if (root / f"{name}.py").exists() else sorted((root / name).glob("*.py"))
        for path in files:
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def git_commit() -> str:
    """The HEAD commit of the repository geomlib runs from ("unknown" outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def hardware() -> str:
    """The GPU's name, else the CPU's model name (what a shipped result was measured on)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
