"""Files that several processes may share: atomic writes, a lock, no litter.

The ledger and the model cache are read and written by every chapter, and two chapters (or a
chapter and a test) may run at once. Everything that writes them goes through here:

* :func:`locked` serialises a read-modify-write across processes (an advisory ``flock`` on a
  lock file beside the target; a no-op where the platform has none);
* :func:`write_json_atomic` and :func:`temp_dir` write beside the target under a name that
  carries the writer's host and process id, then rename into place, so a reader never sees a
  half-written file;
* :func:`clean_stale` removes what a killed writer (``kill -9``) left behind: temporary files
  whose process no longer runs on this host;
* what is written follows the umask, like any file the user makes (``mkstemp`` alone gives 0600).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, single-process use only
    fcntl = None

__all__ = ["locked", "write_json_atomic", "write_torch_atomic", "temp_dir", "clean_stale", "describe_os_error"]

_HOST = socket.gethostname().replace(".", "_")[:40] or "host"


def _temp_name(target: Path, kind: str) -> Path:
    """``.<target name>.<kind>-<host>-<pid>-<random>`` beside ``target``."""
    return target.with_name(f".{target.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def locked(target: Path | str, shared: bool = False, required: bool = True):
    """Hold an advisory lock for ``target`` (on ``.<name>.lock`` beside it) for the block.

    Exclusive by default (read-modify-write, entry swaps); ``shared=True`` for readers that must
    not see a swap half-way. Blocks until the lock is free. ``required=False`` (a reader in a
    folder it cannot write) goes on without the lock when the lock file cannot be made."""
    target = Path(target)
    lock = target.with_name(f".{target.name}.lock")
    try:
        if required:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        if required:
            raise
        yield
        return
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def _replace_atomically(path: Path, write) -> None:
    """``write(tmp)`` a temporary file beside ``path``, then rename it over ``path``: ``path`` is
    either the old file or the new one, never half of either; the temporary file never stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path, "tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise OSError(e.errno, f"no space left on the disk holding {path.parent}") from e
        raise


def write_json_atomic(path: Path | str, obj) -> None:
    """Write ``obj`` as JSON to a temporary file beside ``path``, then rename it over ``path``.
    The file follows the umask; a full disk raises an ``OSError`` that says so."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable)  # before any file exists

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    _replace_atomically(Path(path), write)


def write_torch_atomic(path: Path | str, obj) -> None:
    """``torch.save`` atomically (a checkpoint is either the old one or the new one)."""
    import torch

    _replace_atomically(Path(path), lambda tmp: torch.save(obj, tmp))


@contextlib.contextmanager
def temp_dir(target: Path):
    """A fresh folder beside ``target`` (mode following the umask) to fill and then rename onto
    ``target``; removed on the way out if it is still there (failure, or the rename was skipped)."""
    tmp = _temp_name(target, "tmp")
    tmp.mkdir(mode=0o777)  # 0o777 & ~umask
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: Path | str, max_age_hours: float = 24.0) -> list[Path]:
    """Remove temporary files and folders (``.*.tmp-<host>-<pid>-*``) in ``folder`` whose writer
    is gone: on this host, a pid that no longer runs; from another host (a shared folder), older
    than ``max_age_hours``. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp-*"):
        try:
            host, pid = p.name.rsplit(".tmp-", 1)[1].rsplit("-", 2)[:2]
            pid = int(pid)
        except ValueError:
            continue
        if host == _HOST:
            stale = pid != os.getpid() and not _alive(pid)
        else:
            try:
                stale = time.time() - p.lstat().st_mtime > max_age_hours * 3600
            except FileNotFoundError:
                continue
        if stale:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            removed.append(p)
    return removed


def describe_os_error(e: OSError, where: Path) -> str:
    """A plain sentence for the ways writing a file fails."""
    if e.errno == errno.ENOSPC:
        return f"no space left on the disk holding {where}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where} is not writable ({e.strerror})"
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{where} is not a folder (a file is in its way)"
    return f"{type(e).__name__}: {e}"
