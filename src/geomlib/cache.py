"""A results cache keyed by a hash of the full configuration.

A trained model is stored as ``<root>/<name>-<hash>/`` holding ``model.pt`` (a state dict),
``record.json`` (history and anything else JSON) and ``manifest.json`` (the key and the SHA-256
of both files). An entry is only used when its manifest matches the requested key and both
hashes; a corrupt or mismatched entry is reported and recomputed, never silently used.

No finished training is ever lost to the cache, and no entry is half-written:

* before training, the cache folder is checked (it must be a writable folder with room for the
  model); when it is not, a warning says why and the run trains and returns without caching;
* an entry is written to a temporary folder beside it and renamed into place under a lock; if
  another process stored the same entry meanwhile, that entry is used, not fought over;
* a save that fails anyway (a full disk, a vanished folder) warns and returns the trained model;
* temporary folders of writers that were killed are removed on the next use of the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable

import torch

from .fileio import clean_stale, describe_os_error, locked, temp_dir, write_json_atomic

__all__ = ["config_hash", "cache_root", "cached_run", "is_cached", "CacheWarning", "shipped_data", "shipped_files"]

CACHE_VERSION = 1


class CacheWarning(UserWarning):
    pass


def config_hash(key: dict) -> str:
    blob = json.dumps({"v": CACHE_VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_root() -> Path:
    """``$GEOMLIB_CACHE`` when set and not empty, else ``~/.cache/geomlib``."""
    return Path(os.environ.get("GEOMLIB_CACHE") or Path.home() / ".cache" / "geomlib")


def shipped_data(name: str) -> Path | None:
    """A result shipped in the repository's ``data/`` folder, installed with geomlib as package
    data (``src/geomlib/data`` links to ``data/``), so it is there in Colab too; None when no such
    file is shipped."""
    from importlib.resources import as_file, files

    resource = files("geomlib") / "data" / name
    if not resource.is_file():
        return None
    with as_file(resource) as path:  # a real file for a normal install (wheel or editable)
        return Path(path)


def shipped_files(folder: str, pattern: str = "*.json") -> list[Path]:
    """The shipped results in ``data/<folder>/`` matching ``pattern``, sorted by name (empty when
    the folder is not shipped)."""
    from importlib.resources import files

    resource = files("geomlib") / "data" / folder
    if not resource.is_dir():
        return []
    return sorted(p for f in resource.iterdir() if f.is_file() and Path(f.name).match(pattern)
                  and (p := shipped_data(f"{folder}/{f.name}")) is not None)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _needed_bytes(model: torch.nn.Module) -> int:
    """Room an entry for ``model`` needs: its state twice (the temporary copy and the entry it may
    replace) and a MiB for the JSON files."""
    return 2 * sum(t.numel() * t.element_size() for t in model.state_dict().values()) + (1 << 20)


def _unwritable(root: Path, model: torch.nn.Module) -> str | None:
    """Why an entry for ``model`` cannot be saved under ``root`` (None: it can)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            return f"{root} is not a folder (a file is in its way)"
        with temp_dir(root / "write-check"):
            pass
        free, need = shutil.disk_usage(root).free, _needed_bytes(model)
    except OSError as e:
        return describe_os_error(e, root)
    if free < need:
        return f"no space left on the disk holding {root} ({free / 2**20:.1f} MiB free, {need / 2**20:.1f} MiB needed)"
    return None


def _load(entry: Path, key: dict, model: torch.nn.Module) -> dict:
    manifest = json.loads((entry / "manifest.json").read_text())
    if json.loads(json.dumps(key, sort_keys=True, default=str)) != manifest.get("key"):
        raise ValueError("its stored configuration differs from the requested one")
    for name in ("model.pt", "record.json"):
        if _sha(entry / name) != manifest["sha256"][name]:
            raise ValueError(f"{name} does not match its checksum")
    state = torch.load(entry / "model.pt", map_location=next(model.parameters()).device, weights_only=True)
    model.load_state_dict(state)
    return json.loads((entry / "record.json").read_text())


def _try_load(candidate: Path, key: dict, model: torch.nn.Module, name: str, h: str, verbose: bool) -> dict | None:
    """The record of an intact entry at ``candidate`` (loaded into ``model``), else None. The entry
    is read under a shared lock: never while another process swaps it."""
    if not candidate.parent.is_dir():
        return None
    try:
        with locked(candidate, shared=True, required=False):
            if not candidate.exists():
                return None
            record = _load(candidate, key, model)
    except Exception as e:  # noqa: BLE001 - any damage means: do not trust this entry
        warnings.warn(f"cache entry {candidate} is unusable ({e}); recomputing it", CacheWarning, stacklevel=3)
        return None
    if verbose:
        print(f"loaded {name} from the cache (config hash {h})")
    return record


def _save(entry: Path, key: dict, model: torch.nn.Module, record: dict, retrain: bool) -> dict | None:
    """Store the entry; return the record of an intact entry another process stored meanwhile
    (which is then loaded into ``model``), else None."""
    with temp_dir(entry) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "model.pt")
        write_json_atomic(tmp / "record.json", record)
        write_json_atomic(tmp / "manifest.json", {"key": json.loads(json.dumps(key, sort_keys=True, default=str)),
                                                   "sha256": {n: _sha(tmp / n) for n in ("model.pt", "record.json")}})
        with locked(entry):
            if entry.exists() and not retrain:
                try:
                    return _load(entry, key, model)
                except Exception:  # noqa: BLE001 - a damaged entry is replaced below
                    pass
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(tmp, entry)
    return None


def is_cached(name: str, key: dict) -> bool:
    """Whether an entry for ``key`` is stored under ``name`` (its manifest names this key): a cheap
    look before deciding what to train; :func:`cached_run` still verifies the entry when it loads it."""
    entry = cache_root() / f"{name}-{config_hash(key)}"
    try:
        stored = json.loads((entry / "manifest.json").read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return stored == json.loads(json.dumps(key, sort_keys=True, default=str))


def cached_run(name: str, key: dict, model: torch.nn.Module, fit: Callable[[torch.nn.Module], dict],
               retrain: bool = False, verbose: bool = True) -> tuple[torch.nn.Module, dict]:
    """Return ``(model, record)``: loaded from the cache if an intact entry for ``key`` exists,
    else trained by ``fit(model)`` (which returns a JSON-able record) and stored.

    ``key`` must hold everything that determines the result (task, model, training, seed)."""
    h = config_hash(key)
    root = cache_root()
    entry = root / f"{name}-{h}"
    clean_stale(root)
    if not retrain:
        record = _try_load(entry, key, model, name, h, verbose)
        if record is not None:
            return model, record
    why = _unwritable(root, model)
    if why:
        warnings.warn(f"{name} will train but its result will not be cached: {why}. Set GEOMLIB_CACHE to a "
                      "writable folder to keep results.", CacheWarning, stacklevel=2)
    record = fit(model)
    if why:
        return model, record
    try:
        theirs = _save(entry, key, model, record, retrain)
    except Exception as e:  # noqa: BLE001 - the trained model is worth more than its cache entry
        reason = describe_os_error(e, root) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
        try:
            if shutil.disk_usage(root).free < _needed_bytes(model):
                reason = f"no space left on the disk holding {root} ({reason})"
        except OSError:
            pass
        warnings.warn(f"{name} trained, but saving it to the cache failed: {reason}. The trained model is "
                      "returned; nothing was written.", CacheWarning, stacklevel=2)
        return model, record
    if theirs is not None:
        if verbose:
            print(f"{name}: another process stored the same entry meanwhile; using it (config hash {h})")
        return model, theirs
    return model, record
