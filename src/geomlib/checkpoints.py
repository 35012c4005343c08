"""Checkpoints of resumable runs: where they live, what a session records, and the checks that a
checkpoint is readable and was written for the run that continues it (with the messages that say
what to do when it is not)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .cache import cache_root, config_hash
from .runkeys import CODE_FIELDS, identity, run_key
from .specs import PathStarRun

__all__ = ["CheckpointError", "checkpoint_path", "checkpoint_for", "session", "load_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be continued: unreadable, or written for another run."""


def checkpoint_path(run: PathStarRun, seed: int = 0) -> Path:
    """Where a resumable path-star run keeps its state (see :func:`checkpoint_for`)."""
    return checkpoint_for(run_key("pathstar", run, seed, run.precision))


def checkpoint_for(key: dict) -> Path:
    """``<cache>/pathstar-<hash>.ckpt`` for the run of ``key``, named by the run's identity only
    (config, seed, precision, device), so that an edit to the library or a new torch finds the same
    checkpoint instead of silently starting again from step 0."""
    return cache_root() / f"pathstar-{config_hash(identity(key))}.ckpt"


def session(key: dict | None, step: int) -> dict:
    from .provenance import git_commit

    code = json.loads(json.dumps({k: key[k] for k in CODE_FIELDS if k in key}, default=str)) if key else {}
    return {"from_step": step, "commit": git_commit(), **code}


def load_checkpoint(path: Path, key: dict | None) -> dict:
    """The state saved at ``path``, checked: readable, a run checkpoint, and (given ``key``) written
    for the same run. Another code version is allowed and announced; anything else is refused with
    what to do."""
    start_over = f"to start the run over from step 0, delete it: rm '{path}'"
    try:
        # onto the CPU whatever the run's device: the random-generator states must stay CPU tensors
        # (``set_state`` refuses CUDA ones); the model and optimizer copy theirs onto the device on load
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any damage (truncated, garbage, not torch's): name the file, what to do
        raise CheckpointError(f"checkpoint {path} cannot be read (torch.load: {type(e).__name__}; truncated or "
                              f"not a checkpoint); {start_over}") from None
    if not isinstance(saved, dict) or not {"model", "history", "stage", "train"} <= saved.keys():
        raise CheckpointError(f"checkpoint {path} cannot be read as a run's state (it lacks the model, history, stage "
                              f"or trainer state); {start_over}")
    if key is None:
        return saved
    theirs = saved.get("key")
    if not isinstance(theirs, dict):
        raise CheckpointError(f"checkpoint {path} does not say which run wrote it (an older geomlib), so it cannot "
                              f"be checked against this run; {start_over}")
    mine = json.loads(json.dumps(identity(key), sort_keys=True, default=str))
    if identity(theirs) != mine:
        differ = sorted(k for k in set(mine) | set(identity(theirs)) if mine.get(k) != theirs.get(k))
        raise CheckpointError(f"checkpoint {path} was written for another run (it differs in {', '.join(differ)}); "
                              f"it is not continued. {start_over[0].upper()}{start_over[1:]}")
    code = {k: (theirs.get(k), key[k]) for k in CODE_FIELDS if theirs.get(k) != key[k]}
    if code:
        was = ", ".join(f"{k} {a}" for k, (a, _) in code.items())
        now = ", ".join(f"{k} {b}" for k, (_, b) in code.items())
        print(f"{path.name} was written by other code ({was}); this is {now}. Continuing it: each session's commit "
              f"and versions are recorded in the run's history (meta['sessions']). {start_over[0].upper()}"
              f"{start_over[1:]}.")
    return saved
