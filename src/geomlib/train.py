"""The one trainer: AdamW (or plain gradient descent), warmup + cosine decay, full-batch or
minibatch over one or several example streams (mixed recipe), periodic evaluation, early stop.

A *staged* recipe is two calls (edges, then paths); a *mixed* recipe is one call whose step
draws a batch from every stream (e.g. edges and paths) and weights their losses by the number
of target tokens, as if they were one batch.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm  # widget bars in notebooks, text bars in a terminal

from .models import check_tokens
from .precision import autocast_for, precision_label, record, resolve_precision
from .specs import TrainConfig  # the training values of a run (a spec); imported here for the trainer
from .tasks import IGNORE, Examples
from .validate import check_seed

__all__ = ["History", "set_seed", "default_device", "train", "lr_at", "note_precisions"]

def lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    start = cfg.warmup
    if cfg.schedule == "wsd":
        start = max(cfg.warmup, int(cfg.steps * (1 - cfg.decay_fraction)))
        if step < start:
            return cfg.lr
    span = max(1, cfg.steps - start)
    progress = min(1.0, (step - start) / span)
    low = cfg.lr * cfg.final_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch; ``seed`` must be an integer in [0, 2^32)."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when present, else CPU; the same code path either way."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class History:
    """Evaluation rows over training: ``{"step", "loss", "lr", "seconds", <metrics>...}``."""

    rows: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in self.rows], dtype=float)

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def at(self, step: int) -> dict:
        """The evaluation row of ``step`` (KeyError if that step was not evaluated)."""
        for r in self.rows:
            if r["step"] == step:
                return r
        raise KeyError(f"step {step} was not evaluated; evaluated steps: {[r['step'] for r in self.rows]}")

    def first_step(self, key: str, threshold: float) -> int | None:
        """First evaluated step at which ``key >= threshold`` (None if never)."""
        for r in self.rows:
            if r.get(key, -np.inf) >= threshold:
                return int(r["step"])
        return None

    def to_dict(self) -> dict:
        return {"rows": self.rows, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """A history as stored (a cache entry, a checkpoint); rows written under the metrics' former
        names (``test_full``, ``test_n1``, ``test_pos{i}``, ``train_full``, ...) are read under today's."""
        return cls([{_renamed(k): v for k, v in r.items()} for r in d["rows"]], dict(d.get("meta", {})))


def _renamed(key: str) -> str:
    """A metric's name today: the held-out metrics were ``test_*``, the training paths' ``train_full``."""
    if key == "train_full":
        return "train_full_path"
    if key == "test_full":
        return "heldout_full_path"
    return "heldout_" + key[5:] if key.startswith("test_") else key


def note_precisions(history: History) -> History:
    """Record the precision and device of every training call in ``history`` (a run loaded from
    the cache or trained in another process), as :func:`train` does for its own; returns it."""
    for c in history.meta.get("configs", []) + history.meta.get("emb_init_configs", []):  # the init's training too
        record(c.get("computed_as") or c["resolved_precision"], c.get("device", "cpu"))
    return history


class _Sampler:
    """Epoch-wise shuffled minibatches of one stream, drawn with a seeded generator."""

    def __init__(self, data: Examples, batch_size: int | None, generator: torch.Generator, device: torch.device,
                 group: bool = False):
        if len(data) == 0:
            raise ValueError("cannot train on an empty set of examples")
        # each example's supervised-target count, kept on the CPU: a batch's count is then read
        # without waiting for the device (a host sync per stream and step on a GPU)
        self.row_targets = (data.targets != IGNORE).sum(1).cpu()
        self.total_targets = int(self.row_targets.sum())
        self.data, self.gen = data.to(device), generator
        self.batch = len(data) if batch_size is None else int(batch_size)
        if self.batch < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.full = self.batch >= len(data)
        self.perm, self.pos = None, len(data)
        # a full batch with ``group``: its distinct input rows, and which of them each example reads
        self.inputs, self.source = self.data.inputs, None
        if group and self.full:
            self.inputs, self.source = torch.unique(self.data.inputs, dim=0, return_inverse=True)

    def next(self) -> tuple[Examples, int]:
        """The next batch and its number of supervised targets."""
        if self.full:
            return self.data, self.total_targets
        if self.pos + self.batch > len(self.data):
            self.perm, self.pos = torch.randperm(len(self.data), generator=self.gen), 0
        idx = self.perm[self.pos: self.pos + self.batch]
        self.pos += self.batch
        return self.data[idx], int(self.row_targets[idx].sum())


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("GEOMLIB_PROGRESS", "1") != "0"


