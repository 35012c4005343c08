"""Worker processes that end with the process that started them.

A chapter that trains its runs in a process pool (:func:`geomlib.recipes.pathstar_runs`) must not
leave its workers behind when the build is killed (``kill -9``, an out-of-memory kill): orphaned,
they block forever on a queue nobody reads, and the next build then shares two cores with them.
"""
from __future__ import annotations

import os
import signal
import sys

__all__ = ["die_with_parent"]

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
