"""Independent runs spread over worker processes, and workers that end with their parent.

A chapter that trains its runs in a process pool (:func:`geomlib.recipes.pathstar_runs`) must not
leave its workers behind when the build is killed (``kill -9``, an out-of-memory kill): orphaned,
they block forever on a queue nobody reads, and the next build then shares two cores with them.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from .cache import config_hash, is_cached
from .train import _progress_enabled, default_device, note_precisions

__all__ = ["die_with_parent", "cpu_cores", "single_threaded_runs"]

_PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def die_with_parent() -> None:
    """In a freshly started worker: have the kernel end it (SIGKILL) when its parent dies (Linux;
    elsewhere nothing). A pool's ``initializer``."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def single_threaded_runs(jobs: list, kind: str, *, key, work, here, cost, workers: int | None, progress) -> list:
    """What :func:`~geomlib.recipes.pathstar_runs` and :func:`~geomlib.recipes.edge_runs` share: with this process single-threaded
    (so that every key names one thread), the distinct jobs not yet in the cache (``key(job)``,
    cache ``kind``) go to ``workers`` spawned processes, costliest first (``work(job)`` in a
    worker); then every job is taken from what the workers returned, or from ``here(job)`` (the
    cache, or training in this process: one job, one worker, or a GPU). Results are in the order of
    ``jobs``; the last item of each is its history."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_keys = [key(job) for job in jobs]
        keys = [config_hash(k) for k in run_keys]
        first = {k: i for i, k in reversed(list(enumerate(keys)))}  # one job per distinct run
        todo = sorted((i for i in first.values() if not is_cached(kind, run_keys[i])), key=lambda i: -cost(jobs[i]))
        workers = min(len(todo), cpu_cores()) if workers is None else workers
        if default_device().type != "cpu":
            workers = 1  # on a GPU every worker would pay for its own CUDA context and hand a CUDA model
            # back through the pool from a process that then exits; one process runs them all there
        done = {}
        if workers > 1 and len(todo) > 1:
            from tqdm.auto import tqdm

            with tqdm(total=len(todo), desc=f"{kind} runs, {workers} at a time", file=sys.stderr,
                      disable=not _progress_enabled(progress)) as bar, \
                    ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=die_with_parent) as pool:  # no orphan if this process is killed
                futures = {pool.submit(work, jobs[i]): i for i in todo}
                for f in as_completed(futures):
                    done[futures[f]] = f.result()
                    bar.update(1)
        for result in done.values():  # trained in a worker: recorded here, for the chapter's ledger rows
            note_precisions(result[-1])
        for i in first.values():
            if i not in done:
                done[i] = here(jobs[i])
        return [done[first[k]] for k in keys]
    finally:
        torch.set_num_threads(threads)
