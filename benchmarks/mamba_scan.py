"""Mamba training speed on CPU: the selective scan eager vs ``torch.compile``d, and whole
training steps of the book's 2-layer, width-128 Mamba on the path-star task.

    python benchmarks/mamba_scan.py [--steps 5]

The first compiled call of each sequence length pays the compilation (reported separately);
the per-step times exclude it. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import time

import torch

from geomlib import models, specs
from geomlib.models import mamba
from geomlib.recipes import stage_batches
from geomlib.tasks import pathstar_task


def time_steps(fn, steps: int) -> tuple[float, float]:
    """(seconds of the first call, mean seconds of the next ``steps`` calls)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return first, (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--d", type=int, default=500)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| what | shape (batch, tokens) | eager s/step | compiled s/step | compile s | speed-up |")
    print("|---|---|---|---|---|---|")
    n, d_inner = 16, 256
    for b, t in ((4000, 2), (2048, 7)):
        xs = [torch.rand(b, t, d_inner, requires_grad=True), -torch.rand(d_inner, n, requires_grad=True),
              torch.randn(b, t, n, requires_grad=True), torch.randn(b, t, n, requires_grad=True),
              torch.randn(b, t, d_inner, requires_grad=True)]
        res = {}
        for name, compiled in (("eager", False), ("compiled", True)):
            scan = mamba._scan(compiled)
            res[name] = time_steps(lambda: scan(*xs).sum().backward(), args.steps)
        print(f"| selective scan fwd+bwd | ({b}, {t}) | {res['eager'][1]:.3f} | {res['compiled'][1]:.3f} | "
              f"{res['compiled'][0]:.0f} | {res['eager'][1] / res['compiled'][1]:.1f}x |")
    task = pathstar_task(args.d, 5, seed=0)
    for data, batch in (("edges", None), ("mixed", 2048)):
        streams, sizes = stage_batches(task, data, batch, 0.25 if data == "mixed" else None)
        batches = {k: v[torch.arange(min(len(v), sizes[k] or len(v)))] for k, v in streams.items()}
        res = {}
        for name, compiled in (("eager", False), ("compiled", True)):
            m = models.build_model(specs.Mamba(n_layer=2, d_model=128), vocab_size=task.vocab.size,
                               compile_scan=compiled)
            opt = torch.optim.AdamW(m.parameters(), 1e-3)

            def step():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = sum(m(b.inputs, b.targets)[1] for b in batches.values())
                opt.zero_grad()
                loss.backward()
                opt.step()
            res[name] = time_steps(step, args.steps)
        shape = ", ".join(f"{k} {tuple(b.inputs.shape)}" for k, b in batches.items())
        print(f"| Mamba 2x128 training step, d={args.d} {data} | {shape} | {res['eager'][1]:.3f} | "
              f"{res['compiled'][1]:.3f} | {res['compiled'][0]:.0f} | {res['eager'][1] / res['compiled'][1]:.1f}x |")


if __name__ == "__main__":
    main()
