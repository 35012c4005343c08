"""Where a shipped result came from: the commit and the machine, recorded in every JSON file in
``data/`` (the sweep runner, the CPU headline run, the Mamba hypotheses)."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

__all__ = ["git_commit", "hardware"]


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
