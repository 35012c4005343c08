"""geomlib: the helper library of the Geometric Memory Book (arXiv 2510.26745, reproduced).

Data flows one way: graphs -> tasks -> models -> train -> evaluate / geometry / spectral ->
plots and claims. Each concept of the paper lives in one module named after it.
"""
from . import cache, claims, evaluate, geometry, graphs, ledger, models, presets, report, spectral, tasks, train
from .chapter import Chapter
from .claims import check_claim
from .presets import get_preset
from .report import verdict

try:  # one source of truth: pyproject.toml's version, as installed
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    __version__ = _version("geometric-memory-book")  # the distribution's name
except PackageNotFoundError:  # pragma: no cover - imported from a source tree that is not installed
    __version__ = "0+unknown"
__all__ = ["cache", "claims", "evaluate", "geometry", "graphs", "ledger", "models", "presets", "report", "spectral",
           "tasks", "train", "Chapter", "check_claim", "get_preset", "verdict"]
