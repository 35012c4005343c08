"""Checks for values where they enter geomlib: a bad value is refused with a message that names
it and what is allowed, before any work starts (never a numpy or torch error from deep inside).
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["MAX_NODES", "MAX_SEED", "check_int", "check_seed", "check_num_nodes", "check_like"]

#: The largest graph geomlib builds: a 10^7-node graph already takes GBs of embeddings.
MAX_NODES = 10_000_000
#: Seeds are integers in [0, MAX_SEED): what numpy, torch and Python all accept.
MAX_SEED = 2**32


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an ``int`` >= ``minimum``; a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_seed(seed, name: str = "seed") -> int:
    """A seed: an integer in ``[0, 2^32)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in [0, 2^32), got {seed!r} ({type(seed).__name__})")
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, 2^32), got {seed}")
    return int(seed)


def check_num_nodes(what: str, n: int) -> int:
    """A graph size at most :data:`MAX_NODES`, checked before anything is allocated."""
    if n > MAX_NODES:
        raise ValueError(f"{what} would have {n:,} nodes; the limit is {MAX_NODES:,} (10^7)")
    return n


def check_like(name: str, value, reference):
    """``value`` must have the type of ``reference`` (the preset's own value): a float knob takes
    any real number, an int knob an integer, a dict or list knob a dict or list; ``None`` on
    either side is allowed (an optional setting)."""
    if value is None or reference is None:
        return value
    if isinstance(reference, bool):
        ok = isinstance(value, bool)
    elif isinstance(reference, numbers.Integral):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif isinstance(reference, numbers.Real):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif isinstance(reference, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(reference))
    if not ok:
        raise TypeError(f"{name} must be a {type(reference).__name__} like the preset's {reference!r}, "
                        f"got {value!r} ({type(value).__name__})")
    return value