def train(model: torch.nn.Module, data: Examples | dict[str, Examples], cfg: TrainConfig,
          evaluate: Callable[[torch.nn.Module], dict] | None = None,
          stop: Callable[[dict], bool] | None = None, progress: bool | None = None,
          history: History | None = None, desc: str = "train",
          aux_loss: Callable[[torch.nn.Module], torch.Tensor] | None = None,
          checkpoint: Callable[[dict], None] | None = None, resume: dict | None = None) -> History:
    """Train ``model`` in place for ``cfg.steps`` steps and return its :class:`History`.

    ``data``: one :class:`~geomlib.tasks.Examples` or a dict of named streams (mixed recipe). ``evaluate``
    is called every ``cfg.eval_every`` steps (and at the start and the end) in eval mode under
    ``torch.no_grad``; ``stop`` ends training early when it returns True on those metrics.
    Passing a previous ``history`` continues its step count (staged recipes). ``aux_loss(model)``,
    when given, is added to every step's loss (e.g. an auxiliary Node2Vec loss on the embeddings).

    Long runs: ``checkpoint(state)`` is called after every evaluation with the trainer's state
    (optimizer, random generators, sampler positions, step); the caller stores it with the model
    and the history. ``resume=state`` (with the model and history restored by the caller)
    continues from that step exactly as if the run had never stopped.
    """
    streams = data if isinstance(data, dict) else {"data": data}
    sizes = cfg.batch_size if isinstance(cfg.batch_size, dict) else {k: cfg.batch_size for k in streams}
    unknown = set(sizes) - set(streams)
    if unknown:
        raise ValueError(f"batch_size names streams {sorted(unknown)} that are not in the data {sorted(streams)}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    vocab = getattr(model, "vocab_size", None)
    for k, v in streams.items():  # at the door, once: a model's forward skips this check while training on a GPU
        if vocab is not None:
            check_tokens(v.inputs, vocab, where=f"stream {k!r}: ")
    samplers = {k: _Sampler(v, sizes.get(k), gen, device, group=cfg.head_chunk is not None) for k, v in streams.items()}
    if cfg.head_chunk is not None and not hasattr(model, "hidden_states"):
        raise ValueError(f"head_chunk is for a decoder's head (GPT, Mamba), not a {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    frozen = []
    if cfg.freeze_token_embeddings:
        if not isinstance(getattr(model, "wte", None), torch.nn.Embedding):
            raise ValueError(f"freeze_token_embeddings is for a decoder's token embeddings, not a {type(model).__name__}")
        frozen = [model.wte.weight] if model.wte.weight.requires_grad else []
        params = [p for p in params if p is not model.wte.weight]
    if cfg.optimizer in ("adamw", "adamw_fused"):
        # matrices decay, vectors do not (unless decay_all); a parameter may opt out (``p._no_weight_decay = True``)
        exempt = [(p.dim() < 2 and not cfg.decay_all) or getattr(p, "_no_weight_decay", False) for p in params]
        decay = [p for p, e in zip(params, exempt) if not e]
        no_decay = [p for p, e in zip(params, exempt) if e]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas,
                                fused=cfg.optimizer == "adamw_fused" or None)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    precision = resolve_precision(cfg.precision, device)
    computed_as = precision_label(precision, device)
    record(computed_as, device)

    def autocast():
        return autocast_for(computed_as, device.type)
    history = history or History()
    offset = int(history.rows[-1]["step"]) if history.rows else 0
    first = 1
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"].cpu())
        torch.set_rng_state(resume["torch_rng"].cpu())
        if resume.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(resume["cuda_rng"].cpu(), device)
        for k, (perm, pos) in resume["samplers"].items():
            samplers[k].perm, samplers[k].pos = perm, pos
        offset, first = resume["offset"], resume["step"] + 1
    else:
        history.meta.setdefault("configs", []).append(
            {**asdict(cfg), "resolved_precision": precision, "computed_as": computed_as, "threads": torch.get_num_threads(), "device": str(device), "torch": str(torch.__version__)})
    start = time.perf_counter()
    seconds0 = history.rows[-1].get("seconds", 0.0) if history.rows else 0.0

    def state(step: int) -> dict:
        return {"step": step, "offset": offset, "optimizer": opt.state_dict(), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "samplers": {k: (s.perm, s.pos) for k, s in samplers.items()},
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}

    def do_eval(step: int, loss: float | None) -> dict:
        row = {"step": offset + step, "loss": loss, "lr": lr_at(cfg, max(step - 1, 0)),
               "seconds": round(seconds0 + time.perf_counter() - start, 3)}
        if evaluate is not None:
            was_training = model.training
            model.eval()
            with torch.no_grad(), autocast():
                row.update({k: float(v) for k, v in evaluate(model).items()})
            model.train(was_training)
        history.rows.append(row)
        return row

    if not history.rows and evaluate is not None:
        do_eval(0, None)  # no training loss before the first step
    bar = tqdm(total=cfg.steps, initial=first - 1, desc=desc, disable=not _progress_enabled(progress), file=sys.stderr,
               mininterval=1.0, dynamic_ncols=True, leave=True)
    model.train()
    loss_value = float("nan")
    step = first - 1
    for p in frozen:  # not trained in this stage (restored below)
        p.requires_grad_(False)
    try:
        for step in range(first, cfg.steps + 1):
            lr = lr_at(cfg, step - 1)
            for g in opt.param_groups:
                g["lr"] = lr
            drawn = {k: s.next() for k, s in samplers.items()}
            batches = {k: b for k, (b, _) in drawn.items()}
            counts = {k: n for k, (_, n) in drawn.items()}
            total = sum(counts.values())
            loss = 0.0
            with autocast():
                for k, b in batches.items():
                    s = samplers[k]  # a grouped full batch: each distinct input once (s.source), with all its targets
                    chunked = {} if cfg.head_chunk is None else {"source": s.source, "head_chunk": cfg.head_chunk}
                    loss = loss + model(s.inputs if s.full else b.inputs, b.targets, **chunked)[1] * (counts[k] / total)
                if aux_loss is not None:
                    loss = loss + aux_loss(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            bar.update(1)
            if cfg.eval_every and step % cfg.eval_every == 0 or step == cfg.steps:
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    bar.close()
                    raise FloatingPointError(f"training diverged at step {offset + step}: loss = {loss_value}")
                row = do_eval(step, loss_value)
                bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in row.items()
                                 if k not in ("step", "lr", "seconds")}, refresh=False)
                if checkpoint is not None:
                    checkpoint(state(step))
                if stop is not None and stop(row):
                    history.meta["stopped_early"] = True
                    break
    finally:
        for p in frozen:
            p.requires_grad_(True)
    bar.close()
    history.meta["steps_run"] = history.meta.get("steps_run", 0) + step
    return history
