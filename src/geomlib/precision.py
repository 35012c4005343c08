"""Numeric precision: which one a run uses, how it is computed, and which ones a chapter used.

A run asks for ``"fp32"``, ``"bf16"`` (bf16 autocast, as the authors' release trains on its GPU) or
``"auto"`` (bf16 where the hardware computes it natively, fp32 elsewhere). ``$GEOMLIB_PRECISION``
(``fp32`` or ``bf16``) overrides *every* run, explicit or not, so that a book rerun in fp32 really
is one.

Where bf16 is asked for but the device has no native bf16 (most laptop and Colab CPUs), PyTorch's
bf16 autocast is emulated and several times *slower* than fp32. There the trainer computes the
same numerics another way (:func:`bf16_context`): every matrix product that autocast would run in
bf16 gets its operands rounded to bf16, is multiplied in fp32 (each product of two bf16 numbers is
exact in fp32, and the sum accumulates in fp32, as in a native bf16 kernel) and its result rounded
to bf16; every other operation runs under the real autocast, so its casting policy is PyTorch's own.
Gradients follow the same rounding through autograd. Such runs are labelled ``"bf16 (rounded)"``: bf16 numerics, computed by rounding.

Every run reports what it used (:func:`record`); a chapter's ledger rows name the precisions and
devices its runs used (:func:`used`), never the machine's default.
"""
from __future__ import annotations

import contextlib
import functools
import os

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["PRECISIONS", "native_bf16", "forced", "resolve_precision", "precision_label", "bf16_context", "autocast_for", "record",
           "used", "reset_used", "check_environment"]

PRECISIONS = ("fp32", "bf16", "auto")
_FORCE = "GEOMLIB_PRECISION"  # fp32 | bf16: every run, explicit or not
_NATIVE = "GEOMLIB_NATIVE_BF16"  # 0 | 1: overrides the hardware check (e.g. 0 to time a CPU without bf16)


def check_environment() -> None:
    """Refuse a bad ``$GEOMLIB_PRECISION`` or ``$GEOMLIB_NATIVE_BF16`` before any work starts."""
    forced = os.environ.get(_FORCE, "").strip()
    if forced and forced not in ("fp32", "bf16"):
        raise ValueError(f"${_FORCE} must be 'fp32' or 'bf16' (or unset), got {forced!r}")
    native = os.environ.get(_NATIVE, "").strip()
    if native and native not in ("0", "1"):
        raise ValueError(f"${_NATIVE} must be '0' or '1' (or unset), got {native!r}")


def native_bf16(device: torch.device | str | None = None) -> bool:
    """Whether ``device`` (default: CUDA when present, else the CPU) computes in bf16 natively: a
    CUDA GPU of compute capability 8.0 or newer (a T4 is 7.5: it only emulates bf16), or an x86 CPU
    with ``avx512_bf16`` or ``amx_bf16``. ``$GEOMLIB_NATIVE_BF16=0`` (or ``1``) overrides the check.
    Elsewhere PyTorch's bf16 autocast is emulated and several times slower than fp32."""
    check_environment()
    forced = os.environ.get(_NATIVE, "").strip()
    if forced:
        return forced == "1"
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return _hardware_bf16(torch.device(device).type)


