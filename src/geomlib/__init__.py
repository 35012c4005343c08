"""geomlib: the helper library of the Geometric Memory Book (arXiv 2510.26745, reproduced).

Data flows one way: graphs -> tasks -> models -> train -> evaluate / geometry / spectral ->
plots and claims. Each concept of the paper lives in one module named after it.
"""
from . import cache, claims, evaluate, geometry, graphs, models, presets, spectral, tasks, train
from .claims import check_claim, verdict
from .presets import get_preset

__version__ = "0.1.0"
__all__ = ["cache", "claims", "evaluate", "geometry", "graphs", "models", "presets", "spectral", "tasks",
           "train", "check_claim", "get_preset", "verdict"]
