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

``--paper-graph``: instead, one full-batch edge step at the paper's graph (d = 10^4, l = 6: 100,000
edge examples, a 50,006-token vocabulary), computed exactly by the chunked head (``head_chunk``,
each of the 50,001 distinct inputs once), in fp32 and bf16: seconds per step, peak memory, and its
achieved FLOP/s beside a matmul of one head chunk's shape measured in the same run; ``--former``
adds the step as it was first computed (gradient accumulated over minibatches of 4,096 examples,
each materialising its logits).
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


HEAD_CHUNK = 512  # the paper-graph run's head_chunk (tools/long_run.py paper_graph)


def paper_graph_step(dtype: torch.dtype, steps: int, former: bool = False) -> dict:
    """Seconds of one full-batch edge step (forward, backward, AdamW) of the book's 2x128 GPT on the
    d = 10^4, l = 6 path-star, the median of ``steps`` after one warm-up; ``former``: the gradient
    accumulated over chunks of 4,096 examples through the plain head instead."""
    import resource
    import statistics

    task = tasks.pathstar_task(10_000, 6, seed=0)
    torch.manual_seed(0)
    m = models.build_model(specs.GPT(n_layer=2, n_head=4, n_embd=128), vocab_size=task.vocab.size,
                           block_size=task.train_paths.inputs.shape[1])
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    e = task.edges
    inputs, source = torch.unique(e.inputs, dim=0, return_inverse=True)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            if former:
                for i in range(0, len(e), 4096):
                    (m(e.inputs[i:i + 4096], e.targets[i:i + 4096])[1] * (len(e.inputs[i:i + 4096]) / len(e))).backward()
            else:
                m(inputs, e.targets, source=source, head_chunk=HEAD_CHUNK)[1].backward()
        opt.step()
        times.append(time.perf_counter() - start)
    rows, width, vocab = len(inputs), 128, task.vocab.size
    head = 3 * 2 * rows * width * vocab  # the head's three products over the distinct inputs
    body = 3 * rows * 2 * 2 * (24 * width * width + 4 * 2 * width)  # 2 positions, 2 layers
    return {"seconds": statistics.median(times[1:]), "flops": head + body,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def head_matmul_flops(dtype: torch.dtype, reps: int = 10) -> float:
    """FLOP/s of one head chunk's product, (512 x 128) @ (128 x 50,006) into a buffer, best of ``reps``."""
    h, w = torch.randn(HEAD_CHUNK, 128).to(dtype), torch.randn(50_006, 128).to(dtype)
    out = torch.empty(HEAD_CHUNK, 50_006, dtype=dtype)
    torch.mm(h, w.t(), out=out)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(h, w.t(), out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * HEAD_CHUNK * 128 * 50_006 / best


def paper_graph(steps: int, former: bool) -> None:
    native = native_bf16("cpu")
    print(f"one full-batch edge step, path-star d = 10^4, l = 6 (100,000 edge examples, 50,001 distinct inputs, "
          f"vocabulary 50,006), 2x128 GPT, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {steps}\n")
    print("| precision | step | s / step | GFLOP/s | head-chunk matmul, GFLOP/s | share | process peak RSS so far |")
    print("|---|---|---|---|---|---|---|")
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if dtype == torch.bfloat16 and not native:
            print("| bf16 | not native on this CPU: skipped | | | | | |")
            continue
        peak = head_matmul_flops(dtype)
        for name, old in (("chunked head (head_chunk=512)", False), ("former: 4,096-example chunks", True)):
            if old and not former:
                continue
            r = paper_graph_step(dtype, 1 if old else steps, former=old)
            print(f"| {label} | {name} | {r['seconds']:.1f} | {r['flops'] / r['seconds'] / 1e9:.0f} | {peak / 1e9:.0f} | "
                  f"{r['flops'] / r['seconds'] / peak:.0%} | {r['peak_rss_gb']:.1f} GB |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--paper-graph", action="store_true", help="time the d = 10^4 full-batch edge step instead")
    ap.add_argument("--former", action="store_true", help="with --paper-graph: also the former way (slow)")
    args = ap.parse_args()
    if args.paper_graph:
        return paper_graph(min(args.steps, 3), args.former)
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
