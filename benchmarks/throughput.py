"""Training throughput on the in-weights path-star task (d=500, l=5, 2x128 GPT), this machine.

Compares geomlib's trainer and GPT (logits only at target positions, vectorised batches, optional
bf16 autocast, plain-math attention on CPU) against a straightforward baseline written the
obvious way: ``nn.TransformerEncoder`` with a causal mask, logits at every position, fp32, and a
Python-loop data pipeline that builds each batch from lists. Prints a markdown table.

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

from geomlib import models, tasks
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
    m = models.build_model("gpt", vocab_size=task.vocab.size, block_size=task.train_paths.inputs.shape[1],
                           n_layer=2, n_head=4, n_embd=128)
    streams, sizes = stage_batches(task, "mixed", batch, frac)
    train(m, streams, TrainConfig(steps=5, lr=2e-3, precision="bf16" if bf16 else "fp32", batch_size=sizes), progress=False)  # warm-up
    start = time.perf_counter()
    train(m, streams, TrainConfig(steps=steps, lr=2e-3, weight_decay=1.0, precision="bf16" if bf16 else "fp32", batch_size=sizes), progress=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args()
    task = tasks.pathstar_task(500, 5, seed=0)
    n_p = min(int(2048 * 0.25), len(task.train_paths))
    tokens = (2048 - int(2048 * 0.25)) * 2 + n_p * task.train_paths.inputs.shape[1]  # real (unpadded) input tokens per batch
    rows = {
        "baseline: nn.TransformerEncoder, full logits, fp32, Python batches": naive_steps(task, args.steps),
        "geomlib, fp32": ours_steps(task, args.steps, bf16=False),
        "geomlib, bf16 autocast": ours_steps(task, args.steps, bf16=True),
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
    if steps_to_target:
        print(f"\nmedian step at which held-out full path first reaches 0.9 (recipe e300_wsd1200_p25): {steps_to_target}; "
              f"at these rates the mixed part of that takes {(steps_to_target - 300) / rows['geomlib, bf16 autocast']:.0f} s "
              f"(geomlib bf16) vs {(steps_to_target - 300) / base:.0f} s (baseline), edge stage excluded")


if __name__ == "__main__":
    main()
