"""Training throughput on the in-weights path-star task (d=500, l=5, 2x128 GPT), this machine.

Compares geomlib's trainer and GPT (logits only at target positions, vectorised batches, optional
bf16 autocast, plain-math attention on CPU) against a straightforward baseline written the
obvious way: ``nn.TransformerEncoder`` with a causal mask, logits at every position, fp32, and a
Python-loop data pipeline that builds each batch from lists. Prints a markdown table, then how
close geomlib's step comes to the machine: its achieved FLOP/s (counted from the model's shapes:
every matrix product of the forward pass, times three for forward + backward) beside a plain
2048 x 2048 matmul's FLOP/s measured in the same run, in fp32 and, where the CPU computes it
natively, in bf16.

    python benchmarks/throughput.py [--steps 60]
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from geomlib import models, specs, tasks
from geomlib.precision import forced, native_bf16, precision_label
from geomlib.recipes import stage_batches
from geomlib.tasks import IGNORE
from geomlib.train import TrainConfig, train


class NaiveGPT(nn.Module):
    """The obvious way: TransformerEncoder + causal mask + full-vocabulary logits everywhere."""

    def __init__(self, vocab: int, block: int, d: int = 128, heads: int = 4, layers: int = 2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(block, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, x, y):
        t = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        h = self.ln(self.body(self.tok(x) + self.pos(torch.arange(t)), mask=mask, is_causal=True))
        logits = self.head(h)  # every position, whole vocabulary
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)


def naive_steps(task, steps: int, batch: int = 2048, frac: float = 0.25) -> float:
    edges = [(list(i), list(t)) for i, t in zip(task.edges.inputs.tolist(), task.edges.targets.tolist())]
    paths = [(list(i), list(t)) for i, t in zip(task.train_paths.inputs.tolist(), task.train_paths.targets.tolist())]
    width = len(paths[0][0])
    model = NaiveGPT(task.vocab.size, width)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1.0)
    n_p = min(int(batch * frac), len(paths))  # as geomlib's sampler: a stream smaller than its batch is used whole
    start = time.perf_counter()
    for _ in range(steps):
        rows = random.sample(edges, batch - n_p) + random.sample(paths, n_p)
        xs, ys = [], []
        for i, t in rows:  # pad every row to the path length, in Python
            xs.append(i + [0] * (width - len(i)))
            ys.append(t + [IGNORE] * (width - len(t)))
        loss = model(torch.tensor(xs), torch.tensor(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def ours_steps(task, steps: int, bf16: bool, batch: int = 2048, frac: float = 0.25) -> float:
    torch.manual_seed(0)
    m = models.build_model(specs.GPT(n_layer=2, n_head=4, n_embd=128), vocab_size=task.vocab.size,
                           block_size=task.train_paths.inputs.shape[1])
    streams, sizes = stage_batches(task, "mixed", batch, frac)
    train(m, streams, TrainConfig(steps=5, lr=2e-3, precision="bf16" if bf16 else "fp32", batch_size=sizes), progress=False)  # warm-up
    start = time.perf_counter()
    train(m, streams, TrainConfig(steps=steps, lr=2e-3, weight_decay=1.0, precision="bf16" if bf16 else "fp32", batch_size=sizes), progress=False)
    return steps / (time.perf_counter() - start)


BF16 = precision_label("bf16", "cpu")  # "bf16" where native, else "bf16 (rounded)" (rounded operands)


def step_flops(task, batch: int = 2048, frac: float = 0.25, d: int = 128, layers: int = 2) -> float:
    """Matrix-product FLOPs of one geomlib training step (forward x 3: the backward pass costs about
    two forwards): per input token and layer 24 d^2 (q, k, v and output projections, 4x MLP) and
    4 T d for attention over the T positions of its row; per target token 2 d V for the output
    layer over the vocabulary (logits only at target positions)."""
    _, sizes = stage_batches(task, "mixed", batch, frac)
    flops = 0.0
    for name, data in (("edges", task.edges), ("paths", task.train_paths)):
        rows, width = sizes[name], data.inputs.shape[1]
        targets = rows * float((data.targets >= 0).sum(1).float().mean())
        flops += rows * width * layers * (24 * d * d + 4 * width * d) + targets * 2 * d * task.vocab.size
    return 3 * flops


def matmul_flops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a plain n x n matmul in ``dtype`` on this machine (best of ``reps``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    if forced():
        raise SystemExit("error: $GEOMLIB_PRECISION forces every run's precision; unset it (this benchmark compares "
                         "fp32 and bf16)")
    task = tasks.pathstar_task(500, 5, seed=0)
    n_p = min(int(2048 * 0.25), len(task.train_paths))
    tokens = (2048 - int(2048 * 0.25)) * 2 + n_p * task.train_paths.inputs.shape[1]  # real (unpadded) input tokens per batch
    rows = {
        "baseline: nn.TransformerEncoder, full logits, fp32, Python batches": naive_steps(task, args.steps),
        "geomlib, fp32": ours_steps(task, args.steps, bf16=False),
        f"geomlib, {BF16}": ours_steps(task, args.steps, bf16=True),
    }
    switch = Path(__file__).parent / "results" / "pathstar_switch.jsonl"
    steps_to_target = None
    if switch.exists():
        runs = [json.loads(x) for x in switch.read_text().splitlines() if '"e300_wsd1200_p25"' in x]
        firsts = [next(c[0] for c in r["curve"] if (c[2] or 0) >= 0.9) for r in runs
                  if any((c[2] or 0) >= 0.9 for c in r["curve"])]
        steps_to_target = sorted(firsts)[len(firsts) // 2] if firsts else None
    print(f"mixed batches of 2048 (25% paths), d=500, l=5, {torch.get_num_threads()} threads, torch {torch.__version__}\n")
    print("| setting | steps/s | input tokens/s | speed-up |")
    print("|---|---|---|---|")
    base = rows["baseline: nn.TransformerEncoder, full logits, fp32, Python batches"]
    for k, v in rows.items():
        print(f"| {k} | {v:.2f} | {v * tokens:,.0f} | {v / base:.1f}x |")
    flops = step_flops(task)
    print(f"\nHow close to the machine (one step: {flops / 1e9:.1f} GFLOP of matrix products, forward + backward):\n")
    print("| precision | geomlib step, GFLOP/s | plain 2048 x 2048 matmul, GFLOP/s | share |")
    print("|---|---|---|---|")
    native = native_bf16("cpu")  # else the bf16 step multiplies bf16-rounded operands in fp32
    for label, dtype in (("fp32", torch.float32), (BF16, torch.bfloat16 if native else torch.float32)):
        achieved, peak = rows[f"geomlib, {label}"] * flops, matmul_flops(dtype)
        print(f"| {label} | {achieved / 1e9:.0f} | {peak / 1e9:.0f} ({str(dtype).split('.')[1]}) | {achieved / peak:.0%} |")
    if steps_to_target:
        print(f"\nmedian step at which held-out full path first reaches 0.9 (recipe e300_wsd1200_p25): {steps_to_target}; "
              f"at these rates the mixed part of that takes {(steps_to_target - 300) / rows[f'geomlib, {BF16}']:.0f} s "
              f"(geomlib bf16) vs {(steps_to_target - 300) / base:.0f} s (baseline), edge stage excluded")


if __name__ == "__main__":
    main()
