"""Where a shipped result came from: the commit and the machine, recorded in every JSON file in
``data/`` (the sweep runner, the CPU headline run, the Mamba hypotheses)."""
from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path

__all__ = ["git_commit", "hardware", "library_fingerprint"]


@functools.lru_cache(maxsize=1)
def library_fingerprint() -> str:
    """A hash of geomlib's source (every ``.py`` file of the package, names and contents): part of
    every cache key, so that a change to the trainer, a model, a metric or a preset recomputes
    the results that depend on it instead of reusing models trained by other code."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
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