@functools.lru_cache(maxsize=None)
def _hardware_bf16(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.get_device_capability()[0] >= 8
    if kind != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[1].split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def forced() -> str | None:
    """``$GEOMLIB_PRECISION`` (``"fp32"`` or ``"bf16"``) when set: the precision of every run, whatever
    it asks for (a study that compares precisions refuses to run under it); None when unset."""
    check_environment()
    return os.environ.get(_FORCE, "").strip() or None


def resolve_precision(precision: str = "auto", device: torch.device | str | None = None) -> str:
    """``"fp32"`` or ``"bf16"``: ``$GEOMLIB_PRECISION`` when set (it governs every run), else an
    explicit ``"fp32"`` or ``"bf16"`` as asked, else (``"auto"``) bf16 where :func:`native_bf16`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    override = forced()
    if override:
        return override
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def precision_label(precision: str, device: torch.device | str | None = None) -> str:
    """What a run in ``precision`` (resolved) really computes on ``device``: ``"fp32"``,
    ``"bf16"`` (native autocast) or ``"bf16 (rounded)"`` (:func:`bf16_context`'s rounding)."""
    precision = resolve_precision(precision, device)
    if precision == "bf16" and not native_bf16(device):
        return "bf16 (rounded)"
    return precision


# The matrix products CPU and CUDA autocast run in bf16 that the book's models use (nn.Linear, @,
# torch.matmul/mm/bmm/addmm/baddbmm). Anything else on autocast's bf16 list (convolutions, fused
# attention) still runs under the real autocast: correct, only not faster.
_LINEAR = {F.linear}
_MATMUL = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm, torch.bmm,
           torch.Tensor.bmm}
_ADDMM = {torch.addmm, torch.Tensor.addmm, torch.baddbmm, torch.Tensor.baddbmm}


def _bf16(t):
    """``t`` rounded to bf16 and held in fp32 (what autocast's cast feeds a native bf16 kernel)."""
    if isinstance(t, torch.Tensor) and t.is_floating_point():
        return t.to(torch.bfloat16).float()
    return t


class _RoundedMatmuls(TorchFunctionMode):
    """bf16-autocast numerics for matrix products without a bf16 kernel (see the module doc)."""

    def __init__(self, device_type: str):
        super().__init__()
        self.device_type = device_type

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _LINEAR or func in _MATMUL or func in _ADDMM:
            with torch.autocast(self.device_type, enabled=False):
                if func in _LINEAR:
                    x, w = args[0], args[1]
                    b = args[2] if len(args) > 2 else kwargs.get("bias")
                    out = F.linear(_bf16(x), _bf16(w), _bf16(b))
                elif func in _MATMUL:
                    out = func(*[_bf16(a) for a in args], **kwargs)
                else:
                    out = func(*[_bf16(a) for a in args], **{k: _bf16(v) for k, v in kwargs.items()})
            return out.to(torch.bfloat16)
        return func(*args, **kwargs)


def bf16_context(precision: str, device: torch.device | str):
    """The context a training step or an evaluation runs in: nothing for fp32; PyTorch's bf16
    autocast where the device computes bf16 natively; elsewhere the same autocast with every matrix
    product computed from bf16-rounded operands in fp32 (the same numerics, fp32 speed)."""
    device = torch.device(device)
    return autocast_for(precision_label(precision, device), device.type)


@contextlib.contextmanager
def autocast_for(label: str, device_type: str):
    """:func:`bf16_context` for a run already resolved to ``label`` (:func:`precision_label`): what
    the trainer enters every step, with no environment lookups on that hot path."""
    if label == "fp32":
        yield
        return
    with torch.autocast(device_type, dtype=torch.bfloat16):
        if label == "bf16":
            yield
        else:
            with _RoundedMatmuls(device_type):
                yield


# ----------------------------------------------------------------------------- what was used
_USED: dict[tuple[str, str], int] = {}


def record(label: str, device: torch.device | str) -> None:
    """Note that a run computed in ``label`` (:func:`precision_label`) on ``device``."""
    key = (str(label), torch.device(device).type)
    _USED[key] = _USED.get(key, 0) + 1


def used() -> tuple[str, str]:
    """``(precisions, devices)`` of every run recorded since :func:`reset_used` (a chapter starts
    with it), each as a ``" + "``-joined text (``"bf16 + fp32"``); ``("none", "none")`` when no run
    trained or loaded a model (a chapter that only reads shipped data)."""
    if not _USED:
        return "none", "none"
    return (" + ".join(sorted({p for p, _ in _USED})), " + ".join(sorted({d for _, d in _USED})))


def reset_used() -> None:
    """Forget the runs recorded so far (a chapter's first cell calls it: its rows name its own runs)."""
    _USED.clear()
