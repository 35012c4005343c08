"""Run keys: what a cached run depends on (its identity: kind, config, seed, precision, device)
and which code and machine ran it (threads, torch, geomlib's numeric code)."""
from __future__ import annotations

import torch

from .precision import precision_label
from .specs import plain
from .train import default_device

__all__ = ["run_key", "CODE_FIELDS", "identity"]


def run_key(kind: str, config, seed: int, precision: str) -> dict:
    """What a cached run depends on: its kind, its full typed config (as data: every value,
    including any preset it embeds, such as a Node2Vec start), the seed, the precision it actually
    runs in ("auto" resolved on this machine) and the device (the run's *identity*), and the thread
    count, the torch version and a fingerprint of the geomlib code that changes numbers (the
    *code* it runs under: a change to the trainer or a metric recomputes). The precision is what
    the run computes on this device (``"bf16 (rounded)"`` differs from native ``"bf16"`` in the
    last bits), so a cache shared between machines keeps them apart."""
    from .provenance import library_fingerprint

    return {"experiment": kind, "config": plain(config), "seed": seed, "threads": torch.get_num_threads(),
            "precision": precision_label(precision), "device": default_device().type, "torch": torch.__version__, "geomlib": library_fingerprint()}


#: The parts of a run key that say which code and machine ran it, not which run it is: a
#: checkpoint written under other values may be continued (with a message, and each session recorded).
CODE_FIELDS = ("threads", "torch", "geomlib")


def identity(key: dict) -> dict:
    """A run key without its :data:`CODE_FIELDS`: which run it is, not which code ran it."""
    return {k: v for k, v in key.items() if k not in CODE_FIELDS}
